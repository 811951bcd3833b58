"""Tests for helpers/data.py: loading and checking, cleaning, splitting, atomic writes."""

from __future__ import annotations

import json
import os
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import data
from helpers.data import (
    BadRow,
    CleanResult,
    DataError,
    LoadResult,
    clean_rows,
    file_sha256,
    leakage_check,
    leakage_report,
    load_qa_file,
    load_qa_files,
    normalize_whitespace,
    question_key,
    split_rows,
    summarize,
    write_json_atomic,
    write_training_files,
)

GOOD = {"question": "What is conditional probability?",
        "answer": "P(A|B) = P(A ∩ B) / P(B), where P(B) > 0.",
        "source": "Leon-Garcia Chapter 2.4"}


def write_json(path, value):
    path.write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")
    return path


def write_jsonl(path, lines):
    path.write_bytes(b"\n".join(l if isinstance(l, bytes) else l.encode("utf-8") for l in lines) + b"\n")
    return path


def row(q="What is a random variable?", a="A function from outcomes to numbers.", **extra):
    return {"question": q, "answer": a, **extra}


# --------------------------------------------------------------------------- loading: good files


def test_load_json_list(tmp_path):
    p = write_json(tmp_path / "qa.json", [GOOD, row(topic="rv", extra=[1, 2])])
    result = load_qa_file(p)
    assert isinstance(result, LoadResult)
    assert result.rows == [GOOD, row(topic="rv", extra=[1, 2])]  # extra fields kept
    assert result.bad_rows == [] and result.table() == []
    assert result.counts() == {"file": str(p), "rows": 2, "bad_rows": 0}


def test_load_jsonl_by_extension_and_by_content(tmp_path):
    lines = [json.dumps(GOOD), "", "   ", json.dumps(row())]
    for name in ("qa.jsonl", "qa.txt", "qa.json"):
        p = write_jsonl(tmp_path / name, lines)
        assert load_qa_file(p).rows == [GOOD, row()], name


def test_bom_and_crlf_accepted(tmp_path):
    p = tmp_path / "qa.jsonl"
    p.write_bytes(b"\xef\xbb\xbf" + json.dumps(GOOD).encode() + b"\r\n" + json.dumps(row()).encode() + b"\r\n")
    assert load_qa_file(p).rows == [GOOD, row()]


def test_null_source_is_dropped_key(tmp_path):
    p = write_json(tmp_path / "qa.json", [row(source=None)])
    result = load_qa_file(p)
    assert result.rows == [row()] and "source" not in result.rows[0]
    assert result.bad_rows == []


# --------------------------------------------------------------------------- loading: bad rows


@pytest.mark.parametrize(
    "bad, reason",
    [
        ({"answer": "x"}, "missing field: question"),
        ({"question": "q"}, "missing field: answer"),
        ({"question": "   ", "answer": "x"}, "empty field: question"),
        ({"question": "q", "answer": ""}, "empty field: answer"),
        ({"question": "q", "answer": 42}, "wrong type: answer is int, expected text"),
        ({"question": "q", "answer": 0.5}, "wrong type: answer is float, expected text"),
        ({"question": ["q"], "answer": "x"}, "wrong type: question is list, expected text"),
        ({"question": "q", "answer": None}, "wrong type: answer is null, expected text"),
        ({"question": "q", "answer": "x", "source": 3}, "wrong type: source is int, expected text"),
        ("just a string", "not an object (got text)"),
        ([1, 2], "not an object (got list)"),
        ({"question": "q\ud800", "answer": "x"}, "unpaired surrogate"),
    ],
)
@pytest.mark.parametrize("ext", ["json", "jsonl"])
def test_each_bad_row_kind_reported_by_number(tmp_path, bad, reason, ext):
    rows = [GOOD, bad, row()]
    if ext == "json":
        p = tmp_path / "qa.json"
        p.write_text(json.dumps(rows), encoding="utf-8")  # ensure_ascii keeps \ud800 as an escape
    else:
        p = write_jsonl(tmp_path / "qa.jsonl", [json.dumps(r) for r in rows])
    result = load_qa_file(p)
    assert result.rows == [GOOD, row()]
    assert len(result.bad_rows) == 1
    b = result.bad_rows[0]
    assert isinstance(b, BadRow) and b.row == 2 and reason in b.reason
    assert result.table()[0]["row"] == 2 and result.table()[0]["file"] == str(p)


