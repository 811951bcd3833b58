"""Data in the formats people have: GSM8K, MATH, CSV and Hugging Face datasets (helpers.data, 01_data_prep).

Each format has a small fixture written here, bad rows included; every bad row is reported with its number
(line for JSONL, row otherwise), the field and the reason, and nothing is written when loading fails.
"""

from __future__ import annotations

import json
from fractions import Fraction

import pytest

from helpers import data
from helpers.__main__ import main as cli
from helpers.answers import answers_equal, extract_final_answer, parse_exact_number
from helpers.data import DataError, load_hf_dataset, load_qa_file, load_qa_files


def write_jsonl(path, rows):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


GSM8K_ROWS = [
    {"question": "Natalia sold clips to 48 friends in April, and half as many in May. How many in all?",
     "answer": "In May she sold 48/2 = <<48/2=24>>24 clips.\nIn all she sold 48+24 = <<48+24=72>>72 clips.\n#### 72"},
    {"question": "A farm has 1,200 hens and buys 300 more. How many hens?",
     "answer": "1,200 + 300 = <<1200+300=1500>>1,500\n#### 1,500"},
    {"question": "No final line here.", "answer": "It is 5."},                      # line 3: no ####
    {"question": "Words, not a number.", "answer": "So five.\n#### five"},           # line 4: not a number
    {"question": "Text after the answer.", "answer": "2+2=4\n#### 4\nThanks!"},      # line 5: text after
    {"question": "An integer answer.", "answer": 42},                                # line 6: wrong type
    '{"question": "broken',                                                          # line 7: broken JSON
    {"question": "Negative and decimal.", "answer": "3 - 4.5 = <<3-4.5=-1.5>>-1.5\n#### -1.5"},
]


def test_gsm8k_becomes_worked_solution_with_exact_answer(tmp_path):
    result = load_qa_file(write_jsonl(tmp_path / "gsm8k.jsonl", GSM8K_ROWS), style="gsm8k")
    first, second, last = result.rows
    assert first["answer"] == "In May she sold 48/2 = 24 clips.\nIn all she sold 48+24 = 72 clips.\nAnswer: 72"
    assert first["final_answer"] == "72" and second["final_answer"] == "1500" and last["final_answer"] == "-3/2"
    assert last["answer"].endswith("Answer: -3/2")
    for row in result.rows:  # the workbook's own scorer reads the converted answers back exactly
        assert answers_equal(extract_final_answer(row["answer"]), row["final_answer"])
        assert "<<" not in row["answer"] and "####" not in row["answer"]
    reasons = {b.row: b.reason for b in result.bad_rows}
    assert sorted(reasons) == [3, 4, 5, 6, 7]
    assert reasons[3] == "no final answer: no line '#### <value>'"
    assert reasons[4] == "final answer is not a number: 'five'"
    assert reasons[5] == "no final answer: text after the '#### <value>' line"
    assert reasons[6] == "wrong type: answer is int, expected text"
    assert reasons[7].startswith("broken JSON")
    assert result.reasons() == {"no final answer": 2, "final answer is not a number": 1, "wrong type": 1,
                                "broken JSON": 1}


def test_gsm8k_calculator_annotations_kept_on_request(tmp_path):
    result = load_qa_file(write_jsonl(tmp_path / "g.jsonl", GSM8K_ROWS[:1]), style="gsm8k", keep_calculator=True)
    assert "48/2 = <<48/2=24>>24 clips." in result.rows[0]["answer"]


def test_gsm8k_raise_names_rows_and_writes_nothing(tmp_path):
    path = write_jsonl(tmp_path / "g.jsonl", GSM8K_ROWS)
    with pytest.raises(DataError, match=r"5 bad line\(s\): line 3: no final answer"):
        load_qa_file(path, on_bad_rows="raise", style="gsm8k")
    out = tmp_path / "out" / "converted.json"
    assert cli(["data", str(path), "--format", "gsm8k", "--on-bad-rows", "raise", "--out", str(out)]) == 2
    assert not out.parent.exists()


MATH_ROWS = [
    {"problem": "A bag has 3 red and 5 blue marbles. P(red)?", "solution": "There are 8 marbles, so $P = \\boxed{\\frac{3}{8}}$.",
     "level": "Level 1", "type": "Counting & Probability"},
    {"problem": "Compute $\\{1,2\\}$ size times 6.", "solution": "The set $\\{1, 2\\}$ has 2 elements; $2 \\cdot 6 = \\boxed{12}$.",
     "level": "Level 2", "type": "Prealgebra"},
    {"problem": "Side of a square of area 2?", "solution": "$s = \\boxed{\\sqrt{2}}$.", "level": "Level 1", "type": "Algebra"},
    {"problem": "No box.", "solution": "The answer is 7.", "level": "Level 1", "type": "Algebra"},
    {"problem": "Given answer agrees.", "solution": "So $\\boxed{0.5}$.", "final_answer": "1/2"},
    {"problem": "Given answer disagrees.", "solution": "So $\\boxed{4}$.", "final_answer": "3"},
    {"problem": "Only a final_answer column.", "solution": "Half of 30 is 15.", "final_answer": 15},
    {"question": "Wrong field names.", "answer": "\\boxed{1}"},
]


