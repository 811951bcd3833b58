"""The command line reads like one: a user error is one line ``error: ...``, exit status 2, nothing written.

One test per kind of user error, each before any model loads (seconds, no torch); tests/test_reliability.py
checks the same for every bad parameter flag.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers.models import REPO_ROOT


def _run(module: str, *args, out) -> subprocess.CompletedProcess:
    env = {"WORKBOOK_OUTPUT": str(out), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=120, env=env)


def _assert_user_error(proc, *words, out):
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr and all(w in proc.stderr for w in words), proc.stderr
    assert proc.stdout == "" and list(out.iterdir()) == [], "a user error wrote something"


@pytest.fixture
def out(tmp_path):
    folder = tmp_path / "output"
    folder.mkdir()
    return folder


def test_bad_data_names_the_file_and_where(tmp_path, out):
    bad = tmp_path / "bad.json"
    bad.write_text('[{"question": "What is 1 + 1?", "answer": "2"}, {"question": ')
    proc = _run("helpers.sft", "--config", "fast_test", "--train-data", str(bad), out=out)
    _assert_user_error(proc, "bad.json", "line 1", out=out)


def test_missing_data_file_names_it(tmp_path, out):
    proc = _run("helpers.grpo", "--config", "fast_test", "--train-data", str(tmp_path / "missing.json"), out=out)
    _assert_user_error(proc, "missing.json", out=out)


def test_missing_sft_model_folder_names_the_parameter(tmp_path, out):
    data = tmp_path / "train.json"
    data.write_text(json.dumps([{"question": "What is 1 + 1?", "answer": "1 + 1 = 2.\nAnswer: 2",
                                 "final_answer": "2"}]))
    proc = _run("helpers.grpo", "--config", "from_sft", "--sft-model", str(tmp_path / "no_run"),
                "--train-data", str(data), out=out)
    _assert_user_error(proc, "sft_model", "no_run", out=out)


def test_bad_parameter_names_it(tmp_path, out):
    proc = _run("helpers.sft", "--config", "fast_test", "--train-data", "x.json", "--lora-dropout", "1.5", out=out)
    _assert_user_error(proc, "lora_dropout", out=out)


def test_unknown_preset_for_the_notebooks_names_it(out):
    proc = _run("helpers", "notebooks", "--preset", "fastest", out=out)
    _assert_user_error(proc, "--preset", "fastest", out=out)


@pytest.mark.parametrize("args, words", [
    (("--n-generated", "-1"), ("--n-generated",)),
    (("--n-generated", "0"), ("not both 0",)),
    (("--max-new-tokens", "0"), ("--max-new-tokens",)),
])
def test_bad_replay_counts_name_the_flag(args, words, out):
    before = (REPO_ROOT / "data" / "replay_set.json").read_bytes()
    proc = _run("helpers", "replay", *args, out=out)
    _assert_user_error(proc, *words, out=out)
    assert (REPO_ROOT / "data" / "replay_set.json").read_bytes() == before  # the stored set is untouched


def test_replay_for_a_model_that_cannot_load_names_it(out):
    before = (REPO_ROOT / "data" / "replay_set.json").read_bytes()
    proc = _run("helpers", "replay", "--model-name", "no-such-org/no-such-model", "--n-generated", "2", out=out)
    _assert_user_error(proc, "no-such-org/no-such-model", out=out)
    assert (REPO_ROOT / "data" / "replay_set.json").read_bytes() == before


def test_headroom_user_errors_name_the_parameter(tmp_path, out):
    proc = _run("helpers", "headroom", "--prompts", "0", out=out)
    _assert_user_error(proc, "--prompts", out=out)
    proc = _run("helpers", "headroom", "--sft-model", str(tmp_path / "no_run"), out=out)
    _assert_user_error(proc, "sft_model", "no_run", out=out)
    proc = _run("helpers", "headroom", "--record-in", str(tmp_path / "no_grpo_run"), out=out)
    _assert_user_error(proc, "--record-in", "no_grpo_run", out=out)
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    bad = tmp_path / "prompts.json"
    bad.write_text('[{"question": "What is 1 + 1?", "final_answer": "2"}, {"question": ')
    proc = _run("helpers", "headroom", "--sft-model", str(adapter), "--train-data", str(bad), out=out)
    _assert_user_error(proc, "--train-data", "prompts.json", "line 1", out=out)
    bad.write_text(json.dumps([{"question": "What is a sample space?", "answer": "All outcomes."}]))
    proc = _run("helpers", "headroom", "--sft-model", str(adapter), "--train-data", str(bad), out=out)
    _assert_user_error(proc, "--train-data", "final_answer", out=out)
