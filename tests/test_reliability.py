"""Reliability: killed runs resume exactly, bad input is named, nothing is lost, faults are caught.

Everything runs on the tiny 2-layer model (tests/conftest.py) on the CPU. The
numbers in the headings refer to the items of the reliability issue:

1. kill (SIGKILL) and resume, SFT and GRPO, through train_* and the CLI;
2. half-written checkpoints are skipped;
3. final_model/ is atomic; run.json records completed / failed / interrupted;
4. NaN loss and all-zero reward spread are caught;
5. CUDA out of memory becomes advice, and optionally one retry at half the batch;
6. parameters and flags are checked by name, type and range before any work;
7. training files are never overwritten by invalid data;
8. safetensors only, no remote code, checkpoints only from the run's own folder;
9. same seed and data: same split files, same loss.

A killed run is simulated exactly: a driver script trains in a subprocess with
an extra callback that hangs once step 3 is logged (checkpoint-2 is then
complete and the log holds one step past it); the test SIGKILLs it there.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings as hsettings
from hypothesis import strategies as st
from safetensors.torch import load_file
from transformers import TrainerCallback

from helpers import config, data, grpo, models, sft
from helpers.checkpoints import latest_complete_checkpoint
from helpers.models import REPO_ROOT
from helpers.runs import read_run, read_training_log, sha256_file, truncate_training_log
from helpers.training import TrainingResult

pytestmark = pytest.mark.timeout(300)

SFT_ROWS = [{"question": f"What is {a} + {b}?", "answer": f"{a} + {b} = {a + b}.\nAnswer: {a + b}",
             "final_answer": str(a + b), "family": "arithmetic"} for a in range(1, 7) for b in range(1, 5)][:20]
GRPO_ROWS = [{"question": f"What is {a} + {b}?", "answer": f"{a} + {b} = {a + b}.\nAnswer: {a + b}",
              "final_answer": str(a + b), "family": "arithmetic"} for a in range(1, 5) for b in range(1, 5)]
GRPO_ROWS += [{"question": f"What is a sample space ({i})?",
               "answer": "The set of all possible outcomes of an experiment.", "topic": "sample_spaces_events"}
              for i in range(8)]

SFT_OVERRIDES = dict(max_steps=8, lr=5e-3, batch_size=4, save_steps=2, logging_steps=1, warmup_ratio=0.0,
                     lr_scheduler="constant", max_train_examples=0,
                     bf16_autocast=False)  # the CLI resolves for this CPU; float32 everywhere, compared to 1e-5
GRPO_OVERRIDES = dict(max_steps=4, batch_size=4, num_generations=4, max_new_tokens=12, lr=5e-2, logging_steps=1,
                      save_steps=2, beta=0.05, warmup_ratio=0.0, mask_truncated_completions=False,
                      max_train_examples=0,
                      reward_weights={"correctness": 1.0, "format": 0.5, "similarity": 1.0, "length": 0.5})
# GRPO samples with temperature 1, so a resumed run matches only if the RNG state is restored exactly.
# Measured on this CPU (torch 2.13, transformers 5.24, TRL 1.16): see test_grpo_kill_and_resume.
GRPO_WEIGHT_TOL = 1e-5
GRPO_METRIC_TOL = 1e-5
TIMING_COLUMNS = {"elapsed_s", "step_time", "tokens_per_s"}


def sft_settings(model_dir, **kw):
    return config.resolve("fast_test", "sft", device=config.DeviceInfo(), model_name=str(model_dir),
                          **{**SFT_OVERRIDES, **kw})


def grpo_settings(model_dir, **kw):
    return config.resolve("fast_test", "grpo", device=config.DeviceInfo(), model_name=str(model_dir),
                          **{**GRPO_OVERRIDES, **kw})


@pytest.fixture(scope="module")
def sft_train_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("sft_data") / "train.json"
    path.write_text(json.dumps(SFT_ROWS))
    return path


@pytest.fixture(scope="module")
def grpo_train_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("grpo_data") / "grpo_train.json"
    path.write_text(json.dumps(GRPO_ROWS))
    return path


@pytest.fixture(scope="module")
def sft_reference(tiny_model_dir, sft_train_file, tmp_path_factory):
    """One uninterrupted SFT run (8 steps, checkpoints every 2) that the other runs are compared with."""
    out = tmp_path_factory.mktemp("reference") / "output"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBOOK_OUTPUT", str(out))
        result = sft.train_sft(sft_settings(tiny_model_dir), sft_train_file, output_dir=out / "sft_reference")
    assert result.status == "completed"
    return result.run.root


def adapter(folder) -> dict:
    return load_file(str(Path(folder) / "adapter_model.safetensors"))


def max_weight_diff(a, b) -> float:
    wa, wb = adapter(a), adapter(b)
    assert wa.keys() == wb.keys()
    return max((wa[k] - wb[k]).abs().max().item() for k in wa)


def log_rows(run) -> list[dict]:
    return read_training_log(Path(run) / "training_log.txt")


def train_steps(run) -> list[int]:
    return [int(r["step"]) for r in log_rows(run)]


# ----------------------------------------------------------------------------- 1. kill and resume
DRIVER = '''
import json, sys, time
from transformers import TrainerCallback
from helpers import config, grpo, sft

spec = json.loads(sys.argv[1])


class SlowThenHang(TrainerCallback):
    """Slow steps, then a hang once step `hang_at` is logged: the test kills the process there."""

    def on_step_end(self, args, state, control, **kwargs):
        time.sleep(spec["sleep"])

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.global_step >= spec["hang_at"] and "loss" in (logs or {}):
            print("hanging at step", state.global_step, flush=True)
            time.sleep(600)


settings = config.resolve("fast_test", spec["stage"], device=config.DeviceInfo(), **spec["settings"])
if spec["stage"] == "sft":
    sft.train_sft(settings, spec["train"], output_dir=spec["output_dir"], callbacks=[SlowThenHang()])
else:
    grpo.train_grpo(settings, spec["train"], output_dir=spec["output_dir"], callbacks=[SlowThenHang()])
'''


def run_and_kill(tmp_path, stage, settings_dict, train_file, run_dir, hang_at=3, timeout=180):
    """Train in a subprocess, SIGKILL it once step ``hang_at`` is logged; return the checkpoint left behind."""
    driver = tmp_path / f"driver_{stage}.py"
    driver.write_text(DRIVER)
    spec = {"stage": stage, "settings": settings_dict, "train": str(train_file), "output_dir": str(run_dir),
            "sleep": 0.3, "hang_at": hang_at}
    log_out = open(tmp_path / f"driver_{stage}.log", "w")
    proc = subprocess.Popen([sys.executable, str(driver), json.dumps(spec)], cwd=REPO_ROOT, env=dict(os.environ),
                            stdout=log_out, stderr=subprocess.STDOUT)
    start = time.time()
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the driver exited with {proc.returncode}:\n"
                            + (tmp_path / f"driver_{stage}.log").read_text()[-3000:])
            if time.time() - start > timeout:
                pytest.fail("the driver never reached the kill point")
            log = run_dir / "training_log.txt"
            if log.is_file() and any(s >= hang_at for s in train_steps(run_dir)):
                break
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        log_out.close()
    assert proc.returncode == -signal.SIGKILL
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return latest_complete_checkpoint(run_dir)


def test_sft_kill_and_resume_matches_an_uninterrupted_run(tiny_model_dir, sft_train_file, sft_reference,
                                                          workbook_output, tmp_path):
    """Killed after checkpoint-2 (step 3 already logged), resumed with resume='latest' in-process and with
    `python -m helpers.sft --resume latest`: same global step, same losses, adapter within 1e-5, log rows
    not duplicated, run.json back to running then completed with resumed_from."""
    run = workbook_output / "sft_killed"
    overrides = {"model_name": str(tiny_model_dir), **SFT_OVERRIDES}
    checkpoint = run_and_kill(tmp_path, "sft", overrides, sft_train_file, run)
    assert checkpoint is not None and checkpoint.name == "checkpoint-2"
    assert read_run(run)["status"] == "running"  # the kill left no chance to record anything
    assert train_steps(run) == [1, 2, 3]  # step 3 was logged after the last checkpoint
    cli_run = workbook_output / "sft_killed_cli"
    shutil.copytree(run, cli_run)

    # resume in this process, then the copy through the CLI (one torch process at a time on 2 cores)
    seen = []
    result = sft.train_sft(sft_settings(tiny_model_dir), sft_train_file, output_dir=run, resume="latest",
                           on_log_row=lambda row, rows: seen.append(row["step"]))
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in overrides.items()]
    cli = subprocess.run([sys.executable, "-m", "helpers.sft", "--config", "fast_test", "--train-data",
                          str(sft_train_file), "--output-dir", str(cli_run), "--resume", "latest", *flags],
                         cwd=REPO_ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=240)
    assert cli.returncode == 0, cli.stderr[-3000:]
    assert '"status": "completed"' in cli.stdout
    assert result.status == "completed" and seen == [3, 4, 5, 6, 7, 8]
    assert [r["step"] for r in result.log_rows] == list(range(1, 9))  # earlier rows kept for the plot

    ref_rows = {int(r["step"]): r for r in log_rows(sft_reference)}
    for resumed in (run, cli_run):
        record = read_run(resumed)
        assert record["status"] == "completed" and record["reason"] is None
        assert record["resumed_from"].endswith("checkpoint-2")
        assert record["global_step"] == read_run(sft_reference)["global_step"] == 8
        state = json.loads((resumed / "checkpoint-8" / "trainer_state.json").read_text())
        assert state["global_step"] == 8
        assert train_steps(resumed) == list(range(1, 9)), "duplicate or missing step rows in training_log.txt"
        for row in log_rows(resumed):
            assert row["loss"] == pytest.approx(ref_rows[int(row["step"])]["loss"], rel=1e-5, abs=1e-6)
        assert max_weight_diff(resumed / "final_model", sft_reference / "final_model") <= 1e-5


def test_grpo_kill_and_resume_matches_an_uninterrupted_run(tiny_model_dir, grpo_train_file, workbook_output,
                                                           tmp_path):
    """GRPO killed after checkpoint-2 and resumed: same step count, same logged metrics for the steps after
    the resume point and the adapter within GRPO_WEIGHT_TOL. Measured here: the resumed run is bit-identical
    (max weight difference 0.0), because the checkpoint restores the sampler and RNG states exactly; the
    tolerance only leaves room for other BLAS builds."""
    run = workbook_output / "grpo_killed"
    overrides = {"model_name": str(tiny_model_dir), **GRPO_OVERRIDES}
    checkpoint = run_and_kill(tmp_path, "grpo", overrides, grpo_train_file, run)
    assert checkpoint is not None and checkpoint.name == "checkpoint-2"
    assert read_run(run)["status"] == "running" and train_steps(run) == [1, 2, 3]

    resumed = grpo.train_grpo(grpo_settings(tiny_model_dir), grpo_train_file, output_dir=run, resume="latest")
    reference = grpo.train_grpo(grpo_settings(tiny_model_dir), grpo_train_file,
                                output_dir=workbook_output / "grpo_reference")
    assert resumed.status == reference.status == "completed"
    record = read_run(run)
    assert record["status"] == "completed" and record["resumed_from"].endswith("checkpoint-2")
    assert record["global_step"] == read_run(reference.run.root)["global_step"] == 4
    assert train_steps(run) == [1, 2, 3, 4]
    ref = {int(r["step"]): r for r in log_rows(reference.run.root)}
    for row in log_rows(run):
        if row["step"] <= 2:
            continue
        expected = ref[int(row["step"])]
        assert row.keys() == expected.keys()
        for column, value in row.items():
            if isinstance(value, str) or column in TIMING_COLUMNS:
                assert column in TIMING_COLUMNS or value == expected[column], (column, value, expected[column])
            else:
                assert value == pytest.approx(expected[column], rel=GRPO_METRIC_TOL, abs=1e-6, nan_ok=True), column
    diff = max_weight_diff(run / "final_model", reference.run.root / "final_model")
    print(f"GRPO resume: max adapter weight difference {diff:.3g}")
    assert diff <= GRPO_WEIGHT_TOL


def test_truncate_training_log_drops_rows_after_the_checkpoint(tmp_path):
    log = tmp_path / "training_log.txt"
    log.write_text("step\tloss\n1\t2.5\n2\t2.4\n# WARNING at step 2\n3\t2.3\n# WARNING at step 3\n4\t2.2\n5\t2.")
    rows = truncate_training_log(log, 2)
    assert rows == [{"step": 1, "loss": 2.5}, {"step": 2, "loss": 2.4}]
    assert log.read_text() == "step\tloss\n1\t2.5\n2\t2.4\n# WARNING at step 2\n"
    assert truncate_training_log(log, 0) == [] and log.read_text() == "step\tloss\n"


# ----------------------------------------------------------------------------- 2. half-written checkpoints
def test_half_written_checkpoints_are_skipped_on_resume(tiny_model_dir, sft_train_file, sft_reference,
                                                        workbook_output):
    """checkpoint-8 has a truncated adapter, checkpoint-6 no trainer_state.json: both are skipped with a
    warning, training resumes from checkpoint-4 and ends exactly where the uninterrupted run ended."""
    run = workbook_output / "sft_broken"
    shutil.copytree(sft_reference, run, ignore=shutil.ignore_patterns("final_model"))
    weights = run / "checkpoint-8" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    (run / "checkpoint-6" / "trainer_state.json").unlink()
    with pytest.warns(UserWarning) as caught:
        result = sft.train_sft(sft_settings(tiny_model_dir), sft_train_file, output_dir=run, resume="latest")
    messages = [str(w.message) for w in caught]
    assert any("checkpoint-8" in m and "adapter_model.safetensors is damaged" in m for m in messages), messages
    assert any("checkpoint-6" in m and "trainer_state.json is missing" in m for m in messages), messages
    assert read_run(run)["resumed_from"].endswith("checkpoint-4")
    assert result.status == "completed" and read_run(run)["global_step"] == 8
    assert train_steps(run) == list(range(1, 9))
    assert max_weight_diff(run / "final_model", sft_reference / "final_model") <= 1e-5


# ----------------------------------------------------------------------------- 3. atomic outputs, run status
def test_completed_run_records_status_and_no_reason(sft_reference):
    record = read_run(sft_reference)
    assert (record["status"], record["reason"], record["global_step"]) == ("completed", None, 8)
    assert record["ended"] and (sft_reference / "final_model" / "adapter_model.safetensors").is_file()
    assert not list(sft_reference.glob(".final_model.tmp*"))


def test_failure_while_saving_leaves_no_final_model_and_no_temp_folder(tiny_model_dir, sft_train_file,
                                                                      workbook_output, monkeypatch):
    tokenizer_class = type(models.load_tokenizer(str(tiny_model_dir)))
    real_save = tokenizer_class.save_pretrained

    def failing_save(self, save_directory, *args, **kwargs):
        if ".final_model.tmp" in str(save_directory):  # checkpoints still save; only the final write fails
            raise OSError(28, "No space left on device (injected)")
        return real_save(self, save_directory, *args, **kwargs)

    monkeypatch.setattr(tokenizer_class, "save_pretrained", failing_save)
    run = workbook_output / "sft_save_fails"
    with pytest.raises(OSError, match="injected"):
        sft.train_sft(sft_settings(tiny_model_dir, max_steps=2), sft_train_file, output_dir=run)
    assert not (run / "final_model").exists()
    assert not [p.name for p in run.iterdir() if "tmp" in p.name]
    record = read_run(run)
    assert record["status"] == "failed" and "saving final_model failed" in record["reason"]
    assert "No space left" in record["reason"] and (run / "checkpoint-2" / "adapter_model.safetensors").is_file()


class InterruptAt(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt


def test_keyboard_interrupt_is_recorded_as_interrupted(tiny_model_dir, sft_train_file, workbook_output):
    run = workbook_output / "sft_interrupted"
    with pytest.raises(KeyboardInterrupt):
        sft.train_sft(sft_settings(tiny_model_dir), sft_train_file, output_dir=run, callbacks=[InterruptAt(3)])
    record = read_run(run)
    assert record["status"] == "interrupted" and "resume='latest'" in record["reason"]
    assert record["global_step"] == 3 and not (run / "final_model").exists()
    assert (run / "checkpoint-2").is_dir()


# ----------------------------------------------------------------------------- 4. numerical faults
class PoisonAfter(TrainerCallback):
    """Sets the LoRA weights to NaN after step ``step``: the next loss is NaN, deterministically."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step == self.step:
            with torch.no_grad():
                for name, param in model.named_parameters():
                    if "lora_" in name:
                        param.fill_(float("nan"))


