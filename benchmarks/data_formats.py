"""How fast each import format loads, and what it drops: a real-size file of every format.

Builds ``--rows`` generated problems (helpers.problems) written the way each format writes them -- GSM8K
JSONL (``#### 42``, calculator annotations on every equation), MATH JSONL (``\\boxed{...}`` in a LaTeX-ish
solution), CSV with a ``question,answer`` header, and a ``datasets`` folder written by ``save_to_disk`` with
other field names -- with one row in 100 broken on purpose, then loads each through ``python -m helpers
data`` in this process and prints rows read, kept, dropped by reason, and seconds (loading only; building
the files is not timed). Pure Python: no torch.

    python benchmarks/data_formats.py --rows 7000 --out /tmp/formats
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import platform
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from helpers.__main__ import main as cli  # noqa: E402
from helpers.problems import generate_problems  # noqa: E402

_EQUATION = re.compile(r"(\d+(?: ?[+\-×x*/] ?\d+)+) = (\d+(?:/\d+)?)(?![\d/])")


def _steps_and_final(problem: dict) -> tuple[list[str], str]:
    *steps, _ = problem["answer"].splitlines()
    return steps, problem["final_answer"]


def _with_calculator(line: str) -> str:
    """GSM8K's habit: ``5 + 3 = <<5+3=8>>8`` for every computed result."""
    return _EQUATION.sub(lambda m: f"{m.group(1)} = <<{m.group(1).replace(' ', '')}={m.group(2)}>>{m.group(2)}", line)


def build(rows: int, folder: Path) -> dict[str, tuple[Path, list[str]]]:
    """The four files and the command-line flags that read each."""
    folder.mkdir(parents=True, exist_ok=True)
    problems = generate_problems(rows, seed=11)
    gsm, math, flat = [], [], []
    for i, p in enumerate(problems):
        steps, final = _steps_and_final(p)
        broken = i % 100 == 99
        gsm.append({"question": p["question"],
                    "answer": "\n".join(_with_calculator(s) for s in steps) + ("" if broken else f"\n#### {final}")})
        boxed = "\\sqrt{2}" if broken else (f"\\frac{{{final.split('/')[0]}}}{{{final.split('/')[1]}}}"
                                           if "/" in final else final)
        math.append({"problem": p["question"], "solution": " ".join(steps) + f" So the answer is $\\boxed{{{boxed}}}$.",
                     "level": p.get("difficulty"), "type": p.get("family")})
        flat.append({"question": p["question"], "answer": "" if broken else p["answer"], "source": p.get("family")})
    paths = {}
    paths["gsm8k"] = folder / "gsm8k_style.jsonl"
    paths["gsm8k"].write_text("".join(json.dumps(r) + "\n" for r in gsm))
    paths["math"] = folder / "math_style.jsonl"
    paths["math"].write_text("".join(json.dumps(r) + "\n" for r in math))
    paths["csv"] = folder / "pairs.csv"
    buf = io.StringIO()
    writer = csv.DictWriter(buf, ["question", "answer", "source"])
    writer.writeheader()
    writer.writerows(flat)
    paths["csv"].write_text(buf.getvalue())
    import datasets
    from datasets import Dataset

    datasets.disable_progress_bars()

    paths["datasets"] = folder / "saved_dataset"
    Dataset.from_list([{"query": r["question"], "response": r["answer"]} for r in gsm]).save_to_disk(
        str(paths["datasets"]))
    return {
        "gsm8k": (paths["gsm8k"], ["--format", "gsm8k"]),
        "math": (paths["math"], ["--format", "math"]),
        "csv": (paths["csv"], []),
        "datasets (save_to_disk, gsm8k answers, mapped fields)": (
            paths["datasets"], ["--format", "gsm8k", "--question-field", "query", "--answer-field", "response"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=7000)
    parser.add_argument("--out", default="/tmp/data_formats")
    args = parser.parse_args()
    out = Path(args.out)
    files = build(args.rows, out)
    from helpers.runs import machine_description

    print(f"machine: {machine_description()}, python {platform.python_version()}")
    print("| format | file | rows read | kept | dropped by reason | seconds |")
    print("|---|---|---|---|---|---|")
    for name, (path, flags) in files.items():
        buf = io.StringIO()
        start = time.perf_counter()
        with contextlib.redirect_stdout(buf):
            code = cli(["data", str(path), *flags, "--out", str(out / f"converted_{path.stem}.json")])
        wall = time.perf_counter() - start
        report = json.loads(buf.getvalue())
        assert code == 0, code
        print(f"| {name} | {path.name} | {report['rows_read']} | {report['rows_kept']} | "
              f"{report['dropped_by_reason']} | {report['seconds']} (with writing: {wall:.2f}) |")


if __name__ == "__main__":
    main()
