"""benchmarks/gpu_bench.py --dry-run: the GPU benchmark's whole flow on a tiny model on the CPU, so it cannot rot.

The benchmark itself (speed and memory on a GPU) is not a test; this only checks that every part of it runs
and writes the report it promises.
"""

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_bench.py"


@pytest.mark.slow
def test_dry_run_runs_every_part_and_writes_the_report(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("gpu_bench", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "gpu_bench.json"
    report = bench.main(["--dry-run", "--out", str(out)])
    assert json.loads(out.read_text())["results"] == json.loads(json.dumps(report["results"], default=str))
    rows = {(r["preset"], r["stage"]): r for r in report["results"]}
    assert set(rows) == {(p, s) for p in ("default", "low_memory") for s in ("sft", "grpo")}
    for (preset, stage), row in rows.items():
        assert "error" not in row, row
        m = row["metrics"]
        assert m["seconds_per_step"] > 0 and m["estimated_gb"] > 0
        if stage == "sft":
            assert m["tokens_per_s"] > 0 and m["tokens_per_step"] > 0
        else:
            assert m["generation"] == "generate" and m["generation_s"] > 0 and m["generated_tokens_per_s"] > 0
            assert 0 < m["generation_s"] < m["seconds_per_step"]
    # the 4-bit path runs wherever bitsandbytes is installed (the `cuda` extra; `pip install bitsandbytes` on a CPU)
    has_bnb = importlib.util.find_spec("bitsandbytes") is not None
    assert rows[("low_memory", "sft")]["settings"]["load_in_4bit"] == has_bnb
    paths = report["generation_at_group_size_8"]["tiny"]
    assert paths["generate"]["path"] == "generate" and paths["continuous_batching"]["path"] == "continuous_batching"
    assert all(p["tokens_per_s"] > 0 for p in paths.values()) and "speedup_vs_generate" in paths["continuous_batching"]
    table = capsys.readouterr().out
    assert "MFU" in table and "tiny | low_memory | grpo" in table


def test_flop_formula_counts_recompute_as_hardware_flops_only():
    spec = importlib.util.spec_from_file_location("gpu_bench", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    from helpers import config
    from helpers.gpu_memory import DEEPSEEK_MATH_7B as shape

    plain = config.resolve("default", device=config.DeviceInfo())
    checkpointed = config.resolve("default", device=config.DeviceInfo(), gradient_checkpointing=True)
    # 4 x (linear + LM head parameters) dominates: ~2.6e10 FLOPs per token for the 7B shape
    model, hardware = bench.flops_per_token(shape, plain, 512)
    assert model == hardware and 2.5e10 < model < 2.8e10
    model_c, hardware_c = bench.flops_per_token(shape, checkpointed, 512)
    assert model_c == model and 1.4 < hardware_c / model_c < 1.55
    assert bench.peak_tflops("NVIDIA H100 80GB HBM3", None) == 989.0 and bench.peak_tflops("Tesla T4", None) is None