def test_nan_loss_stops_the_run_as_failed_without_a_final_model(tiny_model_dir, sft_train_file, workbook_output):
    run = workbook_output / "sft_nan"
    result = sft.train_sft(sft_settings(tiny_model_dir), sft_train_file, output_dir=run, callbacks=[PoisonAfter(3)])
    assert result.status == "failed" and result.final_model is None
    assert "loss became nan at step 4" in result.reason and "Lower the learning rate" in result.reason
    record = read_run(run)
    assert record["status"] == "failed" and record["reason"] == result.reason and record["global_step"] == 4
    assert not (run / "final_model").exists()
    assert not (run / "checkpoint-4").exists(), "a checkpoint with NaN weights was saved"
    assert (run / "checkpoint-2").is_dir()


def test_grpo_zero_reward_spread_warns_in_the_log_and_run_json(tiny_model_dir, grpo_train_file, workbook_output):
    run = workbook_output / "grpo_zero_spread"
    settings = grpo_settings(tiny_model_dir, reward_weights={"format": 1.0}, max_steps=2, save_steps=10)
    with pytest.warns(UserWarning, match="same reward"):
        result = grpo.train_grpo(settings, grpo_train_file, output_dir=run, zero_spread_patience=2)
    assert result.status == "completed"
    assert all(r["reward"] == 0 and r["frac_zero_std"] == 1 for r in result.log_rows)
    notes = [ln for ln in (run / "training_log.txt").read_text().splitlines() if ln.startswith("# WARNING")]
    assert len(notes) == 1 and "step 2" in notes[0] and "same reward" in notes[0]
    assert read_run(run)["zero_spread_warnings"] == [notes[0].removeprefix("# WARNING ")]