def test_several_problems_in_one_row_are_all_named(tmp_path):
    p = write_json(tmp_path / "qa.json", [GOOD, {"answer": 7}])
    reason = load_qa_file(p).bad_rows[0].reason
    assert "missing field: question" in reason and "wrong type: answer is int" in reason


def test_mixed_int_and_str_answers_report_exactly_the_int_rows(tmp_path):
    rows = [row(q=f"Question {i}?", a=i if i % 3 == 0 else str(i)) for i in range(1, 11)]
    result = load_qa_file(write_json(tmp_path / "qa.json", rows))
    assert [b.row for b in result.bad_rows] == [3, 6, 9]
    assert all(b.reason == "wrong type: answer is int, expected text" for b in result.bad_rows)
    assert [r["answer"] for r in result.rows] == ["1", "2", "4", "5", "7", "8", "10"]


def test_invalid_utf8_line_in_jsonl_is_a_bad_row(tmp_path):
    p = write_jsonl(tmp_path / "qa.jsonl", [json.dumps(GOOD), b'{"question": "caf\xe9", "answer": "x"}', json.dumps(row())])
    result = load_qa_file(p)
    assert result.rows == [GOOD, row()]
    assert [b.row for b in result.bad_rows] == [2]
    assert "invalid UTF-8" in result.bad_rows[0].reason


def test_broken_jsonl_line_reports_line_number_and_json_error(tmp_path):
    p = write_jsonl(tmp_path / "qa.jsonl", [json.dumps(GOOD), "", '{"question": "q", "answer": ', json.dumps(row())])
    result = load_qa_file(p)
    assert [b.row for b in result.bad_rows] == [3]  # blank line 2 still counts
    assert "broken JSON" in result.bad_rows[0].reason and "column" in result.bad_rows[0].reason


# --------------------------------------------------------------------------- loading: whole-file errors


def test_malformed_json_list_names_line_and_column(tmp_path):
    p = tmp_path / "qa.json"
    p.write_text('[\n  {"question": "q", "answer": "a"},\n  {"question": "q2" "answer": "b"}\n]\n')
    with pytest.raises(DataError, match=r"qa\.json: malformed JSON at line 3, column 21: Expecting ',' delimiter"):
        load_qa_file(p)


def test_invalid_utf8_in_json_list_names_byte_and_line(tmp_path):
    p = tmp_path / "qa.json"
    p.write_bytes(b'[\n{"question": "caf\xe9", "answer": "a"}\n]')
    with pytest.raises(DataError, match=r"invalid UTF-8 at byte 19 \(line 2\)"):
        load_qa_file(p)


@pytest.mark.parametrize("content, match", [
    (json.dumps(GOOD), r"top level is object, expected a list"),
    ("42", r"top level is int"),
    ("", r"file is empty"),
    ("  \n\n\t ", r"file is empty"),
    ("[]", r"no rows"),
])
def test_whole_file_errors(tmp_path, content, match):
    p = tmp_path / "qa.json"
    p.write_text(content)
    with pytest.raises(DataError, match=match) as info:
        load_qa_file(p)
    assert str(p) in str(info.value)


def test_empty_jsonl_is_an_error(tmp_path):
    p = tmp_path / "qa.jsonl"
    p.write_text("\n\n")
    with pytest.raises(DataError, match="file is empty"):
        load_qa_file(p)


def test_directory_and_missing_path(tmp_path):
    with pytest.raises(DataError, match=re.escape(str(tmp_path)) + ".*folder"):
        load_qa_file(tmp_path)
    missing = tmp_path / "nope.json"
    with pytest.raises(DataError, match=re.escape(str(missing)) + ": no such file"):
        load_qa_file(missing)


def test_all_bad_file_raises_and_lists_rows(tmp_path):
    p = write_jsonl(tmp_path / "qa.jsonl", ['{"question": 1, "answer": "a"}', "not json", "[]"])
    with pytest.raises(DataError, match="no valid rows") as info:
        load_qa_file(p)
    msg = str(info.value)
    assert "line 1: wrong type: question is int" in msg and "line 2: broken JSON" in msg and "line 3" in msg


