"""GPU benchmark: SFT and GRPO speed and memory of the workbook's presets on the real shapes of two models.

What it measures, per model shape and preset (``default``, ``low_memory``, each from
``helpers.config.resolve`` on the detected GPU, so with the changes the workbook would make to fit the card):

- SFT: real tokens per second, MFU and hardware FLOP utilisation, peak GPU memory, next to the memory
  ``helpers.gpu_memory`` estimated before loading;
- GRPO: seconds per step, split into generation and the rest (scoring and training), generated tokens per
  second, peak memory, with the generation path ``resolve`` chose; and, per shape, generation alone at group
  size 8 on each path that can run (plain ``generate`` against continuous batching).

Models are randomly initialised with the real shapes (speed and memory do not depend on the weights, and no
weights can be fetched): deepseek-math-7b and Qwen2.5-1.5B, see ``helpers.gpu_memory``. ``low_memory``
quantizes the linear layers to NF4 with double quantization and bf16 compute (bitsandbytes, as
``from_pretrained(quantization_config=...)`` does); peak memory is counted from after the model is built. The
trainers are the workbook's own (``helpers.sft.build_sft_trainer``, ``helpers.grpo.build_grpo_trainer``). Random
weights almost never sample EOS, so every completion is ``max_new_tokens`` long and, with truncated completions
kept in the loss, every sample is trained: the GRPO training time is the preset's upper bound.

FLOPs. Model FLOPs per trained token: 4 x N for a LoRA step (forward 2N, backward 2N for the activation
gradients; the frozen weights get no weight gradients), N the parameters in matrix multiplies (linear layers
and the LM head, not the embedding lookup), plus 6 x N_lora for the adapter, plus causal attention
6 x layers x hidden x sequence (forward 2 x layers x hidden x sequence for QK^T and AV, halved for the causal
mask, times 3 for forward and backward). Gradient checkpointing recomputes the forward pass: 2 x N plus the
forward attention again count as hardware FLOPs (HFU), not as model FLOPs (MFU). MFU divides model FLOPs per
second by the GPU's dense bf16 peak from NVIDIA's datasheets (``PEAK_BF16_TFLOPS``; ``--peak-tflops`` for others).

Benchmarks are not tests: only ``--dry-run`` (the whole flow on a tiny model on the CPU, in tests/test_gpu_bench.py)
is run by the test suite, so the script cannot rot.

    python benchmarks/gpu_bench.py                      # both shapes, both presets, about 8 min on one H100
    python benchmarks/gpu_bench.py --dry-run --out /tmp/gpu_bench.json
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import gc
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

#: Dense bf16 tensor-core peak, TFLOP/s, from NVIDIA's datasheets (not measured here), by device-name fragment.
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100 PCIe": 756.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0}
SHAPE_NAMES = ("qwen2.5-1.5b", "deepseek-math-7b")


def shapes(dry_run: bool, vocab: int):
    from helpers.gpu_memory import DEEPSEEK_MATH_7B, QWEN25_1_5B, ModelShape

    if dry_run:
        return {"tiny": ModelShape("tiny", "llama", hidden=64, layers=2, intermediate=128, vocab=vocab, heads=4,
                                   kv_heads=2, tied=True)}
    return {"qwen2.5-1.5b": QWEN25_1_5B, "deepseek-math-7b": DEEPSEEK_MATH_7B}


def sync():
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def free_memory():
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_gb() -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else None


def quantize_to_nf4(model, compute_dtype):
    """Replace every linear layer but the LM head by bitsandbytes' NF4 ``Linear4bit`` (double quantization),
    as ``from_pretrained`` with ``BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
    bnb_4bit_use_double_quant=True)`` would; returns the model, marked as loaded in 4-bit for TRL and PEFT."""
    import bitsandbytes as bnb
    import torch

    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is not torch.nn.Linear or name == "lm_head":
                continue
            layer = bnb.nn.Linear4bit(child.in_features, child.out_features, bias=child.bias is not None,
                                      compute_dtype=compute_dtype, compress_statistics=True, quant_type="nf4",
                                      device="meta")
            weight = bnb.nn.Params4bit(child.weight.data, requires_grad=False, compress_statistics=True,
                                       quant_type="nf4", module=layer)
            layer.weight = weight._quantize(child.weight.device)
            if child.bias is not None:
                layer.bias = child.bias
            setattr(parent, name, layer)
            del child
    model.is_loaded_in_4bit = True
    free_memory()
    return model


def build_model(shape, settings, tokenizer):
    """A randomly initialised model of ``shape`` on the training device, in the preset's dtype (NF4 if asked)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from helpers.models import torch_dtype

    config = AutoConfig.for_model(shape.model_type, **shape.config_dict(), bos_token_id=tokenizer.bos_token_id,
                                  eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    device = "cuda" if settings.device == "cuda" else "cpu"
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch_dtype(settings.dtype),
                                                 attn_implementation=settings.attn_implementation)
    if settings.load_in_4bit:
        quantize_to_nf4(model, torch_dtype(settings.dtype if settings.dtype != "float32" else "bfloat16"))
    return model


