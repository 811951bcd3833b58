"""Curves where people already look: REPORT_TO / --report-to reach TRL's report_to (helpers.config, the trainers)."""

from __future__ import annotations

import json

import pytest

from helpers import config, grpo, sft


def _settings(**kw):
    return config.resolve("fast_test", "sft", device=config.DeviceInfo(), **kw)


def test_report_to_defaults_to_none_and_is_checked():
    assert _settings().report_to == "none"
    assert sft.trainer_arguments(_settings())["report_to"] == []
    assert sft.trainer_arguments(_settings(report_to="tensorboard"))["report_to"] == ["tensorboard"]
    with pytest.raises(ValueError, match="report_to: must be one of none, tensorboard, trackio"):
        _settings(report_to="wandb")


def test_report_to_on_the_command_line(capsys):
    for module in (sft, grpo):
        with pytest.raises(SystemExit):
            module.main(["--help"])
        assert "--report-to REPORT_TO" in capsys.readouterr().out


def test_tensorboard_event_files_are_written_when_asked(tiny_model_dir, tmp_path, workbook_output):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    rows = [{"question": f"What is {a} + 1?", "answer": f"{a} + 1 = {a + 1}.\nAnswer: {a + 1}"} for a in range(8)]
    train = tmp_path / "train.json"
    train.write_text(json.dumps(rows))
    settings = _settings(model_name=str(tiny_model_dir), max_steps=2, batch_size=4, logging_steps=1,
                         max_train_examples=0, save_steps=10, report_to="tensorboard")
    result = sft.train_sft(settings, train, None)
    assert result.status == "completed"
    events = sorted(result.run.root.glob("runs/*/events.out.tfevents.*"))
    assert events, list(result.run.root.rglob("*"))
    scalars = EventAccumulator(str(events[0].parent))
    scalars.Reload()
    assert "train/loss" in scalars.Tags()["scalars"]
    assert len(scalars.Scalars("train/loss")) == 2
    # the workbook's own log and curves stay
    assert len(result.run.training_log.read_text().splitlines()) == 3
    assert result.run.figure("loss_curves").is_file()