# ----------------------------------------------------------------------------- 5. out of memory
OOM_TEXT = "CUDA out of memory. Tried to allocate 2 GiB"


def inject_oom(monkeypatch, trainer_class, times):
    """Make ``trainer_class.train`` raise CUDA OOM for the next ``times`` calls (``calls.fail`` sets more);
    record each call's (per-device batch, gradient accumulation)."""
    real_train = trainer_class.train

    class Calls(list):
        fail = times

    calls = Calls()

    def train(self, *args, **kwargs):
        calls.append((self.args.per_device_train_batch_size, self.args.gradient_accumulation_steps))
        if calls.fail > 0:
            calls.fail -= 1
            raise torch.OutOfMemoryError(OOM_TEXT)
        return real_train(self, *args, **kwargs)

    monkeypatch.setattr(trainer_class, "train", train)
    return calls


def test_sft_out_of_memory_becomes_the_seed_advice(tiny_model_dir, sft_train_file, workbook_output, monkeypatch):
    import trl

    calls = inject_oom(monkeypatch, trl.SFTTrainer, times=99)
    run = workbook_output / "sft_oom"
    result = sft.train_sft(sft_settings(tiny_model_dir), sft_train_file, output_dir=run)
    assert result.status == "failed" and calls == [(4, 1)]
    for words in ("Out of memory during sft", OOM_TEXT, "batch_size (4 -> 2)", "grad_accum (1 -> 2)",
                  "max_length (256)", "low_memory", "halve_batch_on_oom=True"):
        assert words in result.reason, words
    record = read_run(run)
    assert (record["status"], record["reason"]) == ("failed", result.reason) and not (run / "final_model").exists()