def test_on_bad_rows_raise_lists_the_first_bad_rows(tmp_path):
    rows = [GOOD] + [row(a=i) for i in range(8)]
    p = write_json(tmp_path / "qa.json", rows)
    with pytest.raises(DataError) as info:
        load_qa_file(p, on_bad_rows="raise")
    msg = str(info.value)
    assert str(p) in msg and "8 bad row(s)" in msg
    assert "row 2: wrong type: answer is int" in msg and "row 6:" in msg and "and 3 more" in msg
    assert load_qa_file(write_json(tmp_path / "ok.json", [GOOD]), on_bad_rows="raise").rows == [GOOD]


@pytest.mark.parametrize("value", ["skip", "", None, "DROP", ["drop"]])
def test_bad_on_bad_rows_value(tmp_path, value):
    p = write_json(tmp_path / "qa.json", [GOOD])
    with pytest.raises(ValueError, match="on_bad_rows") as info:
        load_qa_file(p, on_bad_rows=value)
    assert not isinstance(info.value, DataError)
    with pytest.raises(ValueError, match="on_bad_rows"):
        load_qa_files([p], on_bad_rows=value)


def test_load_qa_files_combines_and_records_origin(tmp_path):
    a = write_json(tmp_path / "a.json", [GOOD, {"question": "q"}])
    b = write_jsonl(tmp_path / "b.jsonl", [json.dumps(row()), json.dumps(row(q="Q?", origin="kept"))])
    result = load_qa_files([a, b])
    assert [r["origin"] for r in result.rows] == ["a.json", "b.jsonl", "kept"]
    assert result.table() == [{"file": str(a), "row": 2, "reason": "missing field: answer", "preview": '{"question": "q"}'}]
    assert load_qa_files(a).rows[0]["origin"] == "a.json"
    with pytest.raises(DataError, match="no files"):
        load_qa_files([])


# --------------------------------------------------------------------------- loading: properties


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(payload=st.binary(max_size=300), ext=st.sampled_from(["json", "jsonl"]))
def test_random_bytes_load_or_data_error(tmp_path, payload, ext):
    p = tmp_path / f"fuzz.{ext}"
    p.write_bytes(payload)
    try:
        result = load_qa_file(p)
    except DataError as exc:
        if ext == "jsonl" and payload.strip(b" \t\r\n\xef\xbb\xbf"):
            assert re.search(r"\bline \d+", str(exc)), str(exc)
    else:
        assert isinstance(result, LoadResult) and result.rows
    assert p.read_bytes() == payload  # loading never changes the file


@FUZZ
@given(payload=st.lists(st.binary(max_size=40) | st.sampled_from([
    json.dumps(GOOD).encode(), b'{"question": "q", "answer": 1}', b"{", b"[1]", b"\xff"]), max_size=8))
def test_random_jsonl_lines_report_line_numbers(tmp_path, payload):
    p = tmp_path / "fuzz.jsonl"
    p.write_bytes(b"\n".join(payload))
    try:
        result = load_qa_file(p)
    except DataError as exc:
        assert "file is empty" in str(exc) or re.search(r"\bline \d+", str(exc)), str(exc)
    else:
        n_lines = len(b"\n".join(payload).split(b"\n"))
        assert all(1 <= b.row <= n_lines for b in result.bad_rows)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
row_like = st.dictionaries(
    st.sampled_from(["question", "answer", "source", "family", "x"]) | st.text(max_size=8),
    json_values | st.text(max_size=30),
    max_size=5,
)


