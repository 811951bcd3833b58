"""Export times and sizes for the embedded model, and the GGUF answer check.

Exports one SFT run of the embedded SmolLM2-135M-Instruct (``--run``, a run folder with final_model/)
twice, with a q8_0 and an f16 GGUF file, timing each part (``export.json`` of each export), then loads the
q8_0 file back with transformers' GGUF loader and answers ``--questions`` held-out questions greedily with
both the merged model and the GGUF model, counting identical answers and identical final answers.
Writes under ``$WORKBOOK_OUTPUT`` (set it to a scratch folder to leave output/ alone).

    WORKBOOK_OUTPUT=/tmp/wb python benchmarks/export_embedded.py --run /tmp/wb/sft_probe \\
        --eval-data data/training_data/sft_val.json --questions 10 --max-new-tokens 64
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from helpers import export  # noqa: E402
from helpers.answers import answers_equal, extract_final_answer  # noqa: E402
from helpers.runs import machine_description, output_root  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", required=True)
    parser.add_argument("--eval-data", default="data/training_data/sft_val.json")
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args()
    results = {"machine": machine_description(), "exports": {}}
    for gguf_type in ("q8_0", "f16"):
        start = time.perf_counter()
        report = export.export_run(args.run, output_root() / f"export_{gguf_type}", gguf_type=gguf_type)
        report["wall_seconds"] = round(time.perf_counter() - start, 1)
        results["exports"][gguf_type] = report
        print(json.dumps(report, indent=1, default=str), flush=True)
    rows = [r for r in json.loads(Path(args.eval_data).read_text()) if r.get("final_answer")][: args.questions]
    folder = output_root() / "export_q8_0"
    start = time.perf_counter()
    checked = export.compare_gguf_answers(folder, results["exports"]["q8_0"]["gguf"]["file"],
                                          [r["question"] for r in rows], args.max_new_tokens)
    for row, ref in zip(checked, rows):
        row["same_final_answer"] = extract_final_answer(row["merged"]) == extract_final_answer(row["gguf"])
        row["merged_correct"] = answers_equal(extract_final_answer(row["merged"]), ref["final_answer"])
        row["gguf_correct"] = answers_equal(extract_final_answer(row["gguf"]), ref["final_answer"])
    results["answer_check"] = {
        "questions": len(checked), "max_new_tokens": args.max_new_tokens, "seconds": round(time.perf_counter() - start, 1),
        "identical_answers": sum(r["same"] for r in checked),
        "identical_final_answers": sum(r["same_final_answer"] for r in checked),
        "merged_correct": sum(r["merged_correct"] for r in checked),
        "gguf_correct": sum(r["gguf_correct"] for r in checked), "rows": checked}
    print(json.dumps({k: v for k, v in results["answer_check"].items() if k != "rows"}, indent=1))
    (output_root() / "export_measure.json").write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
