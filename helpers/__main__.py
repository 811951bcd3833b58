"""``python -m helpers check``: the setup check from the command line (same as 00_setup_check).

``python -m helpers prepare-model`` converts the embedded GGUF model once (make setup runs it).
``python -m helpers notebooks --preset fast_test`` runs every notebook headless (make demo).
``python -m helpers data FILE --format gsm8k --out data/mine.json`` checks and converts QA data (as 01_data_prep).
``python -m helpers export --run output/<run> --to output/export_<date>`` merges, converts to GGUF, writes a card.
``python -m helpers evaluate --run output/sft_<date>`` grades runs against the base on both evaluation sets.
``python -m helpers retention`` builds the retention set (the questions the base model answers right).
``python -m helpers replay`` builds the replay set (the base model's right answers to training questions).
``python -m helpers headroom --sft-model output/sft_<date>`` measures pass@k before a reward stage (as 04 does).
"""

import json
import sys


def main(argv=None) -> int:
    from helpers.config import PRESETS
    from helpers.training import ArgumentParser  # user errors: one line `error: ...`, exit status 2

    parser = ArgumentParser(prog="python -m helpers")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="versions, device, the embedded model, one SFT and one GRPO step")
    check.add_argument("--no-train", action="store_true", help="skip the SFT and GRPO steps")
    check.add_argument("--out", default=None, help="folder for setup_check.json (default output/setup_check)")
    sub.add_parser("prepare-model", help="convert the embedded GGUF model to safetensors (once)")
    nbs = sub.add_parser("notebooks", help="run every numbered notebook headless with papermill, in order")
    nbs.add_argument("--preset", default="fast_test", choices=PRESETS)
    nbs.add_argument("--only", nargs="*", default=None, help="notebook number prefixes, e.g. 00 01")
    ev = sub.add_parser("evaluate", help="the base model and trained runs on the transfer and in-distribution "
                                          "sets, with retention and paired statistics")
    ev.add_argument("--run", nargs="+", required=True, help="run folders (output/sft_..., output/grpo_...)")
    ev.add_argument("--preset", default="default", help="how much is evaluated (fast_test | default | ...)")
    ev.add_argument("--eval-data", default="data/training_data/sft_val.json", help="in-distribution held-out file")
    ev.add_argument("--seed", type=int, default=0, help="which in-distribution questions are drawn")
    ev.add_argument("--out", default=None, help="metrics file (default output/evaluate_<date>/metrics.json)")
    ret = sub.add_parser("retention", help="build data/retention_set.json: the questions the base model answers right")
    ret.add_argument("--model-name", default="embedded")
    ret.add_argument("--max-new-tokens", type=int, default=256)
    rep = sub.add_parser("replay", help="build data/replay_set.json: the base model's verified-right answers to "
                                         "training-generator questions, which 01 adds to SFT training")
    rep.add_argument("--model-name", default="embedded")
    rep.add_argument("--n-generated", type=int, default=384, help="generated questions to answer")
    rep.add_argument("--n-concept", type=int, default=0, help="training-split concept questions to answer")
    rep.add_argument("--max-new-tokens", type=int, default=192)
    room = sub.add_parser("headroom", help="pass@k of an SFT policy before a reward stage, on the reward stage's "
                          "prompts and the transfer set (04's headroom section)")
    room.add_argument("--sft-model", default="", help="an SFT run folder or its final_model (default: the newest)")
    room.add_argument("--train-data", default="data/training_data/grpo_train.json", help="the reward stage's prompts")
    room.add_argument("--prompts", type=int, default=300, help="prompts per set")
    room.add_argument("--samples", type=int, default=16, help="samples per prompt (the largest k)")
    room.add_argument("--temperature", type=float, default=0.7, help="the reward stage's training temperature")
    room.add_argument("--max-new-tokens", type=int, default=128, help="completion budget, as in training")
    room.add_argument("--record-in", default="", help="a reward-stage run folder: store it in its run.json "
                      "as 04 does, so 05's verdict shows it")
    room.add_argument("--out", default=None, help="JSON file (default output/headroom_<date>/headroom.json)")
    data = sub.add_parser("data", help="check QA data in any supported format and write it as a workbook QA file")
    data.add_argument("inputs", nargs="*", help="JSON, JSONL or CSV files, or folders written by datasets' save_to_disk")
    data.add_argument("--hub", default=None, help="a Hugging Face hub dataset id (needs the hub), e.g. openai/gsm8k")
    data.add_argument("--hub-config", default=None, help="the hub dataset's configuration, e.g. main")
    data.add_argument("--split", default=None, help="split of a hub dataset or a saved DatasetDict (default: train)")
    data.add_argument("--format", dest="style", default="qa", choices=("qa", "gsm8k", "math"),
                      help="how answers are written: qa (as is), gsm8k ('#### 42'), math (\\boxed{...})")
    data.add_argument("--question-field", default=None, help="column holding the question (default: question; "
                      "problem for math)")
    data.add_argument("--answer-field", default=None, help="column holding the answer (default: answer; solution "
                      "for math)")
    data.add_argument("--keep-calculator", action="store_true", help="gsm8k: keep the <<48/2=24>> annotations")
    data.add_argument("--on-bad-rows", default="drop", choices=("drop", "raise"))
    data.add_argument("--out", default=None, help="write the valid rows here, a .json file (nothing on failure)")
    export = sub.add_parser("export", help="a run's model as a merged safetensors folder and a GGUF file, with a card")
    export.add_argument("--run", required=True, help="a run folder (output/sft_... or output/grpo_...)")
    export.add_argument("--to", default=None, help="export folder (default: output/export_<date>)")
    export.add_argument("--gguf-type", default="q8_0", choices=("q8_0", "f16", "f32", "none"),
                        help="GGUF weights: q8_0 (default), f16, f32, or none for no GGUF")
    export.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"),
                        help="dtype of the merged safetensors weights")
    export.add_argument("--allow-outside-output", action="store_true", help="allow --to outside output/")
    args = parser.parse_args(argv)
    if args.command == "data":
        return _data(args)
    if args.command == "export":
        return _export(args)
    if args.command == "evaluate":
        return _evaluate(args)
    if args.command in ("retention", "replay"):
        return _build_base_answers(args, parser)
    if args.command == "headroom":
        return _headroom(args, parser)
    if args.command == "prepare-model":
        from helpers.models import prepare_embedded_model

        print(prepare_embedded_model())
        return 0
    if args.command == "notebooks":
        from helpers.notebooks import run_all

        run_all(args.preset, args.only)
        return 0
    from helpers.check import run_setup_check

    report = run_setup_check(args.out, train_steps=not args.no_train)
    print(json.dumps(report, indent=1, default=str))
    return 0 if report["ok"] else 1


