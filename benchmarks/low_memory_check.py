"""SFT ``low_memory`` against SFT ``default`` on CPU: the same model, in less memory?

``low_memory`` on CPU trains batches of 4 accumulated twice, in passes of at most 256 tokens, where
``default`` trains batches of 8 in passes of at most 512. transformers groups rows by length over the
effective batch (batch x accumulation), so both see the same rows in the same order, and the loss is
normalised over the same 8 rows: the gradient is the same up to floating-point summation order and the
LoRA dropout masks (drawn per pass). This script measures that claim instead of asserting it: it trains
both presets for ``--steps`` steps from the same seed on the same data, each in its own process (so each
has its own peak RSS), then prints side by side

- the peak RSS and seconds per step of each run (from its ``run.json``),
- the largest difference of the per-step training losses,
- the adapters' relative difference (||A_low - A_default|| / ||A_default|| over all LoRA tensors),
- both adapters' greedy answers on the first ``--questions`` transfer questions: how many are identical,
  and the strict accuracy of each (the same evaluation as 03's transfer set).

``--lora-dropout 0`` takes the dropout masks out of the comparison, leaving only summation order.

    python benchmarks/low_memory_check.py --steps 20 --questions 40
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def train(preset: str, steps: int, out: Path, dropout: float | None) -> dict:
    cmd = [sys.executable, "-m", "helpers.sft", "--config", preset, "--max-steps", str(steps),
           "--train-data", "data/training_data/sft_train.json", "--val-data", "data/training_data/sft_val.json",
           "--output-dir", str(out)]
    if dropout is not None:
        cmd += ["--lora-dropout", str(dropout)]
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f"{preset}.log", "w") as log:  # progress bars and warnings, kept out of the report
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=log, stderr=subprocess.STDOUT)
    return json.loads((out / "run.json").read_text())


def losses(run_dir: Path) -> dict[int, float]:
    rows = [line.split("\t") for line in (run_dir / "training_log.txt").read_text().splitlines()[1:]]
    return {int(r[0]): float(r[1]) for r in rows if len(r) > 1 and r[1]}


def adapter_difference(a: Path, b: Path) -> float:
    from safetensors.torch import load_file

    left, right = load_file(a / "adapter_model.safetensors"), load_file(b / "adapter_model.safetensors")
    diff = sum(float((left[k] - right[k]).pow(2).sum()) for k in left)
    norm = sum(float(left[k].pow(2).sum()) for k in left)
    return (diff / norm) ** 0.5


def answers(adapter: Path, records: list[dict]):
    from helpers.evaluate import GenerationSettings, evaluate_model
    from helpers.models import load_finetuned

    model, tokenizer = load_finetuned(adapter)
    report = evaluate_model(model, tokenizer, records, name=adapter.parent.name,
                            settings=GenerationSettings(max_new_tokens=256, batch_size=20), progress=False)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--questions", type=int, default=40, help="transfer questions both adapters answer (0: none)")
    parser.add_argument("--lora-dropout", type=float, default=None, help="None: each preset's own (0.05)")
    parser.add_argument("--out", default="output/benchmarks/low_memory_check")
    args = parser.parse_args()

    from helpers.evaluate import transfer_records

    out = ROOT / args.out / time.strftime("%Y%m%d_%H%M%S")
    print(f"{time.strftime('%Y-%m-%d %H:%M')} · {platform.machine()} · {args.steps} steps per preset · "
          f"lora_dropout {args.lora_dropout if args.lora_dropout is not None else 'preset'}")
    runs = {p: train(p, args.steps, out / p, args.lora_dropout) for p in ("default", "low_memory")}
    steps = {p: r["global_step"] for p, r in runs.items()}
    if steps["default"] != steps["low_memory"]:
        print(f"error: the presets trained {steps} steps; nothing to compare", file=sys.stderr)
        return 2
    print("\n| preset | peak RSS | s/step |\n|---|---|---|")
    for p, r in runs.items():
        print(f"| {p} | {r['peak_memory_gb']:.2f} GB | {r['train_seconds'] / r['global_step']:.2f} |")
    a, b = losses(out / "default"), losses(out / "low_memory")
    shared = sorted(set(a) & set(b))
    worst = max(shared, key=lambda s: abs(a[s] - b[s]))
    print(f"\ntraining loss at {len(shared)} logged steps: largest difference {abs(a[worst] - b[worst]):.2e} "
          f"(step {worst}: {a[worst]:.5f} vs {b[worst]:.5f})")
    print(f"adapter relative difference after {steps['default']} steps: "
          f"{adapter_difference(out / 'default' / 'final_model', out / 'low_memory' / 'final_model'):.2e}")

    if not args.questions:
        return 0
    records = transfer_records(args.questions)
    reports = {p: answers(out / p / "final_model", records) for p in runs}
    same = sum(x["completion"] == y["completion"] for x, y in zip(reports["default"].rows, reports["low_memory"].rows))
    print(f"\ngreedy answers on {len(records)} transfer questions: {same} of {len(records)} identical")
    for p, rep in reports.items():
        right = sum(bool(r["correct_strict"]) for r in rep.rows)
        print(f"  {p}: strict {right}/{len(records)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