def test_sft_out_of_memory_retries_once_with_half_the_batch(tiny_model_dir, sft_train_file, workbook_output,
                                                            monkeypatch):
    import trl

    calls = inject_oom(monkeypatch, trl.SFTTrainer, times=1)
    run = workbook_output / "sft_oom_retry"
    result = sft.train_sft(sft_settings(tiny_model_dir, max_steps=2), sft_train_file, output_dir=run,
                           halve_batch_on_oom=True)
    assert calls == [(4, 1), (2, 2)]  # same effective batch of 4
    assert result.status == "completed" and result.final_model is not None
    record = read_run(run)
    assert (record["settings"]["batch_size"], record["settings"]["grad_accum"]) == (2, 2)
    assert any("out of memory at batch_size=4" in n for n in record["settings"]["notes"])
    assert record["status"] == "completed" and train_steps(run) == [1, 2]


def test_grpo_out_of_memory_advice_and_retry(tiny_model_dir, grpo_train_file, workbook_output, monkeypatch):
    import trl

    calls = inject_oom(monkeypatch, trl.GRPOTrainer, times=1)
    settings = grpo_settings(tiny_model_dir, batch_size=8, max_steps=1, save_steps=10)
    failed = grpo.train_grpo(settings, grpo_train_file, output_dir=workbook_output / "grpo_oom")
    assert failed.status == "failed" and read_run(failed.run.root)["reason"] == failed.reason
    for words in ("Out of memory during grpo", OOM_TEXT, "batch_size (8 -> 4)", "num_generations=4",
                  "max_new_tokens=12", "low_memory"):
        assert words in failed.reason, words
    assert calls == [(8, 1)]
    calls.clear()
    calls.fail = 1
    result = grpo.train_grpo(settings, grpo_train_file, output_dir=workbook_output / "grpo_oom_retry",
                             halve_batch_on_oom=True)
    assert calls == [(8, 1), (4, 2)] and result.status == "completed"
    assert read_run(result.run.root)["settings"]["batch_size"] == 4