@FUZZ
@given(rows=st.lists(row_like | json_values, max_size=8), ext=st.sampled_from(["json", "jsonl"]))
def test_random_json_rows_load_or_data_error(tmp_path, rows, ext):
    p = tmp_path / f"fuzz.{ext}"
    if ext == "json":
        text = json.dumps(rows, ensure_ascii=False)
    else:
        text = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows)
    try:
        payload = text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from st.text(); keep them as escapes
        payload = (json.dumps(rows) if ext == "json" else "\n".join(json.dumps(r) for r in rows)).encode()
    p.write_bytes(payload)
    try:
        result = load_qa_file(p)
    except DataError:
        pass
    else:
        for r in result.rows:
            assert isinstance(r["question"], str) and r["question"].strip()
            assert isinstance(r["answer"], str) and r["answer"].strip()
            assert isinstance(r.get("source", ""), str)
        assert len(result.rows) + len(result.bad_rows) == len(rows)
    assert p.read_bytes() == payload


# --------------------------------------------------------------------------- cleaning


def test_normalize_whitespace_keeps_answer_line_separate():
    text = "  Step 1:   P(A)  =\t1/2 \r\n\r\n\r\n\r\nStep 2:  so \n   Answer:   1/2  \n\n"
    out = normalize_whitespace(text)
    assert out == "Step 1: P(A) = 1/2\n\nStep 2: so\nAnswer: 1/2"
    assert out.splitlines()[-1] == "Answer: 1/2"
    assert normalize_whitespace("a\u00a0\u00a0b") == "a b"


def test_exact_and_near_duplicates_dropped_and_reported():
    rows = [
        row("What is  conditional probability?", "P(A|B) = P(A ∩ B)/P(B)."),          # 0 kept
        row("What is conditional probability?", "P(A|B) = P(A ∩ B)/P(B)."),           # 1 exact dup of 0
        row("what is CONDITIONAL probability", "The probability of A given B."),      # 2 near: same key
        row("A fair die is rolled twice. What is the probability that the sum of the two rolls is 7?", "1/6"),  # 3
        row("A fair die is rolled twice. What is the probability that the sum of the two rolls is exactly 7?", "1/6"),  # 4 near: jaccard
        row("A fair die is rolled twice. What is the probability that the sum of the two rolls is 8?", "5/36"),  # 5 kept: other number
        row("Given P(A|B) = 0.3, P(A) = 0.2 and P(B) = 0.4, find P(B|A).", "3/5"),    # 6 kept
        row("Given P(B|A) = 0.3, P(A) = 0.2 and P(B) = 0.4, find P(A|B).", "4/15"),   # 7 kept: events swapped
    ]
    result = clean_rows(rows)
    assert isinstance(result, CleanResult)
    assert [r["question"] for r in result.rows] == [
        "What is conditional probability?", rows[3]["question"], rows[5]["question"],
        rows[6]["question"], rows[7]["question"]]
    dropped = {d["index"]: d for d in result.dropped}
    assert set(dropped) == {1, 2, 4}
    assert dropped[1]["reason"] == "exact duplicate" and dropped[1]["duplicate_of"] == 0
    assert dropped[2]["reason"] == "near duplicate" and dropped[2]["detail"] == "same question"
    assert dropped[2]["duplicate_of"] == 0
    assert dropped[4]["reason"] == "near duplicate" and dropped[4]["detail"].startswith("jaccard")
    assert dropped[4]["duplicate_of"] == 3
    assert all(d["question"] for d in result.dropped)
    assert result.counts() == {"input": 8, "kept": 5, "dropped: exact duplicate": 1, "dropped: near duplicate": 2}
    assert rows[0]["question"] == "What is  conditional probability?"  # input untouched


def test_question_key_keeps_math_symbols():
    assert question_key("What is P(A|B)?") == question_key("what is p( a | b )")
    assert question_key("What is 2 + 3?") != question_key("What is 2 - 3?")
    assert question_key("Find 1/2 of 8.") != question_key("Find 12 of 8.")


def test_invalid_rows_dropped_by_clean():
    result = clean_rows([row(), {"question": "q"}, "x"])
    assert [d["reason"] for d in result.dropped] == ["invalid", "invalid"]
    assert "missing field: answer" in result.dropped[0]["detail"]


def words(row):
    return len((row["question"] + "\n" + row["answer"]).split())


