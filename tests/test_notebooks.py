"""Every notebook, executed in order with papermill on the real embedded model, preset fast_test.

The notebooks hand work to each other through files, so the tests run them in
order against one temporary output folder (WORKBOOK_OUTPUT) and one temporary
data folder, and assert on the files each one writes: run.json, metrics.json,
the final adapter, the training files. Nothing is written into the repository.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from helpers.notebooks import list_notebooks, run_notebook

pytestmark = [pytest.mark.notebook, pytest.mark.slow, pytest.mark.timeout(1200)]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("workbook")
    out, data = root / "output", root / "data"
    out.mkdir()
    old = os.environ.get("WORKBOOK_OUTPUT")
    os.environ["WORKBOOK_OUTPUT"] = str(out)
    yield {"out": out, "data": data, "executed": root / "executed"}
    if old is None:
        os.environ.pop("WORKBOOK_OUTPUT", None)
    else:
        os.environ["WORKBOOK_OUTPUT"] = old


def _run(name: str, ws, **params) -> Path:
    (path,) = [p for p in list_notebooks() if p.name.startswith(name)]
    return run_notebook(path, {"PRESET": "fast_test", **params}, ws["executed"])


def _data(ws, name):
    return str(ws["data"] / name)


def test_00_setup_check(workspace):
    _run("00", workspace)
    report = json.loads((workspace["out"] / "setup_check" / "setup_check.json").read_text())
    from helpers.check import recommend_preset
    from helpers.config import detect_device

    device = detect_device()  # the same machine the notebook ran on, CPU or GPU
    assert report["ok"] and report["system"]["device"] == device.kind
    assert report["embedded_model"]["answer"].strip() and report["embedded_model"]["parameters"] > 100e6
    assert report["sft_step"]["status"] == "completed" and report["sft_step"]["loss"] > 0
    assert report["grpo_step"]["status"] == "completed"
    recommended = recommend_preset(device)[0]
    assert report["recommended_preset"]["preset"] == recommended and report["chosen_preset"] == recommended


def test_01_data_prep(workspace):
    _run("01", workspace, OUTPUT_DIR=str(workspace["data"]), N_GENERATED=600, REPLAY_COPIES=2)  # off by default
    files = {name: json.loads((workspace["data"] / name).read_text())
             for name in ("sft_train.json", "sft_val.json", "grpo_train.json", "grpo_val.json")}
    assert all(files.values())
    assert all(r.get("final_answer") for r in files["grpo_train.json"])
    val_questions = {r["question"] for r in files["sft_val.json"]}
    assert not val_questions & {r["question"] for r in files["sft_train.json"] + files["grpo_train.json"]}
    report = json.loads((workspace["data"] / "data_report.json").read_text())
    assert report["leaks"] == 0 and report["files"]["sft_train.json"] == len(files["sft_train.json"])
    replayed = [r for r in files["sft_train.json"] if r.get("origin") == "replay"]
    assert report["replay"]["added_to_sft_train"] == len(replayed) > 0  # the base model's own answers, SFT only
    assert not any(r.get("origin") == "replay" for name in ("sft_val.json", "grpo_train.json", "grpo_val.json")
                   for r in files[name])


def test_02_sft_train(workspace):
    _run("02", workspace, TRAIN_DATA=_data(workspace, "sft_train.json"), VAL_DATA=_data(workspace, "sft_val.json"))
    (run,) = list(workspace["out"].glob("sft_*"))
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "completed" and record["preset"] == "fast_test"
    assert record["global_step"] == record["settings"]["max_steps"] == 8
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer_config.json"} <= \
        {p.name for p in (run / "final_model").iterdir()}
    assert (run / "loss_curves.png").is_file() and (run / "training_log.txt").read_text().count("\n") > 8


def test_03_sft_eval(workspace):
    _run("03", workspace, EVAL_DATA=_data(workspace, "sft_val.json"))
    (run,) = list(workspace["out"].glob("sft_*"))
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["sets"]) == {"transfer", "in_distribution"}
    for set_name, n_numeric in (("transfer", 24), ("in_distribution", 12)):
        models = metrics["sets"][set_name]["models"]
        assert set(models) == {"base", "sft"}
        for summary in models.values():
            assert summary["n_numeric"] == n_numeric
            assert 0 <= summary["accuracy_strict"] <= summary["accuracy_lenient"] <= 1 and summary["by_group"]
    assert metrics["sets"]["in_distribution"]["models"]["sft"]["n_concept"] == 4
    (sft_row,) = [r for r in metrics["scorecard"] if r["model"] == "sft"]
    assert len(sft_row["transfer_95"]) == 2 and len(sft_row["in_distribution_95"]) == 2
    (kept,) = metrics["retention"]
    assert kept["model"] == "sft" and kept["n"] == 12 and 0 <= kept["share"] <= 1 and kept["by_family"]
    assert metrics["paired"]["sft vs base"]["transfer"]["n"] == 24


def test_04_grpo_train(workspace):
    _run("04", workspace, TRAIN_DATA=_data(workspace, "grpo_train.json"), VAL_DATA=_data(workspace, "grpo_val.json"),
         N_EVAL=8)
    (run,) = list(workspace["out"].glob("grpo_*"))
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "completed" and record["sft_model"] and record["settings"]["method"] == "grpo"
    assert record["plan"]["kl_reference"].startswith("the SFT policy")
    assert record["global_step"] == 2
    assert set(record["accuracy"]) == {"before", "after"}
    assert set(record["accuracy"]["after"]) == {"transfer", "in_distribution"}
    # the headroom, measured before training: reward-stage prompts at T 1.0 (= fast_test's training temperature)
    # and transfer, 4 prompts x 4 samples each
    assert set(record["headroom"]) == {"reward-stage prompts, T 1", "transfer, T 1"}
    for room in record["headroom"].values():
        assert room["n_prompts"] == 4 and room["samples_per_prompt"] == 4
        assert set(room["pass_at_k"]) == {"pass@1", "pass@2", "pass@4"}
        assert 0 <= room["pass_at_k"]["pass@1"] <= room["pass_at_k"]["pass@4"] <= 1
    assert (run / "headroom.png").is_file()
    # the health rules, the sharpening read against the starting policy's greedy answers to the same prompts
    (sharpening,) = [r for r in record["health"] if r["rule"].startswith("correctness of the samples")]
    assert "first 1 vs last 1 steps" in sharpening["rule"] and "the starting policy on the same prompts" in \
        sharpening["value"]
    cfg = json.loads((run / "final_model" / "adapter_config.json").read_text())
    sft_cfg = json.loads(next(workspace["out"].glob("sft_*/final_model/adapter_config.json")).read_text())
    assert cfg["r"] == sft_cfg["r"] + record["settings"]["lora_r"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["sets"]) == {"transfer", "in_distribution"}
    assert set(metrics["sets"]["transfer"]["models"]) == {"before", "after"}
    assert metrics["sets"]["transfer"]["models"]["after"]["n_numeric"] == 24
    assert metrics["sets"]["in_distribution"]["models"]["after"]["n_numeric"] == 8
    assert metrics["paired"]["after vs before"]["transfer"]["n"] == 24
    assert (run / "grpo_curves.png").is_file() and json.loads((run / "samples.json").read_text())
    # the probe (fast_test: 4 held-out prompts every 2 steps): the start and step 2; final_model/ is the better one
    probe = record["probe"]
    assert [h["step"] for h in probe["history"]] == [0, 2] and probe["n"] == 4
    assert probe["best_step"] in (0, 1, 2) and (run / "probe.png").is_file()


def test_04_with_method_rejection_sft(workspace):
    """04's other method from the same SFT run: one round, no headroom, no evaluation (05 grades it)."""
    before = set(workspace["out"].glob("grpo_*"))
    _run("04", workspace, METHOD="rejection_sft", TRAIN_DATA=_data(workspace, "grpo_train.json"),
         VAL_DATA=_data(workspace, "grpo_val.json"), HEADROOM_PROMPTS=0, N_EVAL=0)
    (run,) = set(workspace["out"].glob("grpo_*")) - before
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "completed" and record["settings"]["method"] == "rejection_sft"
    assert record["plan"]["method"] == "rejection_sft" and len(record["rounds"]) == 1
    assert "headroom" not in record and "accuracy" not in record
    cfg = json.loads((run / "final_model" / "adapter_config.json").read_text())
    sft_cfg = json.loads(next(workspace["out"].glob("sft_*/final_model/adapter_config.json")).read_text())
    assert cfg["r"] == sft_cfg["r"] + record["settings"]["lora_r"]  # one adapter that loads on the plain base