def test_halved_batch_keeps_the_effective_batch_and_whole_groups(cpu):
    from helpers.faults import halved_batch

    s = config.resolve("default", "sft", device=cpu, batch_size=8, grad_accum=2)
    half = halved_batch(s)
    assert (half.batch_size, half.grad_accum) == (4, 4) and half.notes[-1].startswith("out of memory")
    assert halved_batch(config.resolve("default", "sft", device=cpu, batch_size=1)) is None
    assert halved_batch(config.resolve("default", "sft", device=cpu, batch_size=5)) is None
    g = config.resolve("default", "grpo", device=cpu, batch_size=8, num_generations=8)
    assert halved_batch(g) is None  # 4 samples cannot hold a group of 8


@pytest.mark.parametrize("stage", ["sft", "grpo"])
def test_halve_batch_on_oom_flag_reaches_training(stage, sft_train_file, monkeypatch):
    module = sft if stage == "sft" else grpo
    seen = {}
    monkeypatch.setattr(module, f"train_{stage}", lambda *a, **k: seen.update(k) or TrainingResult("completed", None, {}))
    assert module.main(["--config", "fast_test", "--train-data", str(sft_train_file), "--halve-batch-on-oom"]) == 0
    assert seen["halve_batch_on_oom"] is True
    assert module.main(["--config", "fast_test", "--train-data", str(sft_train_file)]) == 0
    assert seen["halve_batch_on_oom"] is False


