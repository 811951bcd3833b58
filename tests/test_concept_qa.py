"""Checks for data/concept_qa.json, the probability & statistics concept Q/A set.

Pure Python (json/re only), so it runs without torch or the model.
"""

import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest

DATA_PATH = Path(__file__).resolve().parents[1] / "data" / "concept_qa.json"

TOPICS = [
    "sample_spaces_events",
    "axioms",
    "counting",
    "conditional_probability",
    "independence",
    "bayes",
    "random_variables",
    "pmf_pdf_cdf",
    "expectation_variance",
    "bernoulli_binomial",
    "geometric",
    "poisson",
    "uniform",
    "exponential",
    "gaussian",
    "joint_distributions",
    "covariance_correlation",
    "law_of_large_numbers",
    "central_limit_theorem",
    "estimation",
]

# Chapter each topic belongs to (1 = sample spaces/axioms/counting, ..., 8 = estimation).
TOPIC_CHAPTER = {
    "sample_spaces_events": 1, "axioms": 1, "counting": 1,
    "conditional_probability": 2, "independence": 2, "bayes": 2,
    "random_variables": 3, "pmf_pdf_cdf": 3, "expectation_variance": 3,
    "bernoulli_binomial": 4, "geometric": 4, "poisson": 4,
    "uniform": 5, "exponential": 5, "gaussian": 5,
    "joint_distributions": 6, "covariance_correlation": 6,
    "law_of_large_numbers": 7, "central_limit_theorem": 7,
    "estimation": 8,
}

FIELDS = ("question", "answer", "source", "topic")
SOURCE_RE = re.compile(r"^Workbook notes §\d+\.\d+ \S.*$")
SOURCE_PARTS_RE = re.compile(r"^Workbook notes §(\d+)\.(\d+) (\S.*)$")
MIN_ROWS = 200
MIN_PER_TOPIC = 10


@pytest.fixture(scope="module")
def rows():
    with DATA_PATH.open(encoding="utf-8") as fh:
        data = json.load(fh)
    assert isinstance(data, list), "top level must be a JSON list"
    return data


def test_parses_and_has_enough_rows(rows):
    assert len(rows) >= MIN_ROWS, f"only {len(rows)} rows, need >= {MIN_ROWS}"


def test_every_row_has_nonempty_string_fields(rows):
    for i, row in enumerate(rows):
        assert isinstance(row, dict), f"row {i} is not an object"
        assert set(row) == set(FIELDS), f"row {i} has keys {sorted(row)}"
        for field in FIELDS:
            value = row[field]
            assert isinstance(value, str) and value.strip(), f"row {i}: empty or non-string {field!r}"


def test_topics_are_known_and_each_has_enough_rows(rows):
    unknown = sorted({row["topic"] for row in rows} - set(TOPICS))
    assert not unknown, f"unknown topic slugs: {unknown}"
    counts = Counter(row["topic"] for row in rows)
    thin = {t: counts.get(t, 0) for t in TOPICS if counts.get(t, 0) < MIN_PER_TOPIC}
    assert not thin, f"topics with fewer than {MIN_PER_TOPIC} rows: {thin}"


def _normalize(text):
    return " ".join(text.lower().split())


def test_no_duplicate_questions(rows):
    counts = Counter(_normalize(row["question"]) for row in rows)
    dups = [q for q, n in counts.items() if n > 1]
    assert not dups, f"duplicate questions: {dups}"


def test_source_format(rows):
    bad = [row["source"] for row in rows if not SOURCE_RE.match(row["source"])]
    assert not bad, f"badly formatted sources: {bad[:5]}"


def test_section_numbering_is_consistent(rows):
    title_to_numbers = defaultdict(set)
    number_to_titles = defaultdict(set)
    for row in rows:
        chapter, section, title = SOURCE_PARTS_RE.match(row["source"]).groups()
        number = f"{int(chapter)}.{int(section)}"
        title_to_numbers[title].add(number)
        number_to_titles[number].add(title)
    clashes = {t: sorted(n) for t, n in title_to_numbers.items() if len(n) > 1}
    assert not clashes, f"section titles with several numbers: {clashes}"
    clashes = {n: sorted(t) for n, t in number_to_titles.items() if len(t) > 1}
    assert not clashes, f"section numbers with several titles: {clashes}"


def test_chapter_matches_topic(rows):
    wrong = []
    for row in rows:
        chapter = int(SOURCE_PARTS_RE.match(row["source"]).group(1))
        if TOPIC_CHAPTER.get(row["topic"]) != chapter:
            wrong.append((row["topic"], row["source"]))
    assert not wrong, f"source chapter does not match topic: {wrong[:5]}"