def flops_per_token(shape, settings, sequence: int) -> tuple[float, float]:
    """(model FLOPs, hardware FLOPs) per trained token of a LoRA step; see the module docstring."""
    n = shape.linear_params() + shape.vocab * shape.hidden
    lora = shape.lora_params(settings.lora_r, settings.target_modules)
    attention = 2 * shape.layers * shape.hidden * sequence  # causal forward: QK^T and AV, half the matrix
    model = 4 * n + 6 * lora + 3 * attention
    recompute = (2 * n + 2 * lora + attention) if settings.gradient_checkpointing else 0
    return model, model + recompute


def peak_tflops(device_name: str, given: float | None) -> float | None:
    if given:
        return given
    for fragment, value in PEAK_BF16_TFLOPS.items():
        if fragment in device_name:
            return value
    return None


def sft_rows(tokenizer, count: int, tokens: int) -> tuple[list[dict], float]:
    """``count`` worked-solution rows of about ``tokens`` tokens each (prompt + answer); their mean length."""
    from helpers.sft import count_tokens

    words = ("three", "balls", "from", "the", "urn", "so", "the", "probability", "is", "equal", "to")
    answer, n = "", 0
    while n < tokens - 12:
        answer += " " + " ".join(words)
        n = count_tokens(tokenizer, {"question": "What is 1 + 1?", "answer": answer})[1]
    rows = [{"question": f"What is {i} + 1?", "answer": answer.strip() + f"\nAnswer: {i + 1}",
             "final_answer": str(i + 1)} for i in range(count)]
    lengths = [count_tokens(tokenizer, r)[1] for r in rows[: min(count, 16)]]
    return rows, sum(lengths) / len(lengths)


def grpo_rows(count: int) -> list[dict]:
    return [{"question": f"A bag holds {i + 3} red and 5 blue balls. Two are drawn without replacement. What is "
                         "the probability that both are red? Give the answer as a fraction.",
             "answer": "Answer: 1/2", "final_answer": "1/2", "family": "urns"} for i in range(count)]


def resolve(preset: str, stage: str, device, shape, folder: Path, dry_run: bool, **extra):
    """The preset as ``helpers.config.resolve`` gives it for this device and model shape (``config.json`` in
    ``folder``), with only the run length and saving changed; for the dry run also tiny sizes."""
    from helpers import config

    (folder / "config.json").write_text(json.dumps({**shape.config_dict(), "model_type": shape.model_type}))
    run = dict(save_steps=10**6, eval_steps=10**6, logging_steps=1, max_steps=10**6, max_train_examples=0)
    if dry_run:
        run.update(batch_size=4, max_length=96, max_new_tokens=8, num_generations=4, lora_r=4, lora_alpha=8)
        run = {k: v for k, v in run.items() if k in {f.name for f in dataclasses.fields(
            config.SFTSettings if stage == "sft" else config.GRPOSettings)}}
    settings = config.resolve(preset, stage, device=device, model_name=str(folder), **run, **extra)
    if dry_run and preset == "low_memory" and importlib.util.find_spec("bitsandbytes"):
        # the CPU keeps float32 weights; bitsandbytes' CPU backend still runs the 4-bit path end to end (where
        # it is installed: it is the `cuda` extra, so a CPU-only setup runs this row in float32)
        settings = dataclasses.replace(settings, load_in_4bit=True)
    return settings


def bench_sft(shape, settings, tokenizer, steps: int, warmup: int, peak: float | None, out: Path) -> dict:
    from helpers import gpu_memory, sft
    from helpers.callbacks import StepTimer

    per_step = settings.batch_size * settings.grad_accum
    rows, mean_tokens = sft_rows(tokenizer, per_step * (steps + warmup), settings.max_length)
    model = build_model(shape, settings, tokenizer)
    free_memory()
    timer = StepTimer()
    trainer = sft.build_sft_trainer(dataclasses.replace(settings, max_steps=steps + warmup), model, tokenizer, rows,
                                    [], out, callbacks=[timer])
    trainer.train()
    sync()
    timed = timer.times[warmup:]
    seconds = sum(timed) / len(timed)
    tokens_per_s = per_step * mean_tokens / seconds
    model_flops, hardware_flops = flops_per_token(shape, settings, mean_tokens)
    result = {"seconds_per_step": round(seconds, 3), "tokens_per_step": round(per_step * mean_tokens),
              "tokens_per_s": round(tokens_per_s, 1), "peak_gb": peak_gb(),
              "estimated_gb": gpu_memory.estimate_gpu_memory_gb(settings, shape, "sft")["total"]}
    if peak:
        result["mfu"] = round(tokens_per_s * model_flops / (peak * 1e12), 4)
        result["hfu"] = round(tokens_per_s * hardware_flops / (peak * 1e12), 4)
    del trainer, model
    free_memory()
    return result


