"""Replay rows: the base model's own right answers, added to SFT training only, never a held-out question."""

from __future__ import annotations

import json

import pytest

from helpers import replay
from helpers.answers import extract_final_answer
from helpers.data import leakage_check, transfer_leaks
from helpers.transfer import transfer_set


def test_a_numeric_replay_row_ends_in_the_answer_line_once():
    record = {"question": "What is 4 x 18?", "final_answer": "72", "family": "arithmetic", "difficulty": "easy"}
    row = replay.replay_row(record, "  4 x 18 = 72, so there are 72 in total.\n")
    assert row["answer"] == "4 x 18 = 72, so there are 72 in total.\nAnswer: 72"
    assert extract_final_answer(row["answer"]) == "72" and row["origin"] == "replay"
    assert row["family"] == "arithmetic" and row["final_answer"] == "72"
    again = replay.replay_row(record, "4 x 18 = 72.\nAnswer: 72")
    assert again["answer"].count("Answer:") == 1


def test_a_concept_replay_row_keeps_the_answer_as_written():
    row = replay.replay_row({"question": "What is a sample space?", "topic": "t"}, "The set of all outcomes.")
    assert row == {"question": "What is a sample space?", "answer": "The set of all outcomes.", "origin": "replay",
                   "topic": "t"}


def _files():
    return {"sft_train.json": [{"question": "What is 12 + 30?", "answer": "42\nAnswer: 42", "final_answer": "42"}],
            "sft_val.json": [{"question": "What is 7 times 6?", "answer": "42\nAnswer: 42", "final_answer": "42"}],
            "grpo_train.json": [], "grpo_val.json": []}


def test_replay_goes_to_sft_training_only_and_never_repeats_a_question():
    rows = [{"question": "What is 7 times 6 ?", "answer": "7 x 6 = 42\nAnswer: 42", "final_answer": "42"},  # val
            {"question": "what is 12 + 30", "answer": "12 + 30 = 42\nAnswer: 42", "final_answer": "42"},  # train
            {"question": "What is 9 times 8?", "answer": "9 x 8 = 72\nAnswer: 72", "final_answer": "72"},
            {"question": "Define an event.", "answer": "A subset of the sample space."}]
    files, report = replay.add_replay(_files(), rows, copies=2)
    added = files["sft_train.json"][1:]
    assert [r["question"] for r in added] == ["What is 9 times 8?", "Define an event."] * 2
    assert files["sft_val.json"] == _files()["sft_val.json"]
    assert not leakage_check(files["sft_train.json"], files["sft_val.json"])
    assert report == {"replay_rows": 4, "kept": 2, "numeric": 1, "concept": 1, "dropped_as_duplicates": 2,
                      "copies": 2, "added_to_sft_train": 4}
    none, report = replay.add_replay(_files(), rows, copies=0)
    assert none == _files() and report["added_to_sft_train"] == 0


def test_replay_refuses_a_transfer_question_and_bad_copies():
    leak = dict(transfer_set()[0], answer="x\nAnswer: 1")
    with pytest.raises(ValueError, match="transfer question"):
        replay.add_replay(_files(), [leak])
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="REPLAY_COPIES"):
            replay.add_replay(_files(), [], copies=bad)


def test_load_replay_rows_refuses_another_base_model(tmp_path):
    path = tmp_path / "replay.json"
    path.write_text(json.dumps({"model": "embedded", "rows": [{"question": "q", "answer": "a"}]}))
    assert replay.load_replay_rows("embedded", path) == [{"question": "q", "answer": "a"}]
    with pytest.raises(FileNotFoundError, match="python -m helpers replay --model-name other/model"):
        replay.load_replay_rows("other/model", path)
    with pytest.raises(FileNotFoundError, match="no replay set"):
        replay.load_replay_rows("embedded", tmp_path / "missing.json")


def test_replay_candidates_are_new_training_style_questions():
    candidates = replay.replay_candidates(n_generated=40, n_concept=10)
    generated = [c for c in candidates if c.get("final_answer")]
    assert len(generated) == 40 and {c["family"] for c in generated} == set(replay.REPLAY_FAMILIES)
    assert all(c["difficulty"] == "easy" for c in generated)
    val = json.loads((replay.REPLAY_FILE.parent / "training_data" / "sft_val.json").read_text())
    assert len(candidates) == 50 and not {c["question"] for c in candidates} & {r["question"] for r in val}
    assert not transfer_leaks(candidates)


def test_the_committed_replay_set_is_the_embedded_models_right_answers():
    data = json.loads(replay.REPLAY_FILE.read_text())
    assert data["model"] == "embedded" and data["kept"] == len(data["rows"]) > 0
    assert data["kept"] == sum(f["kept"] for f in data["by_family"].values())
    for row in data["rows"]:
        assert row["origin"] == "replay" and row["question"] and row["answer"]
        if row.get("final_answer"):
            assert extract_final_answer(row["answer"]) is not None
    assert not transfer_leaks(data["rows"])


@pytest.mark.parametrize("text, answer, shown", [
    ("Tariq has 3 x 9 = 27 apples.", "27", True),
    ("6 * $10 = $60.\nAnswer: 60", "60", True),
    ("(12 / 60) * 100\n= 0.2 * 100\n= 20%.", "1/5", True),  # a chain: the step that goes on is skipped
    ("1,000 + 5 = 1,005, so", "1005", True),
    ("(2/12) + (1/4) = 3/12. So the answer is 1/4.", "1/4", False),  # a false step on the way
    ("68 - 56 = 12 metres, and 12 - 68 = 12.", "12", False),
    ("10% of 120 is 12.", "12", False),  # stated, not worked
    ("2 * 33 = 66 pages.", "67", False),  # worked, to another answer
])
def test_only_answers_reached_by_true_arithmetic_are_replayed(text, answer, shown):
    assert replay.shows_its_working(text, answer) is shown
