"""GRPO step time: the workbook's settings against TRL's defaults, side by side in one run.

Baseline: TRL's GRPOTrainer with its defaults plus only ``bf16=False,
gradient_checkpointing=False``, and the same model, LoRA, group size
(num_generations), completion length, batch size, rewards and prompts. Both
start from the same policy (an SFT adapter folded into the embedded model, as
in 04_grpo_train), so completion lengths are realistic.

Prints seconds per step and the mean reward per step for both, and the ratio,
for each configuration asked for:

- ``default``: the GRPO ``default``/``from_sft`` preset as it is (8 prompts x 8
  samples, 128 tokens, temperature 0.7, easy and medium prompts). TRL gets the
  same model, group size, completion length, batch, prompts, rewards and
  sampling temperature (so the rewards are comparable), and otherwise its own
  defaults plus ``bf16=False, gradient_checkpointing=False``.
- ``pinned``: the configuration first measured in RESULTS.md (2 prompts x 8
  samples, 2 updates per batch, temperature 1.0 for both), so that later changes
  to the preset do not change what that row compares.

A run whose process grows past ``--max-rss-gb`` stops itself (TRL's defaults
train all 64 samples in one pass), and the report says so. The variant
``trl_accumulated`` is TRL with only its own memory setting changed:
the same 64 samples per step, trained in 4 accumulated passes of 16
(``gradient_accumulation_steps=4``; one optimizer step per generation batch,
the same loss normaliser).

    python benchmarks/grpo_speed.py --sft-model output/sft_.../final_model --configs default pinned --steps 2
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
    # trl_accumulated: TRL's own way to fit memory, the same 64 samples per step trained in 4 accumulated passes
    passes = 4 if kind == "trl_accumulated" else 1
    args = GRPOConfig(output_dir=str(out), bf16=False, gradient_checkpointing=False, report_to=[],
                      per_device_train_batch_size=settings.batch_size // passes, gradient_accumulation_steps=passes,
                      num_generations=settings.num_generations,
                      max_completion_length=settings.max_new_tokens, max_steps=settings.max_steps,
                      temperature=settings.temperature, reward_weights=weights, logging_steps=1,
                      save_strategy="no", seed=settings.seed)
    peft = lora_config(settings)
    peft.target_modules = set(targets)
    data = Dataset.from_list([grpo.to_prompt_row(r) for r in rows])
    return GRPOTrainer(model=model, reward_funcs=funcs, args=args, train_dataset=data, processing_class=tokenizer,
                       peft_config=peft)


def configuration(name: str, args):
    """The settings a configuration row measures (see the module docstring)."""
    from helpers import config

    if name == "default":
        return config.resolve("from_sft", "grpo", sft_model=args.sft_model, max_steps=args.steps + args.warmup,
                              save_steps=10_000)
    # The configuration measured first in RESULTS.md (2 prompts x 8 samples, 2 updates per batch), pinned so that
    # later changes to the default preset do not change what this row compares.
    return config.resolve("from_sft", "grpo", sft_model=args.sft_model, max_steps=args.steps + args.warmup,
                          save_steps=10_000, temperature=args.temperature, batch_size=16, num_iterations=2,
                          scale_rewards="group", train_samples_per_group=0, difficulties=())


def stop_above(limit_gb: float):
    """A watchdog thread: ends this process (exit 3) when its RSS passes ``limit_gb``."""
    import os
    import threading

    page = os.sysconf("SC_PAGE_SIZE")

    def watch():
        while True:
            with open("/proc/self/statm") as f:
                rss = int(f.read().split()[1]) * page
            if rss > limit_gb * 2**30:
                print(f"STOPPED: RSS passed {limit_gb} GB", flush=True)
                os._exit(3)
            time.sleep(0.05)

    threading.Thread(target=watch, daemon=True).start()


def peak_rss_gb() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 2**20, 2)
    return 0.0


def measure(kind: str, settings, rows, args) -> dict:
    """One trainer, in this process: seconds per step after the warm-up, rewards and lengths per step."""
    from helpers.callbacks import StepTimer

    with tempfile.TemporaryDirectory() as tmp:
        trainer = build(kind, settings, rows, Path(args.sft_model), Path(tmp))
        timer = StepTimer()
        trainer.add_callback(timer)
        start = time.perf_counter()
        trainer.train()
        wall = time.perf_counter() - start
    logs = [h for h in trainer.state.log_history if "reward" in h]
    timed = timer.times[args.warmup:]
    return {"seconds_per_step": round(statistics.mean(timed), 2), "step_s": [round(t, 1) for t in timer.times],
            "wall_s": round(wall, 1), "rewards": [round(h["reward"], 3) for h in logs],
            "completion_length": [round(h.get("completions/mean_length", 0), 1) for h in logs],
            "peak_rss_gb": peak_rss_gb()}


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
    parser.add_argument("--configs", nargs="*", default=["default", "pinned"], choices=["default", "pinned"])
    parser.add_argument("--max-rss-gb", type=float, default=16.0, help="a run that grows past this stops itself")
    parser.add_argument("--child", nargs=2, metavar=("CONFIG", "KIND"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:  # one trainer per process, so that each peak RSS is its own
        import torch

        stop_above(args.max_rss_gb)
        settings = configuration(args.child[0], args)
        rows = json.loads(Path(args.data).read_text())
        if settings.difficulties:  # as helpers.grpo.train_grpo filters them (rows without one stay)
            rows = [r for r in rows if r.get("difficulty") in settings.difficulties or not r.get("difficulty")]
        res = measure(args.child[1], settings, rows, args)
        res["threads"] = torch.get_num_threads()
        res["settings"] = {k: getattr(settings, k) for k in ("batch_size", "num_generations", "max_new_tokens",
                                                             "temperature", "num_iterations", "beta",
                                                             "train_samples_per_group", "scale_rewards")}
        print("RESULT " + json.dumps(res), flush=True)
        return

    import subprocess

    report = {"benchmark": "grpo_speed", "machine": f"{platform.machine()}", "date": time.strftime("%Y-%m-%d"),
              "configs": {}}
    for name in args.configs:
        results = {}
        for kind in args.variants:
            cmd = [sys.executable, __file__, "--child", name, kind, "--sft-model", args.sft_model, "--steps",
                   str(args.steps), "--warmup", str(args.warmup), "--data", args.data, "--temperature",
                   str(args.temperature), "--max-rss-gb", str(args.max_rss_gb)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(("RESULT ", "STOPPED"))]
            if not lines or lines[-1].startswith("STOPPED"):
                results[kind] = {"stopped": lines[-1] if lines else f"exit {proc.returncode}: {proc.stderr[-2000:]}"}
            else:
                results[kind] = json.loads(lines[-1][7:])
            print(f"{name:8s} {kind:13s} {json.dumps(results[kind])}", flush=True)
        entry = {"results": results}
        if all("seconds_per_step" in results.get(k, {}) for k in ("trl_defaults", "workbook")):
            entry["speedup"] = round(results["trl_defaults"]["seconds_per_step"]
                                     / results["workbook"]["seconds_per_step"], 2)
            print(f"{name}: speed-up (TRL defaults s/step / workbook s/step): {entry['speedup']:.2f}x", flush=True)
        report["configs"][name] = entry
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "grpo_speed.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