def _build_base_answers(args, parser) -> int:
    """``retention`` and ``replay``: grade the base model's own answers and store the right ones."""
    from helpers.models import ModelLoadError

    if args.max_new_tokens < 1:
        parser.error("--max-new-tokens: must be >= 1")
    try:
        if args.command == "retention":
            from helpers.compare import build_retention_file

            summary = build_retention_file(args.model_name, args.max_new_tokens)
        else:
            from helpers.replay import build_replay_file

            if args.n_generated < 0 or args.n_concept < 0 or not args.n_generated + args.n_concept:
                parser.error("--n-generated, --n-concept: must be >= 0 and not both 0")
            summary = build_replay_file(args.model_name, args.n_generated, args.n_concept, args.max_new_tokens)
    except (ModelLoadError, FileNotFoundError, ValueError) as err:
        print("error: " + " ".join(str(err).split()), file=sys.stderr)  # one line: a hub error spans several
        return 2
    print(json.dumps(summary, indent=1))
    return 0


def _headroom(args, parser) -> int:
    """``python -m helpers headroom``: 04's headroom section from the command line, one JSON file."""
    from pathlib import Path

    from helpers import evaluate, headroom
    from helpers.compare import base_model_name
    from helpers.grpo import resolve_sft_model
    from helpers.models import ModelLoadError, load_adapter, load_base_model, load_tokenizer
    from helpers.runs import RunPaths, new_run_dir, read_run, repo_path, update_run, write_json_atomic

    for name in ("prompts", "samples", "max_new_tokens"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}: must be >= 1")
    if not args.temperature > 0:
        parser.error("--temperature: must be > 0")
    record_in = repo_path(args.record_in) if args.record_in else None
    if record_in and not (record_in / "run.json").is_file():
        parser.error(f"--record-in: {record_in} has no run.json")
    try:
        adapter = resolve_sft_model(args.sft_model and str(repo_path(args.sft_model)))
        base_name = base_model_name(adapter.parent if (adapter.parent / "run.json").is_file() else None)
        try:
            rows = evaluate.load_eval_records(repo_path(args.train_data), numeric_only=True)
        except (OSError, ValueError, TypeError, AttributeError) as err:  # missing, malformed, not a list of rows
            raise ValueError(f"--train-data: {args.train_data}: {err}") from None
        if not rows:
            raise ValueError(f"--train-data: {args.train_data} has no row with a final_answer to sample for")
        model = load_adapter(load_base_model(base_name), adapter)
        tokenizer = load_tokenizer(str(adapter))
    except (ModelLoadError, FileNotFoundError, ValueError) as err:
        print("error: " + " ".join(str(err).split()), file=sys.stderr)
        return 2
    rooms = headroom.reward_stage_headroom(model, tokenizer, rows, "default", args.temperature, args.max_new_tokens,
                                           args.prompts, args.samples,
                                           fingerprint=evaluate.model_fingerprint(base_name, adapter))
    result = {name: rep.as_dict() for name, rep in rooms.items()}
    out = Path(args.out) if args.out else new_run_dir("headroom").root / "headroom.json"
    write_json_atomic(out, {"sft_model": str(adapter), "train_data": args.train_data, "headroom": result})
    if record_in:
        if read_run(record_in).get("headroom"):
            print(f"note: {record_in / 'run.json'} already had a headroom; replaced", file=sys.stderr)
        update_run(RunPaths(record_in), headroom=result)
    print("\n".join(headroom.headroom_sentence(rep, name) for name, rep in rooms.items()))
    print(f"written: {out}")
    return 0