def test_math_boxed_and_final_answer_column(tmp_path):
    result = load_qa_file(write_jsonl(tmp_path / "math.jsonl", MATH_ROWS), style="math")
    by_q = {r["question"]: r for r in result.rows}
    assert len(result.rows) == 4
    marbles = by_q["A bag has 3 red and 5 blue marbles. P(red)?"]
    assert marbles["answer"] == "There are 8 marbles, so $P = \\frac{3}{8}$.\nAnswer: 3/8"
    assert marbles["final_answer"] == "3/8" and marbles["level"] == "Level 1"  # other columns kept
    assert by_q["Compute $\\{1,2\\}$ size times 6."]["final_answer"] == "12"   # nested braces
    assert by_q["Given answer agrees."]["final_answer"] == "1/2"
    assert by_q["Only a final_answer column."]["answer"] == "Half of 30 is 15.\nAnswer: 15"
    reasons = {b.row: b.reason for b in result.bad_rows}
    assert reasons == {
        3: "final answer is not a number: '\\\\sqrt{2}'",
        4: "no final answer: no \\boxed{...} in the solution and no final_answer field",
        6: "final answers disagree: final_answer 3, \\boxed{4}",
        8: "missing field: problem; missing field: solution",
    }


CSV_TEXT = (
    "question,answer,source\n"
    "What is 2 + 3?,\"2 + 3 = 5\nAnswer: 5\",hand-written\n"
    "What is a sample space?,The set of all outcomes of an experiment.,\n"
    "An empty answer?,,notes\n"
    "\n"
    "Too many fields,a,b,c\n"
    "\"A comma, inside quotes?\",\"Yes, it is kept.\",notes\n"
)


