"""Memory of one SFT and one GRPO step of the ``default`` CPU presets: where it goes, and what each lever saves.

Each lever runs in a fresh child process (peak RSS is per process), on the same
data and the same batches, one after the other, and the parent prints them side
by side. Per lever: peak RSS of the process (what a laptop must have), the
peak per phase (forward, backward, optimizer, evaluation; GRPO: sampling,
reference pass, training pass), seconds per step and real tokens per second.

``--breakdown`` adds, for the first lever, one profiled step of the longest
batch: live tensor memory from ``torch.profiler`` (``profile_memory=True``),
split into weights, LoRA parameters + gradients + AdamW state, the activations
kept for the backward pass (counted with ``torch.autograd.graph.saved_tensors_hooks``)
and the LM head's transient tiles (logits, log-probs, entropy, accuracy), next
to the process RSS (the gap is what glibc's allocator keeps after ``free``).

    python benchmarks/memory_breakdown.py --stage sft --levers trl labelled_only chunks_1024 --breakdown
    python benchmarks/memory_breakdown.py --stage grpo --sft-model output/sft_.../final_model --levers trl chunks_1024

Levers (SFT): ``trl`` (TRL 1.16's fused LM head as TRL sets it up: every position scored, on CPU in tiles of
4,096 x 32,768), ``labelled_only`` (only labelled positions scored, tiles of 1,024 x 8,192),
``no_metrics`` (as labelled_only, without entropy and token accuracy), ``chunks_N`` (labelled_only, and forward +
backward in row chunks of at most N tokens), ``chunks_N_trim`` (plus ``malloc_trim`` after each step), ``bits_N_mmap`` (plus glibc told to mmap
blocks of 1 MB and more, so freed memory leaves the process),
``bits_N`` (chunks_N, and LoRA dropout keeping its masks as booleans), ``no_dropout`` (chunks_1024 with LoRA
dropout 0: changes the training, measured for comparison only),
``random_order`` (chunks_1024, batches in random order instead of grouped by length), ``preset`` (the preset
exactly as configured now). GRPO: ``trl``, ``labelled_only``, ``chunks_N``, ``preset``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

GB = 2**30


# ---------------------------------------------------------------- measuring
class RSSSampler:
    """Samples this process's RSS every few milliseconds and keeps the maximum per named phase."""

    def __init__(self, interval: float = 0.004):
        self.interval = interval
        self.phase = "setup"
        self.peaks: dict[str, int] = {}
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self._page

    def _run(self):
        while not self._stop.is_set():
            value = self.rss()
            if value > self.peaks.get(self.phase, 0):
                self.peaks[self.phase] = value
            time.sleep(self.interval)

    def set(self, phase: str) -> None:
        value = self.rss()
        if value > self.peaks.get(self.phase, 0):
            self.peaks[self.phase] = value
        self.phase = phase

    def stop(self) -> dict[str, float]:
        self.set("end")
        self._stop.set()
        self._thread.join()
        return {k: round(v / GB, 2) for k, v in self.peaks.items()}


def peak_rss_gb() -> float:
    """The process's peak RSS so far (VmHWM)."""
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 2**20, 2)
    return 0.0


def malloc_trim() -> None:
    import ctypes

    ctypes.CDLL("libc.so.6").malloc_trim(0)


def mmap_large_blocks(threshold: int = 1 << 20) -> None:
    """glibc: blocks from ``threshold`` bytes up always mmapped, so they go back to the OS when freed.

    By default glibc raises this threshold (up to 32 MB) after each large free, and then keeps freed
    activations in its heap, where RSS does not fall. Setting it fixes it (M_MMAP_THRESHOLD = -3),
    and a low trim threshold (M_TRIM_THRESHOLD = -1) returns the heap's free top as well.
    """
    import ctypes

    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(-3, threshold)
    libc.mallopt(-1, threshold)


def wrap_phase(obj, name: str, sampler: RSSSampler, phase: str, after: str | None = None):
    """Set the sampler's phase while ``obj.name`` runs (and to ``after`` when it returns)."""
    inner = getattr(obj, name)

    def wrapped(*args, **kwargs):
        previous = sampler.phase
        sampler.set(phase)
        try:
            return inner(*args, **kwargs)
        finally:
            sampler.set(after or previous)

    setattr(obj, name, wrapped)