# ----------------------------------------------------------------------------- 6. parameters
@pytest.mark.parametrize("stage, flags, name", [
    ("sft", ["--learning-rat", "1e-4"], "--learning-rat"),
    ("sft", ["--lr=-1e-4"], "lr: must be > 0"),
    ("sft", ["--batch-size", "0"], "batch_size: must be > 0"),
    ("sft", ["--batch-size", "many"], "batch_size: expected a number"),
    ("sft", ["--output-dir", "/tmp/not-under-output"], "output_dir:"),
    ("sft", ["--resume", "/tmp/other_run/checkpoint-2", "--output-dir", "{out}/sft_x"], "resume:"),
    ("grpo", ["--num-samples", "0"], "num_generations: must be > 0"),
    ("grpo", ["--temperature=-1"], "temperature: must be > 0"),
])
def test_cli_refuses_bad_parameters_by_name_before_any_work(stage, flags, name, sft_train_file, workbook_output):
    flags = [f.format(out=workbook_output) for f in flags]
    start = time.time()
    proc = subprocess.run([sys.executable, "-m", f"helpers.{stage}", "--config", "fast_test", "--model-name",
                           "/no/such/model", "--train-data", str(sft_train_file), *flags],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    elapsed = time.time() - start
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1 and name in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and list(workbook_output.iterdir()) == []
    assert elapsed < 30, f"took {elapsed:.1f} s: the check must come before any model loads"


@pytest.mark.parametrize("overrides, words", [
    ({"learning_rat": 1e-4}, "unknown parameter(s) learning_rat"),
    ({"lr": -1e-4}, "lr: must be > 0"),
    ({"batch_size": 0}, "batch_size: must be > 0"),
    ({"batch_size": "4"}, "batch_size: expected an integer"),
])
def test_resolve_names_the_bad_parameter(cpu, overrides, words):
    with pytest.raises((ValueError, TypeError)) as err:
        config.resolve("default", "sft", device=cpu, **overrides)
    assert str(err.value).startswith(words)


def test_notebook_unknown_parameter_is_refused_before_running(monkeypatch):
    import papermill

    from helpers.notebooks import list_notebooks, run_notebook

    def never(*a, **k):
        raise AssertionError("the notebook was executed")

    monkeypatch.setattr(papermill, "execute_notebook", never)
    (nb,) = [p for p in list_notebooks() if p.name.startswith("02")]
    with pytest.raises(ValueError, match=r"02_sft_train.ipynb: unknown parameter\(s\) LEARNING_RAT"):
        run_notebook(nb, {"PRESET": "fast_test", "LEARNING_RAT": 1e-4})


def test_output_dir_outside_output_is_refused_by_train_sft(tiny_model_dir, sft_train_file, workbook_output,
                                                           tmp_path):
    with pytest.raises(ValueError, match="^output_dir: .* is outside"):
        sft.train_sft(sft_settings(tiny_model_dir), sft_train_file, output_dir=tmp_path / "elsewhere")
    assert not (tmp_path / "elsewhere").exists()


# ----------------------------------------------------------------------------- 7. data files
BAD_ROWS = st.one_of(
    st.fixed_dictionaries({"question": st.text(max_size=20)}),  # no answer
    st.fixed_dictionaries({"question": st.text(min_size=1, max_size=20), "answer": st.integers()}),
    st.fixed_dictionaries({"question": st.just(""), "answer": st.text(min_size=1, max_size=20)}),
    st.none(), st.integers(), st.lists(st.text(max_size=3), max_size=2),
)
GOOD_ROW = {"question": "What is a random variable?", "answer": "A function from outcomes to numbers."}


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bad=BAD_ROWS, position=st.integers(0, 3), target=st.sampled_from(["train.json", "val.json"]))
def test_invalid_new_data_never_overwrites_training_files(tmp_path_factory, bad, position, target):
    folder = tmp_path_factory.mktemp("files")
    data.write_training_files(folder, {"train.json": [GOOD_ROW], "val.json": [GOOD_ROW]})
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    new = {"train.json": [{"question": "New?", "answer": "new"}] * 3, "val.json": [{"question": "V?", "answer": "v"}]}
    rows = list(new[target])
    rows.insert(min(position, len(rows)), bad)
    new[target] = rows
    with pytest.raises(data.DataError, match=target):
        data.write_training_files(folder, new)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # same files, same bytes, no temp files