def test_too_long_rows_dropped_or_reported_never_truncated():
    rows = [row("Short question?", "Short answer."),
            row("A longer question with many words in it?", "And an answer that is also long.\nAnswer: 3")]
    dropped = clean_rows(rows, count_tokens=words, max_length=6)
    assert dropped.rows == [rows[0]]
    assert dropped.dropped[0]["index"] == 1 and dropped.dropped[0]["reason"] == "too long"
    assert "17 tokens > max_length 6" in dropped.dropped[0]["detail"]

    reported = clean_rows(rows, count_tokens=words, max_length=6, on_too_long="report")
    assert reported.rows == rows and reported.dropped == []
    assert [d["index"] for d in reported.reported] == [1]
    assert reported.table()[0]["action"] == "kept"
    assert clean_rows(rows, count_tokens=words, max_length=100).dropped == []


def test_too_long_drop_does_not_shadow_a_shorter_duplicate():
    rows = [row("Same question?", "word " * 50), row("Same question?", "Short.")]
    result = clean_rows(rows, count_tokens=words, max_length=10)
    assert result.rows == [rows[1]]


@pytest.mark.parametrize("value", ["truncate", None, ""])
def test_bad_on_too_long(value):
    with pytest.raises(ValueError, match="on_too_long"):
        clean_rows([row()], count_tokens=words, max_length=5, on_too_long=value)


def test_max_length_without_counter():
    with pytest.raises(ValueError, match="count_tokens"):
        clean_rows([row()], max_length=5)


def test_clean_scales_roughly_linearly():
    """A ratio, not a wall-clock limit: twice the rows take about twice the CPU time of this process
    (all pairs would take four times), however busy the machine is."""
    import time

    def cpu_seconds(n):
        rows = [row(f"A bag has {i} red and {i + 3} blue balls. Two are drawn. What is P(both red)?", str(i))
                for i in range(3 * n)]
        rows += [row(f"Concept question number {i} about topic {i % 50} and its meaning?", "x") for i in range(n)]
        start = time.process_time()
        assert len(clean_rows(rows).rows) == len(rows)
        return time.process_time() - start

    small = min(cpu_seconds(1000) for _ in range(2))
    large = min(cpu_seconds(2000) for _ in range(2))
    assert large < 3 * small, f"{large:.2f} s for 8,000 rows vs {small:.2f} s for 4,000"


# --------------------------------------------------------------------------- splitting


def family_rows(n_per=20, families=("bayes", "dice", "cards", "urn")):
    return [row(f"{fam} problem with parameter value {i} and {i * 7 + 1}?", str(i), family=fam)
            for fam in families for i in range(n_per)]


def qs(rows):
    return sorted(r["question"] for r in rows)


def test_split_is_deterministic_and_seed_dependent():
    rows = family_rows()
    a = split_rows(rows, 0.25, seed=1)
    b = split_rows(rows, 0.25, seed=1)
    c = split_rows(rows, 0.25, seed=2)
    assert qs(a[0]) == qs(b[0]) and qs(a[1]) == qs(b[1])
    assert qs(a[1]) != qs(c[1])
    train, val = a
    assert len(train) + len(val) == len(rows) and len(val) == 20
    assert not {id(r) for r in train} & {id(r) for r in val}


def test_split_is_stratified():
    rows = family_rows(n_per=10) + family_rows(n_per=2, families=("tiny",)) + family_rows(n_per=1, families=("solo",))
    train, val = split_rows(rows, 0.5, seed=0)
    fams = {r["family"] for r in rows}
    assert {r["family"] for r in train} == fams
    for fam in ("bayes", "dice", "cards", "urn"):
        assert sum(r["family"] == fam for r in val) == 5
    assert sum(r["family"] == "tiny" for r in train) == 1


def test_split_falls_back_to_topic_then_all():
    rows = [row(f"Topic question {i}?", "x", topic=f"t{i % 3}") for i in range(30)]
    train, val = split_rows(rows, 0.2, seed=3)
    assert {r["topic"] for r in train} == {"t0", "t1", "t2"}
    assert all(sum(r["topic"] == t for r in val) == 2 for t in ("t0", "t1", "t2"))
    plain = [row(f"Plain question {i}?", "x") for i in range(10)]
    train, val = split_rows(plain, 0.3, seed=3)
    assert len(val) == 3 and len(train) == 7
    assert split_rows(plain, 0, seed=3) == (plain, [])