class SavedTensors:
    """Bytes the autograd graph keeps for the backward pass (storages counted once; parameters not counted)."""

    def __init__(self, params):
        import torch

        self.param_ptrs = {p.untyped_storage().data_ptr() for p in params}
        self.seen: set[int] = set()
        self.bytes = 0
        self.by_kind: dict[str, int] = {}
        self.kind = "body"
        self.hooks = torch.autograd.graph.saved_tensors_hooks(self.pack, lambda x: x)

    def pack(self, tensor):
        storage = tensor.untyped_storage()
        ptr = storage.data_ptr()
        if ptr not in self.param_ptrs and ptr not in self.seen:
            self.seen.add(ptr)
            self.bytes += storage.nbytes()
            kind = self.kind_of(tensor)
            self.by_kind[kind] = self.by_kind.get(kind, 0) + storage.nbytes()
        return tensor

    @staticmethod
    def kind_of(tensor) -> str:
        """What a saved tensor is, told by its shape (SmolLM2-135M: width 576, MLP 1536, K/V 192)."""
        import torch

        if tensor.dtype == torch.bool:
            return "masks (dropout, attention)"
        last = tensor.shape[-1] if tensor.ndim else 0
        if tensor.ndim == 4 and tensor.shape[-1] == tensor.shape[-2]:
            return "attention scores"
        return {576: "width 576 (inputs of q/k/v/o, norms, LoRA-dropped inputs)", 1536: "MLP 1536",
                192: "K/V 192", 64: "attention heads (q, k, v, output)"}.get(last, "other")


def live_memory(prof) -> tuple[list[tuple[int, int]], list[tuple[str, int, int]]]:
    """(time, live bytes) after each CPU allocation or free the profiler saw, and (name, start, end) of its ops.

    Read from the raw kineto events: ``prof.events()`` folds most allocations into the op that made them.
    """
    raw = prof.profiler.kineto_results.events()
    mem = sorted((e.start_ns(), e.nbytes()) for e in raw if e.name() == "[memory]")
    live, series = 0, []
    for t, delta in mem:
        live += delta
        series.append((t, live))
    ops = [(e.name(), e.start_ns(), e.end_ns()) for e in raw if e.name() != "[memory]"]
    return series, ops


def transient_in(series, ops, name_part: str) -> int:
    """Largest rise of live memory inside any op whose name contains ``name_part``."""
    import bisect

    times = [t for t, _ in series]
    best = 0
    for name, start, end in ops:
        if name_part not in name:
            continue
        lo, hi = bisect.bisect_left(times, start), bisect.bisect_right(times, end)
        if hi > lo:
            before = series[lo - 1][1] if lo else 0
            best = max(best, max(v for _, v in series[lo:hi]) - before)
    return best


# ---------------------------------------------------------------- SFT
SFT_LEVERS = {
    "trl": dict(labelled_only=False, max_tokens_per_pass=0),
    "labelled_only": dict(labelled_only=True, max_tokens_per_pass=0),
    "no_metrics": dict(labelled_only=True, max_tokens_per_pass=0, metrics=False),
    "no_dropout": dict(labelled_only=True, max_tokens_per_pass=1024, settings=dict(lora_dropout=0.0)),
    "random_order": dict(labelled_only=True, max_tokens_per_pass=1024, settings=dict(group_by_length=False)),
    "preset": dict(),
}


def lever_spec(stage: str, lever: str) -> dict:
    if lever.startswith(("chunks_", "bits_")):
        parts = lever.split("_")
        return dict(labelled_only=True, max_tokens_per_pass=int(parts[1]), trim="trim" in parts,
                    mmap="mmap" in parts, mask_bits=parts[0] == "bits")
    table = SFT_LEVERS if stage == "sft" else {k: v for k, v in SFT_LEVERS.items() if k in ("trl", "labelled_only",
                                                                                              "preset")}
    if lever not in table:
        raise SystemExit(f"--levers: unknown lever {lever!r} for {stage}")
    return table[lever]


def apply_lever(trainer, spec: dict, stage: str):
    """Undo or redo the workbook's memory settings on a built trainer, as the lever asks."""
    from helpers import memory

    if "labelled_only" not in spec:
        return trainer  # "preset": exactly what the trainer builder did
    if spec["labelled_only"]:
        memory.score_labelled_tokens_only(trainer)
        if spec.get("metrics") is False:
            _skip_metrics(trainer)
    if spec.get("mask_bits"):
        memory.keep_dropout_masks_as_bits(trainer.model)
    chunk = memory.train_in_token_chunks if stage == "sft" else memory.grpo_loss_in_token_chunks
    return chunk(trainer, spec["max_tokens_per_pass"])