# ----------------------------------------------------------------------------- 8. safety
def test_pickle_only_model_folder_is_refused(tiny_model_dir, tmp_path, monkeypatch):
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_model_dir, folder, ignore=shutil.ignore_patterns("*.safetensors"))
    model = models.load_base_model(str(tiny_model_dir))
    try:
        model.save_pretrained(folder, safe_serialization=False)
    except TypeError:
        pass
    if not (folder / "pytorch_model.bin").is_file():  # transformers 5 always writes safetensors
        (folder / "model.safetensors").unlink(missing_ok=True)
        torch.save(model.state_dict(), folder / "pytorch_model.bin")
    assert not list(folder.glob("*.safetensors"))

    def no_unpickling(*a, **k):
        raise AssertionError("a pickle file was loaded")

    monkeypatch.setattr(torch, "load", no_unpickling)
    with pytest.raises(models.ModelLoadError, match=r"model_name: .*pytorch_model\.bin.*safetensors only"):
        models.load_base_model(str(folder))

    adapter_dir = tmp_path / "pickled_adapter"
    adapter_dir.mkdir()
    (adapter_dir / "adapter_config.json").write_text("{}")
    (adapter_dir / "adapter_model.bin").write_bytes(b"not looked at")
    with pytest.raises(models.ModelLoadError, match=r"adapter: .*adapter_model\.bin.*safetensors only"):
        models.load_adapter(model, adapter_dir)


