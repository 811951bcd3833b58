"""Run folders, run.json and the training log."""

import datetime as dt
import json

import pytest

from helpers import runs


def test_run_folders_are_numbered_per_day(workbook_output):
    day = dt.date(2026, 11, 26)
    first = runs.new_run_dir("sft", date=day)
    second = runs.new_run_dir("sft", date=day)
    assert first.root.name == "sft_20261126" and second.root.name == "sft_20261126_2"
    assert first.root.parent == workbook_output


def test_run_json_records_what_reproduces_a_run(workbook_output, tmp_path):
    data = tmp_path / "train.json"
    data.write_text("[]")
    paths = runs.new_run_dir("sft")
    runs.start_run(paths, "sft", "fast_test", {"lr": 1e-4}, {"train": data}, seed=3)
    record = runs.read_run(paths.root)
    assert record["status"] == "running" and record["seed"] == 3 and record["settings"] == {"lr": 1e-4}
    assert record["data_files"]["train"]["sha256"] == runs.sha256_file(data)
    assert record["versions"]["torch"] and record["versions"]["trl"]
    assert record["started"] and record["ended"] is None
    runs.finish_run(paths, "failed", "loss became nan")
    record = runs.read_run(paths.root)
    assert (record["status"], record["reason"]) == ("failed", "loss became nan") and record["ended"]
    with pytest.raises(ValueError, match="status"):
        runs.finish_run(paths, "done")


def test_find_runs_newest_completed_first(workbook_output):
    a, b, c = (runs.new_run_dir("grpo") for _ in range(3))
    for p, status, started in ((a, "completed", "2026-01-01"), (b, "completed", "2026-01-02"), (c, "failed", "2026-01-03")):
        runs.write_json_atomic(p.run_json, {"stage": "grpo", "status": status, "started": started})
    assert runs.find_runs("grpo") == [b.root, a.root]
    assert runs.pick_run("grpo") == b.root
    with pytest.raises(FileNotFoundError, match="02_sft_train"):
        runs.pick_run("sft", required=True)


def test_training_log_is_tab_separated_and_readable(tmp_path):
    log = runs.TrainingLog(tmp_path / "training_log.txt", ["step", "loss", "val_loss"])
    log.write({"step": 1, "loss": 2.5})
    log.note("a warning")
    log.write({"step": 2, "loss": 2.25, "val_loss": 2.4})
    text = (tmp_path / "training_log.txt").read_text()
    assert text.splitlines()[0] == "step\tloss\tval_loss" and "# a warning" in text
    assert runs.read_training_log(tmp_path / "training_log.txt") == [
        {"step": 1.0, "loss": 2.5}, {"step": 2.0, "loss": 2.25, "val_loss": 2.4}]


def test_output_paths_outside_output_are_refused(workbook_output, tmp_path):
    assert runs.check_output_path(workbook_output / "sft_x") == (workbook_output / "sft_x").resolve()
    with pytest.raises(ValueError, match="output_dir: .* is outside"):
        runs.check_output_path(tmp_path / "elsewhere")
    assert runs.check_output_path(tmp_path / "elsewhere", allow_outside=True)


def test_atomic_json_leaves_no_temp_files(tmp_path):
    runs.write_json_atomic(tmp_path / "a.json", {"x": 1})
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_atomic_path_replaces_a_folder_only_when_the_block_succeeds(tmp_path):
    target = tmp_path / "final_model"
    with runs.atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "adapter.bin").write_text("one")
    assert (target / "adapter.bin").read_text() == "one"
    with pytest.raises(RuntimeError, match="disk"):
        with runs.atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "adapter.bin").write_text("two")
            raise RuntimeError("disk full")
    assert (target / "adapter.bin").read_text() == "one"  # the old folder is left as it was
    assert [p.name for p in tmp_path.iterdir()] == ["final_model"]  # and no temp behind
    digest = runs.write_atomic(tmp_path / "card.md", "é\n")
    assert digest == runs.sha256_file(tmp_path / "card.md") and (tmp_path / "card.md").read_text() == "é\n"


def test_pick_run_is_the_one_way_to_find_runs(workbook_output):
    old, new = runs.new_run_dir("sft"), runs.new_run_dir("sft")
    for p, started in ((old, "2026-01-01"), (new, "2026-01-02")):
        runs.write_json_atomic(p.run_json, {"stage": "sft", "status": "completed", "started": started})
    (old.final_model).mkdir()
    (old.final_model / "adapter_config.json").write_text("{}")
    assert runs.pick_run("sft") == new.root  # the newest completed run
    assert runs.pick_run("sft", adapter=True) == old.root  # the newest with a final adapter
    assert runs.final_adapter(old.root) == old.final_model and runs.final_adapter(new.root) is None
    for given in (old.name, str(old.root), str(old.final_model)):  # a name under output/, a path, its final_model/
        assert runs.pick_run("sft", given, adapter=True) == old.root
    with pytest.raises(FileNotFoundError, match="SFT_RUN: .* has no final_model/"):
        runs.pick_run("sft", new.name, adapter=True)
    with pytest.raises(FileNotFoundError, match="GRPO_RUN: nowhere has no run.json"):
        runs.pick_run("grpo", "nowhere")
    assert runs.pick_run("grpo") is None