def _skip_metrics(trainer):
    """Log-probs only; entropy and top-1 come back as zeros so that TRL's metric code still runs."""
    import types

    from helpers import memory

    model = trainer.model.get_base_model()
    model.forward = model.forward.__func__.trl_forward
    memory.score_labelled_tokens_only(trainer, outputs=("log_probs",))
    forward = model.forward

    def zero_metrics(self, *args, **kwargs):
        out = forward(*args, **kwargs)
        if kwargs.get("fused_lm_head"):
            out.entropy = out.log_probs.detach() * 0
            out.is_top1 = out.label_mask & False
        return out

    model.forward = types.MethodType(zero_metrics, model)


def load_rows(path: str) -> list[dict]:
    """The valid rows of a QA file, as the trainers read them."""
    from helpers.data import load_qa_file

    return load_qa_file(path, on_bad_rows="drop").rows


def select_rows(rows: list[dict], limit: int, seed: int) -> list[dict]:
    """The trainers' seeded subset (helpers.training.select_rows, or helpers.sft's before the move)."""
    try:
        from helpers.training import select_rows as select
    except ImportError:
        from helpers.sft import select_rows as select
    return select(rows, limit, seed)


def build_sft(spec: dict, args, sampler):
    from helpers import config, sft
    from helpers.models import load_base_model, load_tokenizer

    overrides = dict(spec.get("settings", {}))
    if "max_tokens_per_pass" in spec and _has_field(config.SFTSettings, "max_tokens_per_pass"):
        overrides["max_tokens_per_pass"] = 0  # the lever decides; see apply_lever
    settings = config.resolve(args.preset, "sft", save_steps=10_000, eval_steps=10_000, **overrides)
    rows = select_rows(load_rows(args.data), settings.max_train_examples, settings.seed)
    val = select_rows(load_rows(args.val_data), settings.max_val_examples, settings.seed)
    tokenizer = load_tokenizer(settings.model_name, padding_side="right")
    rows, _, _ = sft.fit_rows(rows, tokenizer, settings.max_length)
    val, _, _ = sft.fit_rows(val, tokenizer, settings.max_length)
    sampler.set("load_model")
    model = load_base_model(settings.model_name, dtype=settings.dtype, attn_implementation=settings.attn_implementation)
    sampler.set("build_trainer")
    trainer = sft.build_sft_trainer(settings, model, tokenizer, rows, val, Path(args.tmp))
    if "labelled_only" in spec:
        _restore_trl_head(trainer)
    return settings, apply_lever(trainer, spec, "sft")


def _has_field(cls, name: str) -> bool:
    import dataclasses

    return any(f.name == name for f in dataclasses.fields(cls))


def _restore_trl_head(trainer):
    """TRL's trainer as TRL sets it up: undo the workbook's memory savers, if the builder applied them."""
    import torch

    for module in trainer.model.modules():
        dropouts = getattr(module, "lora_dropout", None)
        if isinstance(dropouts, torch.nn.ModuleDict):
            for name, drop in dropouts.items():
                if type(drop) is not torch.nn.Dropout and isinstance(drop, torch.nn.Dropout):
                    dropouts[name] = torch.nn.Dropout(drop.p)
    model = trainer.model.get_base_model()
    wrapped = getattr(getattr(model.forward, "__func__", None), "trl_forward", None)
    if wrapped is not None:
        model.forward = wrapped
    if "training_step" in trainer.__dict__:
        del trainer.training_step
    if "_compute_loss" in trainer.__dict__:
        del trainer._compute_loss


def run_sft(lever: str, args) -> dict:
    import torch

    spec = lever_spec("sft", lever)
    if spec.get("mmap"):
        mmap_large_blocks()
    sampler = RSSSampler()
    settings, trainer = build_sft(spec, args, sampler)
    model = trainer.model
    batches = []
    for batch in trainer.get_train_dataloader():
        batches.append(batch)
        if len(batches) == args.steps:
            break
    trainer.create_optimizer_and_scheduler(num_training_steps=args.steps + 1)
    optimizer = trainer.optimizer
    wrap_phase(trainer, "compute_loss", sampler, "forward", after="backward")
    result = {"lever": lever, "stage": "sft"}

    def one_step(batch):
        sampler.set("forward")
        n_items = (batch["labels"][:, 1:] != -100).sum()
        trainer.training_step(model, batch, n_items)
        sampler.set("optimizer")
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if spec.get("trim"):
            malloc_trim()
        sampler.set("between_steps")

    if args.breakdown:
        result["breakdown"] = sft_breakdown(trainer, batches[0], one_step)
    times, tokens = [], 0
    for batch in batches:
        start = time.perf_counter()
        one_step(batch)
        times.append(time.perf_counter() - start)
        tokens += int(batch["attention_mask"].sum())
    sampler.set("evaluation")
    eval_start = time.perf_counter()
    trainer.evaluate()
    result["eval_s"] = round(time.perf_counter() - eval_start, 1)
    if spec.get("trim"):
        malloc_trim()
    result.update(seconds_per_step=round(sum(times) / len(times), 2), step_s=[round(t, 2) for t in times],
                  tokens_per_s=round(tokens / sum(times), 1), tokens=tokens,
                  batch_shapes=[list(b["input_ids"].shape) for b in batches],
                  peak_rss_gb=peak_rss_gb(), rss_after_gb=round(sampler.rss() / GB, 2),
                  phase_peaks_gb=sampler.stop(), threads=torch.get_num_threads())
    return result


