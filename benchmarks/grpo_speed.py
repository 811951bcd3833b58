"""GRPO step time: the workbook's settings against TRL's defaults, side by side in one run.

Baseline: TRL's GRPOTrainer with its defaults plus only ``bf16=False,
gradient_checkpointing=False``, and the same model, LoRA, group size
(num_generations), completion length, batch size, rewards and prompts. Both
start from the same policy (an SFT adapter folded into the embedded model, as
in 04_grpo_train), so completion lengths are realistic.

Prints seconds per step and the mean reward per step for both, and the ratio.

    python benchmarks/grpo_speed.py --sft-model output/sft_.../final_model --steps 6
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def build(kind: str, settings, rows, sft_model: Path, out: Path):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from helpers import grpo
    from helpers.rewards import reward_functions
    from helpers.sft import lora_config

    model, tokenizer, sft_lora = grpo.load_policy(settings, sft_model)
    targets = sorted({k.rsplit(".", 1)[-1] for k in sft_lora["layers"]})
    if kind == "workbook":
        return grpo.build_grpo_trainer(settings, model, tokenizer, rows, out, lora_target_modules=targets)
    funcs, weights = reward_functions(dict(settings.reward_weights), settings.max_new_tokens)
    args = GRPOConfig(output_dir=str(out), bf16=False, gradient_checkpointing=False, report_to=[],
                      per_device_train_batch_size=settings.batch_size, num_generations=settings.num_generations,
                      max_completion_length=settings.max_new_tokens, max_steps=settings.max_steps,
                      reward_weights=weights, logging_steps=1, save_strategy="no", seed=settings.seed)
    peft = lora_config(settings)
    peft.target_modules = set(targets)
    data = Dataset.from_list([grpo.to_prompt_row(r) for r in rows])
    return GRPOTrainer(model=model, reward_funcs=funcs, args=args, train_dataset=data, processing_class=tokenizer,
                       peft_config=peft)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sft-model", required=True)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--data", default="data/training_data/grpo_train.json")
    parser.add_argument("--out", default="output/benchmarks")
    parser.add_argument("--variants", nargs="*", default=["trl_defaults", "workbook"])
    parser.add_argument("--temperature", type=float, default=1.0,
                        help="the workbook's sampling temperature here; 1.0 is TRL's default, so by default only "
                             "speed settings differ between the two")
    args = parser.parse_args()

    import torch

    from helpers import config
    from helpers.callbacks import StepTimer

    rows = json.loads(Path(args.data).read_text())
    # The configuration measured in RESULTS.md (2 prompts x 8 samples, 2 updates per batch), pinned so that
    # later changes to the default preset do not change what this benchmark compares.
    settings = config.resolve("from_sft", "grpo", sft_model=args.sft_model, max_steps=args.steps + args.warmup,
                              save_steps=10_000, temperature=args.temperature, batch_size=16, num_iterations=2,
                              scale_rewards="group", train_samples_per_group=0, difficulties=())
    results = {}
    for kind in args.variants:
        with tempfile.TemporaryDirectory() as tmp:
            trainer = build(kind, settings, rows, Path(args.sft_model), Path(tmp))
            timer = StepTimer()
            trainer.add_callback(timer)
            start = time.perf_counter()
            trainer.train()
            wall = time.perf_counter() - start
        logs = [h for h in trainer.state.log_history if "reward" in h]
        timed = timer.times[args.warmup:]
        results[kind] = {"seconds_per_step": round(statistics.mean(timed), 2), "wall_s": round(wall, 1),
                         "rewards": [round(h["reward"], 3) for h in logs],
                         "completion_length": [round(h.get("completions/mean_length", 0), 1) for h in logs]}
        print(f"{kind:13s} {results[kind]['seconds_per_step']:.1f} s/step  rewards {results[kind]['rewards']}",
              flush=True)
    report = {"benchmark": "grpo_speed", "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
              "settings": {k: getattr(settings, k) for k in ("batch_size", "num_generations", "max_new_tokens", "temperature",
                                                             "num_iterations", "beta")},
              "results": results}
    if {"trl_defaults", "workbook"} <= set(results):
        report["speedup"] = round(results["trl_defaults"]["seconds_per_step"] / results["workbook"]["seconds_per_step"], 2)
        print(f"speed-up (TRL defaults s/step / workbook s/step): {report['speedup']:.2f}x")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "grpo_speed.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
