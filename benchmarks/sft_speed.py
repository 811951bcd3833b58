"""SFT speed: the workbook's settings against TRL's defaults, side by side in one run.

Baseline: TRL's SFTTrainer with its defaults plus only ``bf16=False,
gradient_checkpointing=False`` (without those two a CPU step is ~14x slower,
see ../shared/STACK-NOTES.md). Same model (the embedded SmolLM2-135M), same
LoRA, same data, same batch size, same number of steps. The workbook differs in
what helpers.sft sets: padding-free batches (no pad tokens computed; SDPA gets a
block-diagonal mask), rows fitted to max_length beforehand instead of TRL's
silent truncation, and the explicit CPU numerics.

Tokens/s counts real (non-padding) tokens of prompt + solution, the same count
for both, divided by the wall time of the timed steps (after warm-up steps).

    python benchmarks/sft_speed.py --steps 12 --batch-size 8
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


VARIANTS = {"workbook": {}, "padding_free": {"padding_free": True, "group_by_length": False},
            "padded_random": {"padding_free": False, "group_by_length": False},
            "float32": {"bf16_autocast": False}, "bf16_autocast": {"bf16_autocast": True},
            "float32_no_dropout": {"bf16_autocast": False, "lora_dropout": 0.0},
            "bf16_no_dropout": {"bf16_autocast": True, "lora_dropout": 0.0}}


def build(kind: str, rows, batch_size: int, steps: int, out: Path):
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from helpers import config, sft
    from helpers.models import load_base_model, load_tokenizer

    settings = config.resolve("default", "sft", batch_size=batch_size, max_steps=steps, logging_steps=1,
                              save_steps=10_000, eval_steps=10_000, **VARIANTS.get(kind, {}))
    tokenizer = load_tokenizer("embedded", padding_side="right")
    model = load_base_model("embedded")
    if kind != "trl_defaults":
        return sft.build_sft_trainer(settings, model, tokenizer, rows, [], out)
    args = SFTConfig(output_dir=str(out), per_device_train_batch_size=batch_size, max_steps=steps,
                     bf16=False, gradient_checkpointing=False, report_to=[], save_strategy="no",
                     logging_steps=1, seed=settings.seed)
    data = Dataset.from_list([sft.to_conversation(r) for r in rows])
    return SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer,
                      peft_config=sft.lora_config(settings))


def measure(kind: str, rows, batch_size: int, steps: int, warmup: int, out: Path) -> dict:
    from helpers.callbacks import StepTimer

    trainer = build(kind, rows, batch_size, steps + warmup, out)
    timer = StepTimer()
    trainer.add_callback(timer)
    trainer.train()
    timed = timer.times[warmup:]
    return {"seconds_per_step": sum(timed) / len(timed), "steps_timed": len(timed),
            "final_loss": trainer.state.log_history[-2].get("loss")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--data", default="data/training_data/sft_train.json")
    parser.add_argument("--out", default="output/benchmarks")
    parser.add_argument("--variants", nargs="*", default=["trl_defaults", "workbook"],
                        help=f"trl_defaults and any of {', '.join(VARIANTS)}")
    args = parser.parse_args()

    import tempfile

    import torch

    from helpers import sft
    from helpers.models import load_tokenizer

    rows = json.loads(Path(args.data).read_text())
    n = (args.steps + args.warmup) * args.batch_size
    rows = rows[:n]
    tok = load_tokenizer("embedded")
    # Both trainers draw batches from the same rows; the expected real tokens per step is the same.
    tokens_per_row = sum(sft.count_tokens(tok, r)[1] for r in rows) / len(rows)
    results = {}
    for kind in args.variants:
        with tempfile.TemporaryDirectory() as tmp:
            res = measure(kind, rows, args.batch_size, args.steps, args.warmup, Path(tmp))
        res["tokens_per_s"] = tokens_per_row * args.batch_size / res["seconds_per_step"]
        results[kind] = res
        print(f"{kind:13s} {res['seconds_per_step']:.2f} s/step  {res['tokens_per_s']:.0f} tokens/s", flush=True)
    ratio = results["workbook"]["tokens_per_s"] / results["trl_defaults"]["tokens_per_s"]
    report = {"benchmark": "sft_speed", "machine": f"{platform.processor() or platform.machine()}, "
              f"{torch.get_num_threads()} threads", "batch_size": args.batch_size, "steps": args.steps,
              "results": results, "speedup": round(ratio, 2)}
    print(f"speed-up (workbook / TRL defaults): {ratio:.2f}x")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sft_speed.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