def test_no_leakage_after_split():
    rows = []
    for i in range(40):  # each question has a near-duplicate twin and a case/punctuation twin
        q = f"A fair coin is flipped {i} times in a row; what is the probability that every single flip shows heads"
        rows.append(row(q + "?", "x", family="coin"))
        rows.append(row(q.replace("every single flip", "every flip") + "?", "x", family="coin"))
        rows.append(row(q.upper() + ".", "x", family="coin"))
    assert leakage_check(rows[:1], rows[1:3]) == rows[1:3]  # the twins really are near-duplicates
    assert leakage_check(rows[:1], rows[3:4]) == []
    for seed in range(5):
        train, val = split_rows(rows, 0.3, seed=seed)
        assert leakage_check(train, val) == [] and leakage_report(train, val) == []
        assert len(train) + len(val) == len(rows)
        naive_val = [r for r in rows if r not in train]
        assert naive_val == val


def test_split_moves_chains_of_near_duplicates_until_no_leakage():
    # q_k adds one word to q_{k-1}: neighbours are near-duplicates (Jaccard >= 0.9),
    # rows further apart are not, so only a repeated check removes all leakage.
    base = "which of these named events has the largest chance of happening first".split()
    extra = ["today", "tomorrow", "soon", "later", "eventually", "finally", "again", "twice", "often", "rarely"]
    rows = [row(" ".join(base + extra[:k]) + "?", "x") for k in range(len(extra) + 1)]
    assert leakage_check(rows[:1], rows[1:2]) and not leakage_check(rows[:1], rows[2:3])
    moved_something = False
    for seed in range(10):
        train, val = split_rows(rows, 0.5, seed=seed)
        assert val == [] and train == rows  # one connected chain: all of it ends up in train
    unrelated = [row(f"Unrelated question about topic number {i} here?", "x") for i in range(20)]
    for seed in range(10):
        train, val = split_rows(rows + unrelated, 0.5, seed=seed)
        assert leakage_check(train, val) == []
        assert not any(r in val for r in rows)
        moved_something |= len(val) < 16
    assert moved_something


token_words = st.sampled_from(["alpha", "beta", "gamma", "delta", "event", "coin", "die", "roll",
                               "what", "is", "the", "of", "x", "A", "B", "1", "2", "+", "(", ")", "?"])


@settings(max_examples=150, deadline=None)
@given(train=st.lists(st.lists(token_words, min_size=1, max_size=14), max_size=12),
       probe=st.lists(token_words, min_size=1, max_size=14))
def test_near_duplicate_index_matches_brute_force(train, probe):
    train_q = [" ".join(t) for t in train]
    probe_q = " ".join(probe)
    index = data._QuestionIndex(train_q + [probe_q])
    for i, q in enumerate(train_q):
        index.add(i, q)

    def near(a, b):
        ka, sa, ta = data._features(a)
        kb, sb, tb = data._features(b)
        return ka == kb or (sa == sb and ta and tb and len(ta & tb) * 10 >= 9 * len(ta | tb))

    expected = [i for i, q in enumerate(train_q) if near(probe_q, q)]
    found = index.find(probe_q)
    assert (found is not None) == bool(expected)
    if found is not None:
        assert found[0] in expected
    assert bool(leakage_check([row(q, "x") for q in train_q], [row(probe_q, "x")])) == bool(expected)


def test_leakage_report_table():
    train = [row("What is the variance of a fair die roll?", "35/12")]
    val = [row("what is the variance of a fair die roll", "35/12"), row("What is a p-value?", "x")]
    report = leakage_report(train, val)
    assert report == [{"val_index": 0, "train_index": 0, "detail": "same question",
                       "question": val[0]["question"], "train_question": train[0]["question"]}]


@pytest.mark.parametrize("value", [-0.1, 1, 1.0, 1.5, float("nan"), "0.2", None, True])
def test_bad_val_fraction(value):
    with pytest.raises(ValueError, match="val_fraction"):
        split_rows(family_rows(), value, seed=0)


# --------------------------------------------------------------------------- writing