def test_csv_with_question_answer_header(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text(CSV_TEXT)
    result = load_qa_file(path)
    assert [r["question"] for r in result.rows] == ["What is 2 + 3?", "What is a sample space?",
                                                   "A comma, inside quotes?"]
    assert result.rows[0] == {"question": "What is 2 + 3?", "answer": "2 + 3 = 5\nAnswer: 5", "source": "hand-written"}
    assert "source" not in result.rows[1]  # an empty optional cell is absent, not ""
    assert [(b.row, b.reason) for b in result.bad_rows] == [
        (3, "empty field: answer"), (5, "wrong number of fields: 4, the header has 3")]


def test_csv_header_must_name_the_columns(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("q,a\nWhat?,That.\n")
    with pytest.raises(DataError, match=r"no column 'question', 'answer' in the header \(q, a\)"):
        load_qa_file(path)
    assert load_qa_file(path, question_field="q", answer_field="a").rows == [{"question": "What?", "answer": "That."}]


def test_csv_in_gsm8k_style_with_mapped_fields(tmp_path):
    path = tmp_path / "g.csv"
    path.write_text("prompt,target\n\"Add 2 and 2.\",\"2+2=<<2+2=4>>4\n#### 4\"\n\"Bad.\",\"\"\n")
    result = load_qa_file(path, style="gsm8k", question_field="prompt", answer_field="target")
    assert result.rows == [{"question": "Add 2 and 2.", "answer": "2+2=4\nAnswer: 4", "final_answer": "4"}]
    assert [(b.row, b.reason) for b in result.bad_rows] == [(2, "empty field: target")]


def saved_dataset(tmp_path, rows, splits=None):
    from datasets import Dataset, DatasetDict

    folder = tmp_path / "saved"
    if splits:
        DatasetDict({name: Dataset.from_list(r) for name, r in splits.items()}).save_to_disk(str(folder))
    else:
        Dataset.from_list(rows).save_to_disk(str(folder))
    return folder


HF_ROWS = [
    {"query": "What is 6 x 7?", "response": "6 x 7 = 42\n#### 42", "id": 1},
    {"query": "Empty response.", "response": "", "id": 2},
    {"query": "No final line.", "response": "It is 3.", "id": 3},
]


def test_saved_dataset_folder_with_field_mapping(tmp_path):
    folder = saved_dataset(tmp_path, HF_ROWS)
    result = load_qa_file(folder, style="gsm8k", question_field="query", answer_field="response")
    assert result.rows == [{"question": "What is 6 x 7?", "answer": "6 x 7 = 42\nAnswer: 42", "final_answer": "42",
                            "id": 1}]
    assert [(b.row, b.reason) for b in result.bad_rows] == [
        (2, "empty field: response"), (3, "no final answer: no line '#### <value>'")]
    both = load_qa_files([folder], style="gsm8k", question_field="query", answer_field="response")
    assert both.rows[0]["origin"] == "saved"


def test_saved_dataset_dict_splits(tmp_path):
    train = [{"question": "Train q?", "answer": "Train a."}]
    test = [{"question": "Test q?", "answer": "Test a."}]
    folder = saved_dataset(tmp_path, None, {"train": train, "test": test})
    assert load_qa_file(folder).rows == train
    assert load_hf_dataset(str(folder), split="test").rows == test
    with pytest.raises(DataError, match="no split 'validation'; its splits: train, test"):
        load_qa_file(folder, split="validation")


def test_plain_folder_is_still_refused(tmp_path):
    with pytest.raises(DataError, match="is a folder, expected a .json, .jsonl or .csv file"):
        load_qa_file(tmp_path)


def test_hub_dataset_through_load_dataset(monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(name, config=None, split=None):
        calls.append((name, config, split))
        return datasets.Dataset.from_list(HF_ROWS)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    result = load_hf_dataset("someone/gsm8k-like", split="train", config="main", style="gsm8k",
                             question_field="query", answer_field="response")
    assert calls == [("someone/gsm8k-like", "main", "train")]
    assert [r["final_answer"] for r in result.rows] == ["42"] and len(result.bad_rows) == 2


def test_hub_unreachable_is_a_data_error(monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach the Hugging Face Hub")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError, match=r"openai/gsm8k: could not load it from the Hugging Face hub .*save_to_disk"):
        load_hf_dataset("openai/gsm8k", config="main")
    with pytest.raises(DataError, match="not a hub id"):
        load_hf_dataset("./no/such/folder")


def test_bad_style_and_fields():
    with pytest.raises(ValueError, match="style: must be one of qa, gsm8k, math"):
        load_qa_file("x.json", style="alpaca")
    with pytest.raises(ValueError, match="both 'text'"):
        load_qa_file("x.json", question_field="text", answer_field="text")


def test_cli_converts_and_reports(tmp_path, capsys):
    src = write_jsonl(tmp_path / "gsm8k.jsonl", GSM8K_ROWS)
    out = tmp_path / "converted.json"
    assert cli(["data", str(src), "--format", "gsm8k", "--out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows_read"] == 8 and report["rows_kept"] == 3
    assert report["dropped_by_reason"]["no final answer"] == 2
    written = load_qa_file(out)  # the written file is a plain workbook QA file
    assert [r["final_answer"] for r in written.rows] == ["72", "1500", "-3/2"]
    assert cli(["data", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "x.json")]) == 2
    assert "error: " in capsys.readouterr().err and not (tmp_path / "x.json").exists()


@pytest.mark.parametrize("text, value", [
    ("42", Fraction(42)), ("-3", Fraction(-3)), ("1,000", Fraction(1000)), ("0.375", Fraction(3, 8)),
    ("3/8", Fraction(3, 8)), ("\\frac{3}{8}", Fraction(3, 8)), ("-\\dfrac{1}{2}", Fraction(-1, 2)),
    ("\\frac38", Fraction(3, 8)), ("$5", Fraction(5)), ("25\\%", Fraction(1, 4)), ("1{,}000", Fraction(1000)),
    ("7.", Fraction(7)), (12, Fraction(12)),
    ("5 apples", None), ("\\sqrt{2}", None), ("x = 5", None), ("(1, 2)", None), ("1,00", None), ("3/0", None),
    ("", None), ("2^3", None), (None, None), (True, None),
])
def test_parse_exact_number(text, value):
    assert parse_exact_number(text) == value


def test_real_size_gsm8k_file_loads_in_seconds(tmp_path):
    """7,000 GSM8K-style rows made from the generator's problems load in well under a minute."""
    import time

    from helpers.problems import generate_problems

    rows = []
    for p in generate_problems(7000, seed=3):
        *steps, _ = p["answer"].splitlines()
        rows.append({"question": p["question"], "answer": "\n".join(steps + [f"#### {p['final_answer']}"])})
    path = write_jsonl(tmp_path / "big.jsonl", rows)
    start = time.perf_counter()
    result = load_qa_file(path, style="gsm8k")
    assert time.perf_counter() - start < 30
    assert len(result.rows) == 7000 and not result.bad_rows
    assert all(answers_equal(r["final_answer"], src["answer"].rsplit("#### ", 1)[1]) for r, src in zip(result.rows, rows))