def sft_breakdown(trainer, batch, one_step) -> dict:
    """One profiled step on the batch: live memory by kind, against the process RSS."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    model = trainer.model
    params = list(model.parameters())
    frozen = sum(p.numel() * p.element_size() for p in params if not p.requires_grad)
    trainable = sum(p.numel() * p.element_size() for p in params if p.requires_grad)
    saved = SavedTensors(params)
    compute_loss = trainer.compute_loss

    def counted(*a, **k):
        with saved.hooks:
            return compute_loss(*a, **k)

    trainer.compute_loss = counted
    rss_before = RSSSampler().rss()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        one_step(batch)
    trainer.compute_loss = compute_loss
    series, ops = live_memory(prof)
    state = sum(t.numel() * t.element_size() for s in trainer.optimizer.state.values() for t in s.values()
                if isinstance(t, torch.Tensor))
    peak_live = max(v for _, v in series) if series else 0
    head_fwd = transient_in(series, ops, "ChunkedLogProbFunction") if series else 0
    head_bwd = transient_in(series, ops, "ChunkedLogProbFunctionBackward") if series else 0
    ops = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:12]
    return {
        "top_ops_self_s": {e.key: round(e.self_cpu_time_total / 1e6, 2) for e in ops},
        "batch_shape": list(batch["input_ids"].shape),
        "real_tokens": int(batch["attention_mask"].sum()),
        "labelled_tokens": int((batch["labels"][:, 1:] != -100).sum()),
        "weights_gb": round(frozen / GB, 3),
        "lora_params_grads_adam_gb": round((2 * trainable + state) / GB, 3),
        "activations_saved_gb": round(saved.bytes / GB, 3),
        "activations_by_kind_gb": {k: round(v / GB, 3) for k, v in sorted(saved.by_kind.items(), key=lambda kv: -kv[1])},
        "lm_head_transient_forward_gb": round(head_fwd / GB, 3),
        "lm_head_transient_backward_gb": round(head_bwd / GB, 3),
        "step_live_peak_above_start_gb": round(peak_live / GB, 3),
        "rss_before_step_gb": round(rss_before / GB, 2),
        "rss_after_step_gb": round(RSSSampler().rss() / GB, 2),
    }


# ---------------------------------------------------------------- GRPO
def run_grpo(lever: str, args) -> dict:
    import torch

    from helpers import config, grpo

    spec = lever_spec("grpo", lever)
    if spec.get("mmap"):
        mmap_large_blocks()
    sampler = RSSSampler()
    preset = "from_sft" if args.sft_model and args.preset == "default" else args.preset
    overrides = {"max_tokens_per_pass": 0} if _has_field(config.GRPOSettings, "max_tokens_per_pass") and \
        "max_tokens_per_pass" in spec else {}
    settings = config.resolve(preset, "grpo", sft_model=args.sft_model or "", max_steps=args.steps,
                              save_steps=10_000, **overrides)
    rows = load_rows(args.grpo_data)
    rows = [r for r in rows if r.get("difficulty") in settings.difficulties or not r.get("difficulty")] \
        if settings.difficulties else rows
    sampler.set("load_model")
    sft_adapter = Path(args.sft_model) if args.sft_model else None
    model, tokenizer, sft_lora = grpo.load_policy(settings, sft_adapter)
    rss_policy = round(sampler.rss() / GB, 2)
    targets = sorted({k.rsplit(".", 1)[-1] for k in sft_lora["layers"]}) if sft_lora else None
    sampler.set("build_trainer")
    trainer = grpo.build_grpo_trainer(settings, model, tokenizer, rows, Path(args.tmp), lora_target_modules=targets)
    if "labelled_only" in spec:
        _restore_trl_head(trainer)
    trainer = apply_lever(trainer, spec, "grpo")
    wrap_phase(trainer, "_generate_single_turn", sampler, "sampling")
    if hasattr(trainer, "_reference_log_probs"):
        wrap_phase(trainer, "_reference_log_probs", sampler, "reference_pass")
    wrap_phase(trainer, "compute_loss", sampler, "training_forward", after="backward")
    saved_max = count_saved_tensors(trainer)
    from helpers.callbacks import StepTimer

    timer = StepTimer()
    trainer.add_callback(timer)
    trainer.train()
    logs = [h for h in trainer.state.log_history if "reward" in h]
    tokens = sum(h.get("num_tokens", 0) for h in logs[-1:])
    return {"lever": lever, "stage": "grpo", "seconds_per_step": round(sum(timer.times) / len(timer.times), 1),
            "step_s": [round(t, 1) for t in timer.times], "rewards": [round(h["reward"], 3) for h in logs],
            "completion_length": [round(h.get("completions/mean_length", 0), 1) for h in logs],
            "num_tokens": tokens, "rss_after_policy_gb": rss_policy, "peak_rss_gb": peak_rss_gb(),
            "activations_saved_per_pass_gb": round(max(saved_max, default=0) / GB, 3),
            "phase_peaks_gb": sampler.stop(), "threads": torch.get_num_threads()}


def count_saved_tensors(trainer) -> list[int]:
    """Bytes kept for backward by each training pass of the policy (one per chunk); the list fills as it trains."""
    import torch

    sizes: list[int] = []
    inner = trainer._get_per_token_logps_and_entropies
    params = list(trainer.model.parameters())

    def counted(*args, **kwargs):
        if not torch.is_grad_enabled():
            return inner(*args, **kwargs)
        saved = SavedTensors(params)
        with saved.hooks:
            out = inner(*args, **kwargs)
        sizes.append(saved.bytes)
        return out

    trainer._get_per_token_logps_and_entropies = counted
    return sizes


# ---------------------------------------------------------------- parent
def child(stage: str, lever: str, args) -> dict:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        args.tmp = tmp
        return run_sft(lever, args) if stage == "sft" else run_grpo(lever, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stage", choices=["sft", "grpo"], default="sft")
    parser.add_argument("--preset", default="default", help="the preset the levers start from")
    parser.add_argument("--levers", nargs="*", default=["trl", "labelled_only", "chunks_1024", "preset"])
    parser.add_argument("--steps", type=int, default=3, help="SFT: batches timed (the longest first); GRPO: steps")
    parser.add_argument("--breakdown", action="store_true", help="one profiled step for the first lever (SFT)")
    parser.add_argument("--data", default="data/training_data/sft_train.json")
    parser.add_argument("--val-data", default="data/training_data/sft_val.json")
    parser.add_argument("--grpo-data", default="data/training_data/grpo_train.json")
    parser.add_argument("--sft-model", default="", help="GRPO: an SFT final_model (from_sft); default: the base")
    parser.add_argument("--out", default="output/benchmarks")
    parser.add_argument("--child", nargs=2, metavar=("STAGE", "LEVER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.child:
        print("RESULT " + json.dumps(child(*args.child, args)), flush=True)
        return

    results = []
    for i, lever in enumerate(args.levers):
        cmd = [sys.executable, __file__, "--child", args.stage, lever, "--preset", args.preset, "--steps",
               str(args.steps), "--data", args.data, "--val-data", args.val_data, "--grpo-data", args.grpo_data,
               "--sft-model", args.sft_model]
        if args.breakdown and i == 0:
            cmd.append("--breakdown")
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode or not lines:
            print(proc.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"lever {lever} failed (exit {proc.returncode})")
        res = json.loads(lines[-1][7:])
        res["wall_s"] = round(time.perf_counter() - start, 1)
        results.append(res)
        print(json.dumps(res), flush=True)
    print()
    print(f"{'lever':16s} {'peak RSS GB':>11s} {'s/step':>7s} {'tokens/s':>9s}  phase peaks (GB)")
    for r in results:
        phases = " ".join(f"{k}={v}" for k, v in r["phase_peaks_gb"].items() if k not in ("end",))
        print(f"{r['lever']:16s} {r['peak_rss_gb']:11.2f} {r['seconds_per_step']:7.2f} "
              f"{r.get('tokens_per_s', 0):9.1f}  {phases}")
    report = {"benchmark": "memory_breakdown", "stage": args.stage, "preset": args.preset, "machine": platform.machine(),
              "date": time.strftime("%Y-%m-%d"), "results": results}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"memory_{args.stage}_{args.preset}.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
