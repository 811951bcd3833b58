"""SFT on the tiny model: it learns, saves, reloads exactly, and a dry run trains nothing."""

import json

import pytest
import torch

from helpers import config, sft
from helpers.models import load_adapter, load_base_model, load_tokenizer


def _rows(n=24):
    return [{"question": f"What is {a} + {b}?", "answer": f"{a} + {b} = {a + b}.\nAnswer: {a + b}",
             "final_answer": str(a + b), "family": "arithmetic"} for a in range(1, 7) for b in range(1, 5)][:n]


@pytest.fixture
def data_files(tmp_path):
    rows = _rows()
    train, val = tmp_path / "train.json", tmp_path / "val.json"
    train.write_text(json.dumps(rows[:20]))
    val.write_text(json.dumps(rows[20:]))
    return train, val


def _settings(model_dir, **kw):
    base = dict(model_name=str(model_dir), max_steps=20, lr=5e-3, batch_size=4, save_steps=6, eval_steps=6,
                logging_steps=1, warmup_ratio=0.0, lr_scheduler="constant", max_train_examples=0)
    base.update(kw)
    return config.resolve("fast_test", "sft", device=config.DeviceInfo(), **base)


def test_a_few_steps_lower_the_loss_and_write_the_run(tiny_model_dir, data_files, workbook_output):
    train, val = data_files
    result = sft.train_sft(_settings(tiny_model_dir), train, val)
    assert result.status == "completed"
    losses = [r["loss"] for r in result.log_rows if "loss" in r]
    assert len(losses) == 20 and sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.3
    run = result.run
    assert run.root.parent == workbook_output and run.root.name.startswith("sft_")
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer_config.json"} <= \
        {p.name for p in run.final_model.iterdir()}
    assert not list(run.final_model.glob("*.bin"))
    assert (run.root / "checkpoint-18").is_dir() and (run.root / "checkpoint-20").is_dir()
    record = json.loads(run.run_json.read_text())
    assert record["status"] == "completed" and record["global_step"] == 20
    assert record["settings"]["lr"] == 5e-3 and record["data_files"]["train"]["sha256"]
    header = run.training_log.read_text().splitlines()[0].split("\t")
    assert header == sft.LOG_COLUMNS
    assert any("val_loss" in r for r in result.log_rows)
    assert run.figure("loss_curves").stat().st_size > 1000


def test_saved_adapter_reloads_to_identical_logits(tiny_model_dir, data_files, workbook_output):
    train, val = data_files
    result = sft.train_sft(_settings(tiny_model_dir, max_steps=4), train, None)
    tok = load_tokenizer(str(result.final_model))
    ids = tok("What is 2 + 3?", return_tensors="pt").input_ids
    # the in-memory trained model is not returned; compare two independent reloads with the base:
    base_logits = load_base_model(str(tiny_model_dir))(ids).logits
    a = load_adapter(load_base_model(str(tiny_model_dir)), result.final_model)(ids).logits
    b = load_adapter(load_base_model(str(tiny_model_dir)), result.final_model)(ids).logits
    assert torch.equal(a, b)
    assert not torch.allclose(a, base_logits, atol=1e-4), "training changed nothing"


def test_dry_run_trains_nothing_and_reports_the_plan(tiny_model_dir, data_files, workbook_output):
    train, val = data_files
    result = sft.train_sft(_settings(tiny_model_dir), train, val, dry_run=True)
    assert result.status == "dry_run" and result.run is None
    plan = result.plan
    assert plan["train_examples"] == 20 and plan["steps"] == 20 and plan["trainable_parameters"] > 0
    assert plan["seconds_per_step_measured"] > 0 and plan["estimated_minutes"] >= 0
    assert list(workbook_output.iterdir()) == []


def test_too_long_rows_are_dropped_and_counted_never_cut(tiny_model_dir, tmp_path, workbook_output):
    rows = _rows(8)
    rows[0] = {**rows[0], "answer": "step. " * 300 + "\nAnswer: 1"}
    path = tmp_path / "train.json"
    path.write_text(json.dumps(rows))
    plan = sft.train_sft(_settings(tiny_model_dir, max_length=128), path, dry_run=True).plan
    assert plan["dropped_too_long"] == 1 and plan["train_examples"] == 7
    assert plan["too_long_examples"][0]["row"] == 1


def test_bad_paths_and_parameters_are_named(tiny_model_dir, tmp_path, workbook_output):
    from helpers.data import DataError

    with pytest.raises(DataError, match="missing.json"):
        sft.train_sft(_settings(tiny_model_dir), tmp_path / "missing.json", dry_run=True)
    with pytest.raises(SystemExit):
        sft.main(["--train-data", "x.json", "--batch-size", "0"])
    with pytest.raises(ValueError, match="output_dir"):
        sft.train_sft(_settings(tiny_model_dir), tmp_path / "missing.json", output_dir=tmp_path / "elsewhere")


def test_prompt_is_one_user_message_through_the_chat_template():
    conv = sft.to_conversation({"question": "What is 2 + 2?", "answer": "2 + 2 = 4.\nAnswer: 4"})
    assert conv["prompt"] == [{"role": "user", "content": "What is 2 + 2?"}]
    assert conv["completion"] == [{"role": "assistant", "content": "2 + 2 = 4.\nAnswer: 4"}]


def test_bf16_autocast_trains_like_float32_and_saves_float32(tiny_model_dir, data_files, workbook_output):
    """bf16 matmuls under autocast, float32 weights: the same losses to rounding (autocast is entered per
    forward, so each step sees the updated LoRA; one autocast around the whole run would reuse stale bf16 copies
    of it), and the adapter saved in float32."""
    from safetensors.torch import load_file

    train, _ = data_files
    runs = {flag: sft.train_sft(_settings(tiny_model_dir, max_steps=8, lora_dropout=0.0, bf16_autocast=flag),
                                train, None) for flag in (False, True)}
    losses = {flag: [r["loss"] for r in run.log_rows if "loss" in r] for flag, run in runs.items()}
    assert losses[True][-1] < losses[True][0] - 0.3
    assert losses[True] == pytest.approx(losses[False], abs=0.05)
    weights = load_file(runs[True].final_model / "adapter_model.safetensors")
    assert {t.dtype for t in weights.values()} == {torch.float32}
    assert json.loads(runs[True].run.run_json.read_text())["settings"]["bf16_autocast"] is True
