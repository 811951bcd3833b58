"""Batched generation on CPU: float32 weights against bf16 weights, side by side in one run.

Why: on two cores sampling is most of the reward stage's time (GRPO, rejection sampling and the headroom
measure all generate), and on a CPU with AVX512-BF16 or AMX a bf16 matmul ran 3.8x faster than float32
(benchmarks/RESULTS.md). This measures what that is worth for generation before any trainer uses it.

Same model (the embedded SmolLM2-135M), the same prompts (reward-stage questions through the chat template,
left-padded), greedy, exactly ``--new-tokens`` tokens per row (``min_new_tokens`` = ``max_new_tokens``), so
every variant does the same work. Prints tokens/s per variant, the ratio to float32, and how many rows' first 32
greedy tokens are the same as float32's (bf16 rounds; greedy paths part where two tokens are nearly tied).

    python benchmarks/generation_speed.py --batch 64 --new-tokens 64
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def generate(model, tok, questions, new_tokens):
    import torch

    from helpers.answers import chat_messages

    texts = [tok.apply_chat_template(chat_messages(q), tokenize=False, add_generation_prompt=True)
             for q in questions]
    batch = tok(texts, return_tensors="pt", padding=True)
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(**batch, do_sample=False, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                             pad_token_id=tok.pad_token_id)
    seconds = time.perf_counter() - start
    return seconds, out[:, batch["input_ids"].shape[1]:]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=64, help="rows generated together (GRPO default: 8 x 8)")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--data", default="data/training_data/grpo_train.json")
    parser.add_argument("--out", default="output/benchmarks")
    args = parser.parse_args()

    import torch

    from helpers.config import detect_device
    from helpers.models import load_base_model, load_tokenizer

    questions = [row["question"] for row in json.loads(Path(args.data).read_text())[:args.batch]]
    tok = load_tokenizer("embedded", padding_side="left")
    model = load_base_model("embedded").eval()
    generate(model, tok, questions[:2], 4)  # warm-up
    results, reference = {}, None
    for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        model.to(dtype)
        generate(model, tok, questions[:2], 4)
        seconds, tokens = generate(model, tok, questions, args.new_tokens)
        reference = tokens if reference is None else reference
        same = sum(bool(torch.equal(a[:32], b[:32])) for a, b in zip(tokens, reference))
        results[name] = {"seconds": round(seconds, 2), "tokens_per_s": round(tokens.numel() / seconds, 1),
                         "rows_same_first_32_tokens_as_float32": f"{same}/{len(questions)}"}
        print(f"{name:9s} {seconds:6.1f} s  {tokens.numel() / seconds:6.1f} tokens/s  "
              f"same first 32 tokens as float32: {same}/{len(questions)}", flush=True)
    ratio = results["bfloat16"]["tokens_per_s"] / results["float32"]["tokens_per_s"]
    print(f"bf16 / float32: {ratio:.2f}x")
    report = {"benchmark": "generation_speed", "machine": f"{platform.processor() or platform.machine()}, "
              f"{torch.get_num_threads()} threads, cpu bf16: {detect_device().bf16_supported}",
              "batch": args.batch, "new_tokens": args.new_tokens, "results": results, "ratio": round(ratio, 2)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "generation_speed.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