def timed_generation(trainer) -> dict:
    """Wrap the trainer's generation call: seconds and generated tokens, per call."""
    record = {"seconds": [], "tokens": []}
    generate = trainer._generate_single_turn

    def timed(*args, **kwargs):
        sync()
        start = time.perf_counter()
        completion_ids, logprobs = generate(*args, **kwargs)
        sync()
        record["seconds"].append(time.perf_counter() - start)
        record["tokens"].append(sum(len(c) for c in completion_ids))
        return completion_ids, logprobs

    trainer._generate_single_turn = timed
    return record


def bench_grpo(shape, settings, tokenizer, steps: int, warmup: int, out: Path, device) -> dict:
    from helpers import gpu_memory, grpo
    from helpers.callbacks import StepTimer
    from helpers.grpo import generation_path

    settings = dataclasses.replace(settings, max_steps=steps + warmup, mask_truncated_completions=False,
                                   skip_uninformative=False, train_samples_per_group=0)
    prompts_per_step = settings.batch_size * settings.grad_accum // settings.num_generations
    model = build_model(shape, settings, tokenizer)
    free_memory()
    timer = StepTimer()
    trainer = grpo.build_grpo_trainer(settings, model, tokenizer, grpo_rows(prompts_per_step * (steps + warmup)),
                                      out, callbacks=[timer])
    record = timed_generation(trainer)
    trainer.train()
    sync()
    step = sum(timer.times[warmup:]) / steps
    generation = sum(record["seconds"][warmup:]) / steps
    tokens = sum(record["tokens"][warmup:]) / steps
    result = {"generation": generation_path(trainer), "group_size": settings.num_generations,
              "samples_per_step": prompts_per_step * settings.num_generations,
              "seconds_per_step": round(step, 3), "generation_s": round(generation, 3),
              "scoring_and_training_s": round(step - generation, 3),
              "generated_tokens_per_s": round(tokens / generation, 1), "peak_gb": peak_gb(),
              "estimated_gb": gpu_memory.estimate_gpu_memory_gb(settings, shape, "grpo", device.memory_gb)["total"]}
    del trainer, model
    free_memory()
    return result


def bench_generation_paths(shape, settings, tokenizer, out: Path, paths, group: int = 8, prompts: int = 8) -> dict:
    """Generation alone at group size ``group`` on each path: generated tokens per second (one warm-up call)."""
    from helpers import grpo
    from helpers.grpo import generation_path

    model = build_model(shape, settings, tokenizer)
    results = {}
    for path in paths:
        s = dataclasses.replace(settings, generation=path, num_generations=group, batch_size=group * prompts,
                                grad_accum=1, max_steps=1)
        trainer = grpo.build_grpo_trainer(s, model, tokenizer, grpo_rows(prompts), out / path)
        ids = tokenizer.apply_chat_template([[{"role": "user", "content": r["question"]}] for r in grpo_rows(prompts)],
                                            add_generation_prompt=True, tokenize=True)
        ids = [list(x) for x in (ids["input_ids"] if hasattr(ids, "keys") else ids) for _ in range(group)]
        trainer.model.eval()
        trainer._generate_single_turn(ids[:group], None, {}, group)  # warm-up (and CUDA graphs, if any)
        sync()
        start = time.perf_counter()
        completion_ids, _ = trainer._generate_single_turn(ids, None, {}, group)
        sync()
        seconds = time.perf_counter() - start
        tokens = sum(len(c) for c in completion_ids)
        results[path] = {"path": generation_path(trainer), "seconds": round(seconds, 3), "tokens": tokens,
                         "tokens_per_s": round(tokens / seconds, 1)}
        del trainer
        free_memory()
    del model
    free_memory()
    if "generate" in results and len(results) > 1:
        for path, r in results.items():
            r["speedup_vs_generate"] = round(r["tokens_per_s"] / results["generate"]["tokens_per_s"], 2)
    return results


