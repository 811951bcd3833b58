"""The setup check: is this machine ready, and which preset suits it?

Why this module exists: the seed shipped ``test_sft_setup.py`` and
``test_grpo_setup.py``. This is the same check as functions that notebook
00_setup_check shows as tables and ``python -m helpers check`` prints: versions,
device, GPU memory, bf16, bitsandbytes, disk, the embedded model answering a
question, and one real SFT step and one real GRPO step on it.

Used in 00_setup_check.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from helpers.config import DeviceInfo, detect_device, resolve
from helpers.models import REPO_ROOT
from helpers.runs import output_root, package_versions, write_json_atomic

# The seed's hardware table, once: (hardware, GPU memory in GB it stays below, preset, why). The notebook shows it
# as it is, and recommend_preset picks the first row that fits the device (None: the CPU row).
PRESET_TABLE = [
    ("CPU only", None, "default",
     "CPU: `default` trains the embedded model in minutes; `fast_test` only checks the pipeline"),
    ("GPU < 16 GB", 16, "low_memory", "4-bit weights (QLoRA) keep a 7B model within memory, small batches"),
    ("GPU 16-24 GB", 25, "default", "bf16 LoRA with moderate batches"),
    ("GPU > 24 GB", float("inf"), "full_training", "bf16, room for larger batches, rank and lengths"),
]


def recommend_preset(device: DeviceInfo) -> tuple[str, str]:
    """The preset of ``PRESET_TABLE``'s row for this device, and why (CPU: default; GPU by its memory).

    >>> recommend_preset(DeviceInfo(kind="cuda", memory_gb=15.0))[0]
    'low_memory'
    """
    for hardware, limit, preset, why in PRESET_TABLE:
        if device.kind != "cuda" and limit is None:
            return preset, why
        if device.kind == "cuda" and limit is not None and device.memory_gb < limit:
            return preset, f"{device.memory_gb} GB GPU: {why}"
    raise AssertionError("PRESET_TABLE has a row for every device")


def preset_table() -> list[dict]:
    """``PRESET_TABLE`` as rows for ``ui.table``. Used in 00_setup_check."""
    return [{"hardware": h, "preset": p, "why": w} for h, _, p, w in PRESET_TABLE]


def system_report(device: DeviceInfo | None = None) -> dict:
    """Python and package versions, device, GPU memory, bf16, CPU cores, RAM and free disk."""
    device = device or detect_device()
    disk = shutil.disk_usage(REPO_ROOT)
    try:
        ram_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        ram_gb = None
    return {
        "platform": platform.platform(),
        "versions": package_versions(),
        "device": device.kind,
        "gpu_name": device.name if device.kind == "cuda" else None,
        "gpu_memory_gb": device.memory_gb if device.kind == "cuda" else None,
        "gpu_count": device.count,
        "bf16_supported": device.bf16_supported,
        "cpu_cores": os.cpu_count(),
        "ram_gb": ram_gb,
        "free_disk_gb": round(disk.free / 2**30, 1),
    }


def bitsandbytes_status(device: DeviceInfo) -> dict:
    """Whether 4-bit loading can help here: on CUDA it runs a 4-bit layer; on CPU it does not import bitsandbytes.

    bitsandbytes is the ``cuda`` extra (``pip install -e '.[cuda]'``): 4-bit weights only save GPU memory.
    """
    import importlib.util

    installed = importlib.util.find_spec("bitsandbytes") is not None
    if device.kind != "cuda":
        return {"works": False, "detail": "not needed on CPU: 4-bit weights only save GPU memory, so the presets "
                                          "use float32 here" + ("" if installed else " (bitsandbytes is not installed)")}
    if not installed:
        return {"works": False, "detail": "bitsandbytes is not installed: pip install -e '.[cuda]'"}
    try:
        import torch
        from bitsandbytes.nn import Linear4bit

        layer = Linear4bit(64, 64, compute_dtype=torch.bfloat16, quant_type="nf4").cuda()
        layer(torch.randn(2, 64, device="cuda", dtype=torch.bfloat16))
        return {"works": True, "detail": "a 4-bit NF4 layer ran on the GPU"}
    except Exception as err:  # noqa: BLE001
        return {"works": False, "detail": f"4-bit layer failed on the GPU: {err}"}


def embedded_model_check(question: str = "What is 12 + 7?", max_new_tokens: int = 48) -> dict:
    """Load the embedded model (converting it once) and let it answer one question greedily."""
    from helpers.evaluate import GenerationSettings, generate
    from helpers.models import embedded_model_dir, load_base_model, load_tokenizer

    was_cached = (embedded_model_dir() / "model.safetensors").is_file()
    start = time.time()
    tokenizer = load_tokenizer("embedded")
    model = load_base_model("embedded")
    load_s = time.time() - start
    start = time.time()
    answer = generate(model, tokenizer, [question], GenerationSettings(max_new_tokens=max_new_tokens),
                      progress=False)[0][0]
    return {"question": question, "answer": answer["text"], "tokens": answer["tokens"],
            "load_s": round(load_s, 1), "was_cached": was_cached,
            "generate_s": round(time.time() - start, 1), "parameters": sum(p.numel() for p in model.parameters())}


def _tiny_data(folder: Path, n: int = 8) -> Path:
    from helpers.problems import generate_problems

    path = folder / "tiny.json"
    path.write_text(json.dumps(generate_problems(n, seed=0, difficulty="easy")))
    return path


def tiny_sft_step(model_name: str = "embedded") -> dict:
    """One real SFT optimizer step (LoRA) on the model, in a throwaway folder."""
    from helpers.sft import train_sft

    with tempfile.TemporaryDirectory() as tmp:
        data = _tiny_data(Path(tmp))
        settings = resolve("fast_test", "sft", model_name=model_name, max_steps=1, batch_size=2,
                           max_train_examples=4, max_val_examples=0, save_steps=10)
        start = time.time()
        result = train_sft(settings, data, output_dir=Path(tmp) / "run", allow_outside_output=True)
        rows = [r for r in result.log_rows if "loss" in r]
        return {"status": result.status, "seconds": round(time.time() - start, 1),
                "loss": rows[-1]["loss"] if rows else None,
                "trainable_parameters": result.plan.get("trainable_parameters")}


def tiny_grpo_step(model_name: str = "embedded") -> dict:
    """One real GRPO step (2 prompts x 2 samples, 24 new tokens) on the model, in a throwaway folder."""
    from helpers.grpo import train_grpo

    with tempfile.TemporaryDirectory() as tmp:
        data = _tiny_data(Path(tmp))
        settings = resolve("fast_test", "grpo", model_name=model_name, max_steps=1, batch_size=4,
                           num_generations=2, max_new_tokens=24, max_train_examples=4, save_steps=10)
        start = time.time()
        result = train_grpo(settings, data, output_dir=Path(tmp) / "run", allow_outside_output=True)
        row = result.log_rows[-1] if result.log_rows else {}
        return {"status": result.status, "seconds": round(time.time() - start, 1),
                "reward": row.get("reward"), "completion_length": row.get("completion_length")}


def run_setup_check(out_dir: str | Path | None = None, train_steps: bool = True) -> dict:
    """Every check in order; writes ``setup_check.json`` (chosen preset: the recommended one) and returns it.

    Used by 00_setup_check and ``python -m helpers check``.
    """
    device = detect_device()
    report = {"system": system_report(device), "bitsandbytes": bitsandbytes_status(device)}
    report["embedded_model"] = embedded_model_check()
    if train_steps:
        report["sft_step"] = tiny_sft_step()
        report["grpo_step"] = tiny_grpo_step()
    preset, why = recommend_preset(device)
    report["recommended_preset"] = {"preset": preset, "reason": why}
    report["ok"] = all(report.get(k, {}).get("status", "completed") == "completed" for k in ("sft_step", "grpo_step"))
    return save_setup_check(report, preset, out_dir)


def save_setup_check(report: dict, chosen_preset: str, out_dir: str | Path | None = None) -> dict:
    """Write the report with the preset the user chose as ``output/setup_check/setup_check.json``; return it."""
    report = {**report, "chosen_preset": chosen_preset}
    out = Path(out_dir) if out_dir else output_root() / "setup_check"
    write_json_atomic(out / "setup_check.json", report)
    return report
