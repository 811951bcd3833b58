"""``python -m helpers check``: the setup check from the command line (same as 00_setup_check).

``python -m helpers prepare-model`` converts the embedded GGUF model once (make setup runs it).
``python -m helpers notebooks --preset fast_test`` runs every notebook headless (make demo).
"""

import argparse
import json
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="versions, device, the embedded model, one SFT and one GRPO step")
    check.add_argument("--no-train", action="store_true", help="skip the SFT and GRPO steps")
    check.add_argument("--out", default=None, help="folder for setup_check.json (default output/setup_check)")
    sub.add_parser("prepare-model", help="convert the embedded GGUF model to safetensors (once)")
    nbs = sub.add_parser("notebooks", help="run every numbered notebook headless with papermill, in order")
    nbs.add_argument("--preset", default="fast_test")
    nbs.add_argument("--only", nargs="*", default=None, help="notebook number prefixes, e.g. 00 01")
    args = parser.parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