def table(results: list[dict]) -> str:
    head = ("shape", "preset", "stage", "s/step", "tokens/s", "MFU", "HFU", "gen s", "gen tok/s", "peak GB",
            "est. GB", "path")
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for r in results:
        m = r.get("metrics") or {}

        def cell(key, fmt="{}"):
            value = m.get(key)
            return "" if value is None else fmt.format(value)

        lines.append(" | ".join([r["shape"], r["preset"], r["stage"], cell("seconds_per_step"), cell("tokens_per_s"),
                                 cell("mfu", "{:.1%}"), cell("hfu", "{:.1%}"), cell("generation_s"),
                                 cell("generated_tokens_per_s"), cell("peak_gb"), cell("estimated_gb"),
                                 m.get("generation", r.get("error", "")) or ""]))
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="the whole flow on a tiny model on the CPU")
    parser.add_argument("--shapes", nargs="*", default=list(SHAPE_NAMES), help=f"any of {', '.join(SHAPE_NAMES)}")
    parser.add_argument("--presets", nargs="*", default=["default", "low_memory"])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per SFT run (GRPO: 2)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--budget-s", type=float, default=450, help="skip what would start after this many seconds")
    parser.add_argument("--peak-tflops", type=float, default=None, help="dense bf16 peak of this GPU, TFLOP/s")
    parser.add_argument("--out", default="output/benchmarks/gpu_bench.json")
    args = parser.parse_args(argv)

    import torch

    from helpers.config import DeviceInfo, detect_device
    from helpers.models import load_tokenizer
    from helpers.runs import package_versions

    start = time.perf_counter()
    device = DeviceInfo() if args.dry_run else detect_device()
    if device.kind != "cuda" and not args.dry_run:
        parser.error("no CUDA GPU here: run with --dry-run to check the flow on the CPU")
    tokenizer = load_tokenizer("embedded", padding_side="right")
    peak = peak_tflops(device.name, args.peak_tflops) if device.kind == "cuda" else None
    all_shapes = shapes(args.dry_run, len(tokenizer))
    chosen = list(all_shapes) if args.dry_run else [s for s in args.shapes if s in all_shapes]
    steps, grpo_steps = (1, 1) if args.dry_run else (args.steps, 2)
    warmup = 0 if args.dry_run else args.warmup
    results, comparisons = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in chosen:
            shape = all_shapes[name]
            for preset in args.presets:
                for stage in ("sft", "grpo"):
                    row = {"shape": name, "preset": preset, "stage": stage}
                    results.append(row)
                    if time.perf_counter() - start > args.budget_s:
                        row["error"] = "skipped: time budget"
                        continue
                    folder = Path(tmp) / f"{name}_{preset}_{stage}"
                    folder.mkdir()
                    try:
                        settings = resolve(preset, stage, device, shape, folder, args.dry_run)
                        row["settings"] = {k: getattr(settings, k) for k in (
                            "dtype", "load_in_4bit", "gradient_checkpointing", "optim", "attn_implementation",
                            "batch_size", "grad_accum", "lora_r", "max_length", "num_generations", "max_new_tokens",
                            "generation") if hasattr(settings, k)}
                        row["notes"] = list(settings.notes)
                        if stage == "sft":
                            row["metrics"] = bench_sft(shape, settings, tokenizer, steps, warmup, peak, folder / "run")
                        else:
                            row["metrics"] = bench_grpo(shape, settings, tokenizer, grpo_steps, warmup,
                                                        folder / "run", device)
                    except torch.OutOfMemoryError as err:
                        row["error"] = f"out of memory: {str(err).splitlines()[0][:160]}"
                        free_memory()
                    print(f"[{time.perf_counter() - start:6.0f} s] {name} {preset} {stage}: "
                          f"{row.get('metrics') or row.get('error')}", flush=True)
            if time.perf_counter() - start > args.budget_s:
                comparisons[name] = {"error": "skipped: time budget"}
                continue
            folder = Path(tmp) / f"{name}_paths"
            folder.mkdir()
            settings = resolve("default", "grpo", device, shape, folder, args.dry_run)
            paths = ["generate", "continuous_batching"]
            try:
                comparisons[name] = bench_generation_paths(shape, settings, tokenizer, folder, paths)
            except torch.OutOfMemoryError as err:
                comparisons[name] = {"error": f"out of memory: {str(err).splitlines()[0][:160]}"}
                free_memory()
            if device.vllm:
                comparisons[name]["vllm_colocate"] = {
                    "error": "not measured: vLLM loads weights from disk, and these models have random weights only"}
            print(f"[{time.perf_counter() - start:6.0f} s] {name} generation at group size 8: {comparisons[name]}",
                  flush=True)
    report = {"benchmark": "gpu_bench", "date": dt.date.today().isoformat(), "dry_run": args.dry_run,
              "device": dataclasses.asdict(device), "peak_bf16_tflops": peak, "versions": package_versions(),
              "flops": "model FLOPs per token = 4 N + 6 N_lora + 6 layers hidden sequence (causal attention); "
                       "hardware FLOPs add the checkpointing recompute 2 N + 2 N_lora + 2 layers hidden sequence",
              "results": results, "generation_at_group_size_8": comparisons,
              "seconds": round(time.perf_counter() - start, 1)}
    print(table(results))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=str))
    print(f"wrote {out} ({report['seconds']} s)")
    return report


if __name__ == "__main__":
    main()