def _evaluate(args) -> int:
    """``python -m helpers evaluate``: a scorecard on both sets, its headline, and metrics.json."""
    from pathlib import Path

    from helpers.compare import evaluate_runs
    from helpers.evaluate import write_metrics
    from helpers.runs import new_run_dir, repo_path

    runs = [repo_path(r) for r in args.run]
    for run in runs:
        if not (Path(run) / "run.json").is_file():
            print(f"error: --run: {run} has no run.json", file=sys.stderr)
            return 2
    try:
        result = evaluate_runs(runs, args.preset, args.eval_data, args.seed)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else new_run_dir("evaluate").root / "metrics.json"
    write_metrics(out, result["reports"], {k: result[k] for k in ("scorecard", "retention", "paired", "headlines",
                                                                   "plan", "eval_data", "eval_seed")})
    for row in result["scorecard"]:
        print("  ".join(f"{k}={v}" for k, v in row.items()))
    print("\n".join(result["headlines"]))
    print(f"written: {out}")
    return 0


def _data(args) -> int:
    """``python -m helpers data``: load and check, report rows read and dropped by reason, write all or nothing."""
    import time
    from pathlib import Path

    from helpers import data

    fmt = dict(style=args.style, question_field=args.question_field, answer_field=args.answer_field,
               keep_calculator=args.keep_calculator)
    start = time.perf_counter()
    try:
        if bool(args.inputs) == bool(args.hub):
            raise ValueError("give input files or folders, or --hub ID (one of the two)")
        if args.hub:
            loaded = data.load_hf_dataset(args.hub, args.split or "train", args.hub_config, args.on_bad_rows, **fmt)
        else:
            loaded = data.load_qa_files(args.inputs, args.on_bad_rows, split=args.split, **fmt)
        seconds = time.perf_counter() - start
        written = None
        if args.out:
            out = Path(args.out)
            written = data.write_training_files(out.parent, {out.name: loaded.rows})[0]["file"]
    except (data.DataError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps({"inputs": loaded.path, "format": args.style, "rows_read": len(loaded.rows) + len(loaded.bad_rows),
                      "rows_kept": len(loaded.rows), "dropped_by_reason": loaded.reasons(),
                      "seconds": round(seconds, 2), "written": written, "first_bad_rows": loaded.table()[:10]},
                     indent=1, ensure_ascii=False))
    return 0


def _export(args) -> int:
    """``python -m helpers export``: merged model, GGUF and model card of one run."""
    from helpers.export import ExportError, export_run
    from helpers.models import ModelLoadError

    try:
        report = export_run(args.run, args.to, gguf_type=None if args.gguf_type == "none" else args.gguf_type,
                            dtype=args.dtype, allow_outside_output=args.allow_outside_output)
    except (ExportError, ModelLoadError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