def test_write_json_atomic_and_hash(tmp_path):
    p = tmp_path / "sub" / "out.json"
    digest = write_json_atomic(p, [GOOD])
    assert json.loads(p.read_text(encoding="utf-8")) == [GOOD]
    assert "∩" in p.read_text(encoding="utf-8")  # ensure_ascii=False
    assert p.read_text(encoding="utf-8").startswith('[\n {\n  "question"')  # indent=1
    assert digest == file_sha256(p)
    with pytest.raises(DataError):
        write_json_atomic(p, {"x": {1, 2}})
    assert json.loads(p.read_text(encoding="utf-8")) == [GOOD]
    assert os.listdir(p.parent) == ["out.json"]


def test_write_training_files_roundtrip(tmp_path):
    train, val = [GOOD], [row()]
    written = write_training_files(tmp_path, {"train.json": train, "val.json": val}, report={"rows": 2})
    assert [os.path.basename(w["file"]) for w in written] == ["train.json", "val.json", "data_report.json"]
    assert load_qa_file(tmp_path / "train.json").rows == train
    assert load_qa_file(tmp_path / "val.json").rows == val
    assert json.loads((tmp_path / "data_report.json").read_text()) == {"rows": 2}
    assert written[0]["sha256"] == file_sha256(tmp_path / "train.json") and written[0]["rows"] == 1


def _setup_previous(tmp_path):
    write_training_files(tmp_path, {"train.json": [GOOD], "val.json": [row()]})
    return {name: (tmp_path / name).read_bytes() for name in ("train.json", "val.json")}


def _assert_untouched(tmp_path, before):
    assert sorted(os.listdir(tmp_path)) == ["train.json", "val.json"]  # no temp files left
    for name, content in before.items():
        assert (tmp_path / name).read_bytes() == content


def test_failed_write_leaves_previous_files_intact_serialisation(tmp_path):
    before = _setup_previous(tmp_path)
    with pytest.raises(DataError, match="val.json"):
        write_training_files(tmp_path, {"train.json": [row("New?", "new")],
                                        "val.json": [row("Q?", "A", params={1, 2})]})
    _assert_untouched(tmp_path, before)


def test_failed_write_leaves_previous_files_intact_invalid_row(tmp_path):
    before = _setup_previous(tmp_path)
    with pytest.raises(DataError, match=r"val.json: row 2: wrong type: answer is int"):
        write_training_files(tmp_path, {"train.json": [row("New?", "new")], "val.json": [row(), row(a=3)]})
    _assert_untouched(tmp_path, before)


def test_failed_write_leaves_previous_files_intact_disk_error(tmp_path, monkeypatch):
    before = _setup_previous(tmp_path)
    real = data._write_temp
    calls = []

    def flaky(folder, name, payload):
        calls.append(name)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(folder, name, payload)

    monkeypatch.setattr(data, "_write_temp", flaky)
    with pytest.raises(OSError, match="No space"):
        write_training_files(tmp_path, {"train.json": [row("New?", "new")], "val.json": [row("New 2?", "new")]})
    assert calls == ["train.json", "val.json"]
    _assert_untouched(tmp_path, before)


@pytest.mark.parametrize("name", ["../x.json", "sub/x.json", "x.txt", ".x.json", "data_report.json"])
def test_write_training_files_rejects_bad_names(tmp_path, name):
    with pytest.raises(ValueError):
        write_training_files(tmp_path, {name: [GOOD]})
    assert os.listdir(tmp_path) == []


def test_file_sha256_missing(tmp_path):
    with pytest.raises(DataError, match="nope"):
        file_sha256(tmp_path / "nope")


# --------------------------------------------------------------------------- summary


def test_summarize():
    rows = [row("ab?", "abcd", family="dice", difficulty=1), row("abcd?", "ab", family="dice", difficulty=2),
            row("a?", "abcdef", topic="bayes")]
    s = summarize(rows)
    assert s["rows"] == 3
    assert s["by_family"] == {"dice": 2} and s["by_topic"] == {"bayes": 1}
    assert s["by_difficulty"] == {"1": 1, "2": 1}
    assert s["question_chars"] == {"min": 2, "median": 3, "mean": 3.3, "max": 5}
    assert s["answer_chars"]["max"] == 6
    assert summarize([])["question_chars"]["max"] == 0