def test_remote_code_is_off_unless_asked_for(tiny_model_dir, sft_train_file, workbook_output, monkeypatch):
    import transformers

    seen = []
    for cls in (transformers.AutoModelForCausalLM, transformers.AutoTokenizer):
        real = cls.from_pretrained

        def spy(*args, _real=real, _cls=cls.__name__, **kwargs):
            seen.append((_cls, kwargs.get("trust_remote_code"), kwargs.get("use_safetensors")))
            return _real(*args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", spy)
    sft.train_sft(sft_settings(tiny_model_dir), sft_train_file, dry_run=True)
    assert ("AutoModelForCausalLM", False, True) in seen and ("AutoTokenizer", False, None) in seen
    assert all(trust is False for _, trust, _ in seen), seen
    seen.clear()
    models.load_base_model(str(tiny_model_dir), trust_remote_code=True)
    models.load_tokenizer(str(tiny_model_dir), trust_remote_code=True)
    assert seen == [("AutoModelForCausalLM", True, True), ("AutoTokenizer", True, None)]


def test_resume_only_from_the_runs_own_checkpoints(tiny_model_dir, sft_train_file, sft_reference, workbook_output,
                                                   monkeypatch):
    def no_model(*a, **k):
        raise AssertionError("the model was loaded before the resume check")

    monkeypatch.setattr(models, "load_base_model", no_model)
    other = sft_reference / "checkpoint-8"
    with pytest.raises(ValueError, match=r"^resume: .*checkpoint-8 is not a checkpoint of this run"):
        sft.train_sft(sft_settings(tiny_model_dir), sft_train_file, output_dir=workbook_output / "sft_new",
                      resume=str(other))
    with pytest.raises(ValueError, match="^resume: give output_dir"):
        sft.train_sft(sft_settings(tiny_model_dir), sft_train_file, resume="latest")
    with pytest.raises(ValueError, match="^resume: "):
        grpo.train_grpo(grpo_settings(tiny_model_dir), sft_train_file, resume=str(other))


# ----------------------------------------------------------------------------- 9. reproducibility
def test_same_seed_and_data_give_the_same_split_files(tmp_path):
    rows = [{"question": f"What is {a} times {b}?", "answer": f"{a * b}", "family": f"f{a % 3}"}
            for a in range(1, 13) for b in range(1, 6)]
    hashes = []
    for attempt in ("a", "b"):
        train, val = data.split_rows(rows, 0.2, seed=7)
        written = data.write_training_files(tmp_path / attempt, {"train.json": train, "val.json": val})
        hashes.append([w["sha256"] for w in written])
    assert hashes[0] == hashes[1]
    other_train, _ = data.split_rows(rows, 0.2, seed=8)
    assert other_train != data.split_rows(rows, 0.2, seed=7)[0]


def test_same_seed_gives_the_same_loss_at_step_3(tiny_model_dir, sft_train_file, sft_reference, workbook_output):
    """A second run with the same seed and data: the same data hashes in run.json and the same loss at
    step 3 in training_log.txt, to the last printed digit."""
    again = sft.train_sft(sft_settings(tiny_model_dir, max_steps=3, save_steps=10), sft_train_file,
                          output_dir=workbook_output / "sft_again")
    assert read_run(again.run.root)["data_files"] == read_run(sft_reference)["data_files"]
    assert read_run(sft_reference)["data_files"]["train"]["sha256"] == sha256_file(sft_train_file)

    def cells(run):
        lines = (Path(run) / "training_log.txt").read_text().splitlines()
        header = lines[0].split("\t")
        return {ln.split("\t")[0]: ln.split("\t")[header.index("loss")] for ln in lines[1:] if not ln.startswith("#")}

    assert cells(again.run.root)["3"] == cells(sft_reference)["3"]
    assert cells(again.run.root)["1"] == cells(sft_reference)["1"]