def test_04_with_method_more_sft_and_a_budget(workspace):
    """The control of 05's budget-matched table, stopped by MAX_MINUTES: with a budget the rounds would go on
    over the whole prompt pool (2 rounds of 4), and a budget this small ends the run after the first step."""
    before = set(workspace["out"].glob("grpo_*"))
    _run("04", workspace, METHOD="more_sft", MAX_MINUTES=0.001, TRAIN_DATA=_data(workspace, "grpo_train.json"),
         VAL_DATA=_data(workspace, "grpo_val.json"), HEADROOM_PROMPTS=0, N_EVAL=0)
    (run,) = set(workspace["out"].glob("grpo_*")) - before
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "completed" and record["settings"]["method"] == "more_sft"
    assert record["plan"]["rounds"] == 2 and record["plan"]["samples_per_round"] == 0
    assert record["stopped_by_budget"] is True and record["global_step"] == 1 and len(record["rounds"]) == 1
    (first,) = record["rounds"]
    assert first["samples"] == 0 and first["training_rows"] == first["prompts"] == 4
    assert 0 < record["wall_minutes"] < 5
    assert (run / "final_model" / "adapter_config.json").is_file()


def test_05_compare(workspace):
    _run("05", workspace, EVAL_DATA=_data(workspace, "sft_val.json"))
    (out,) = list(workspace["out"].glob("compare_*"))
    card = json.loads((out / "scorecard.json").read_text())
    methods = ["grpo", "rejection_sft", "more_sft"]
    assert [row["model"] for row in card["scorecard"]] == ["base", "sft", *methods]
    for row in card["scorecard"]:
        for set_name in ("transfer", "in_distribution"):
            assert 0 <= row[f"{set_name}_strict"] <= 1 and len(row[f"{set_name}_95"]) == 2
        assert "reward_correctness" in row and "reward_format" in row
    assert [r["model"] for r in card["retention"]] == ["sft", *methods]
    assert set(card["paired"]) == {"sft vs base", "grpo vs sft", "rejection_sft vs sft", "more_sft vs sft",
                                   "grpo vs more_sft", "rejection_sft vs more_sft"}
    # the budget-matched table: one row per method with its cost and paired change, and the verdict in words
    assert [row["method"] for row in card["budget"]] == methods and set(card["reward_runs"]) == set(methods)
    for row in card["budget"]:
        assert row["minutes"] > 0 and row["transfer_vs_sft"] is not None and 0 <= row["transfer_p"] <= 1
    assert any(line.startswith("Not budget-matched") for line in card["verdict"])  # more_sft was cut at 0.001 min
    assert any("vs the control" in line for line in card["verdict"])
    assert card["changes"]["transfer"] and card["by_family"]["transfer"]
    assert any("GRPO" in note and "too few" in note for note in card["notes"])  # fast_test says why nothing moved
    assert (out / "accuracy_by_family.png").is_file() and (out / "training_curves.png").is_file()
    (exported,) = list(workspace["out"].glob("export_*"))  # the newest run, merged and as GGUF
    assert (exported / "model.safetensors").is_file() and len(list((exported / "gguf").glob("*-q8_0.gguf"))) == 1
    assert "HuggingFaceTB/SmolLM2-135M-Instruct" in (exported / "README.md").read_text()


def test_06_rag(workspace):
    _run("06", workspace, EVAL_DATA=_data(workspace, "sft_val.json"))
    (out,) = list(workspace["out"].glob("rag_*"))
    metrics = json.loads((out / "metrics.json").read_text())
    models = {row["model"] for row in metrics["ablation"]}
    assert {"base", "sft", "grpo"} <= models, models
    assert metrics["retrieval"]["n"] > 0 and 0 <= metrics["retrieval"]["recall"] <= 1
    assert metrics["knowledge"]["passages"] >= 276 and metrics["option2"] is not None
    trained = metrics["option2_round"]  # Option 2 closed into a training round (rejection_sft with the notes)
    assert trained["prompts"] == 4 and trained["samples"] == 8 and 0 <= trained["kept"] <= 8
    assert trained["start"] == "grpo" and [r["retrieval"] for r in trained["before"]] == ["off", "on"]
    assert bool(trained["after"]) == (trained["kept"] > 0)  # the trained model is asked only when it learned
    assert (out / "training_round" / "final_model" / "adapter_config.json").is_file()
    assert json.loads((out / "training_round" / "run.json").read_text())["settings"]["rs_min_cosine"] == 0.8
