"""The transfer evaluation set (helpers.transfer): exact answers, a fixed balanced order, and no leakage.

Every answer is re-derived here from the record's ``params`` by brute force
(enumerating dice, coins, decks, bags, arrangements, integers), not by the
module's own formulas. The leakage tests read whatever training files exist at
test time, and also fresh generator output, so they keep holding when the
training data is regenerated. Pure Python: no torch.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import string
import subprocess
import sys
from collections import Counter
from fractions import Fraction
from itertools import combinations, permutations, product
from pathlib import Path

import pytest

from helpers import data, transfer
from helpers.answers import format_final_answer, terminates
from helpers.problems import FAMILIES, generate_problems

ROOT = Path(__file__).resolve().parents[1]
TRAINING_DIR = ROOT / "data" / "training_data"

TRANSFER = transfer.transfer_set()
RETENTION = transfer.retention_candidates()
ALL = TRANSFER + RETENTION

# --------------------------------------------------------------------------- brute-force answers

_DECK = [(rank, suit) for suit in ("hearts", "diamonds", "clubs", "spades")
         for rank in ("A", "2", "3", "4", "5", "6", "7", "8", "9", "10", "J", "Q", "K")]
_RED = ("hearts", "diamonds")
_ONE_CARD = {
    "club": lambda c: c[1] == "clubs", "red": lambda c: c[1] in _RED, "ace": lambda c: c[0] == "A",
    "picture": lambda c: c[0] in "JQK", "seven": lambda c: c[0] == "7",
    "heart_or_diamond": lambda c: c[1] in _RED, "black_king": lambda c: c[0] == "K" and c[1] not in _RED,
}
_BOTH = {"hearts": lambda c: c[1] == "hearts", "aces": lambda c: c[0] == "A", "red": lambda c: c[1] in _RED,
         "spades": lambda c: c[1] == "spades"}
_FACE_EVENTS = {
    "ge": lambda f, v: f >= v, "le": lambda f, v: f <= v, "even": lambda f, v: f % 2 == 0,
    "odd": lambda f, v: f % 2 == 1, "prime": lambda f, v: f in (2, 3, 5),
    "sum": None, "product": None,
}
_GIVEN = {"even": lambda f: f % 2 == 0, "odd": lambda f: f % 2 == 1, "gt2": lambda f: f > 2, "lt5": lambda f: f < 5}
_EVENT = {"six": lambda f: f == 6, "gt3": lambda f: f > 3, "prime": lambda f: f in (2, 3, 5), "one": lambda f: f == 1}


def _share(hits: int, total: int) -> Fraction:
    return Fraction(int(hits), total)


def derive(record: dict) -> Fraction:
    """The answer from ``params`` alone, by enumeration wherever there is something to enumerate."""
    k, p = record["kind"], record["params"]
    if k == "arithmetic":
        a, b = p["a"], p["b"]
        return Fraction({"add": a + b, "sub": a - b, "mul": a * b}.get(p["op"], Fraction(a, b)))
    if k == "shopping":
        spent = sum(c * price for c, price in zip(p["counts"], p["prices"]))
        return Fraction(p["bill"] - spent if p["mode"] == "change" else spent)
    if k == "sharing":
        left = p["total"] - p["removed"]
        assert left % p["k"] == 0, "sharing must come out even"
        return Fraction(left // p["k"])
    if k == "fractions":
        fs = [Fraction(n, d) for n, d in p["fractions"]]
        return {"of": lambda: fs[0] * p["n"], "together": lambda: sum(fs), "left": lambda: 1 - sum(fs)}[p["mode"]]()
    if k == "percentages":
        mode = p["mode"]
        if mode == "discount":
            return Fraction(p["n"]) - Fraction(p["n"] * p["d"], 100)
        if mode == "of":
            return Fraction(p["n"] * p["d"], 100)
        if mode == "decimal":
            return Fraction(p["d"], 100)
        return Fraction(p["k"], p["n"])
    if k == "dice":
        if p["mode"] == "one":
            return _share(sum(_FACE_EVENTS[p["event"]](f, p["v"]) for f in range(1, 7)), 6)
        rolls = list(product(range(1, 7), repeat=2))
        combine = (lambda r: r[0] + r[1]) if p["mode"] == "sum" else (lambda r: r[0] * r[1])
        return _share(sum(combine(r) == p["v"] for r in rolls), len(rolls))
    if k == "coin_sequences":
        seqs = list(product("HT", repeat=p["n"]))
        return Fraction(len(seqs) if p["k"] is None else sum(s.count("H") == p["k"] for s in seqs))
    if k == "coin_probability":
        seqs = list(product("HT", repeat=p["n"]))
        test = (lambda s: s.count("H") == p["k"]) if p["mode"] == "exactly" else (lambda s: s.count("H") >= p["k"])
        return _share(sum(map(test, seqs)), len(seqs))
    if k == "cards":
        if p["draws"] == 1:
            return _share(sum(map(_ONE_CARD[p["event"]], _DECK)), len(_DECK))
        pairs = list(product(_DECK, repeat=2)) if p["replace"] else list(permutations(_DECK, 2))
        good = _BOTH[p["event"]]
        return _share(sum(good(a) and good(b) for a, b in pairs), len(pairs))
    if k == "urns":
        balls = [c for c, n in sorted(p["counts"].items()) for _ in range(n)]
        if p["draws"] == 1:
            return _share(balls.count(p["colour"]), len(balls))
        pairs = list(product(balls, repeat=2)) if p["replace"] else list(permutations(balls, 2))
        return _share(sum(a == b == p["colour"] for a, b in pairs), len(pairs))
    if k == "selections":
        return Fraction(sum(1 for _ in combinations(range(p["n"]), p["k"])))
    if k == "roles":
        return Fraction(sum(1 for _ in permutations(range(p["n"]), p["k"])))
    if k == "codes":
        return Fraction(sum(1 for _ in product(range(p["n"]), repeat=p["k"])))
    if k == "at_least_one":
        q = Fraction(*p["p"])
        total = Fraction(0)
        for trial in product((True, False), repeat=p["n"]):  # True: the event happens on that trial
            weight = math.prod(q if hit else 1 - q for hit in trial)
            total += weight if any(trial) else 0
        return total
    if k == "expected_value":
        probs = [Fraction(*pr) for _, pr in p["outcomes"]]
        assert sum(probs) == 1
        return sum(Fraction(x) * pr for (x, _), pr in zip(p["outcomes"], probs))
    if k == "conditional":
        if p["mode"] == "die":
            faces = [f for f in range(1, 7) if _GIVEN[p["given"]](f)]
            return _share(sum(map(_EVENT[p["event"]], faces)), len(faces))
        people = ["chess+piano"] * p["b"] + ["chess"] * (p["a"] - p["b"]) + ["other"] * (p["total"] - p["a"])
        chess = [x for x in people if x.startswith("chess")]
        return _share(sum(x == "chess+piano" for x in chess), len(chess))
    if k == "spinner":
        assert sum(d for _, d in p["sectors"]) == 360
        total = Fraction(0)
        for spins in product(p["sectors"], repeat=p["spins"]):  # each spin stops in a sector with chance degrees/360
            if all(c == p["target"] for c, _ in spins):
                total += math.prod(Fraction(d, 360) for _, d in spins)
        return total
    if k == "mean_median":
        values = [Fraction(v) for v in p["values"]]
        return Fraction(statistics.mean(values) if p["stat"] == "mean" else statistics.median(values))
    if k == "divisibility":
        a, b = p["a"], p["b"]
        hits = {
            "one": lambda x: x % a == 0,
            "or": lambda x: x % a == 0 or x % b == 0,
            "neither": lambda x: x % a != 0 and x % b != 0,
        }[p["mode"]]
        return Fraction(sum(map(hits, range(1, p["N"] + 1))))
    if k == "rectangles":
        w, l = p["w"], p["l"]
        cells = sum(1 for _ in product(range(w), range(l)))  # unit squares
        return Fraction({"area": cells, "perimeter": 2 * w + 2 * l, "side": cells // w}[p["mode"]])
    raise AssertionError(f"no derivation for kind {k!r}")


@pytest.mark.parametrize("record", ALL, ids=lambda r: r["kind"])
def test_every_answer_rederived_from_params(record):
    assert record["final_answer"] == format_final_answer(derive(record)), record["question"]


def _template_regex(template: str) -> re.Pattern:
    parts = []
    for literal, field, _, _ in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        if field is not None:
            parts.append("(.*?)")
    return re.compile("".join(parts))


def test_records_have_the_documented_shape_and_wording():
    fields = {"question", "final_answer", "family", "kind", "form", "source", "params"}
    for r in ALL:
        assert set(r) == fields, r
        assert r["source"] == f"transfer:{r['kind']}"
        assert r["kind"] in transfer.KINDS and r["family"] == transfer.KINDS[r["kind"]][0]
        assert r["form"] in ("value", "count", "probability", "percent", "decimal")
        assert json.loads(json.dumps(r["params"])) == r["params"]
        group, i = r["params"]["template"].split("#")
        template = transfer.TEMPLATES[group][int(i)]
        question = r["question"]
        for ask in (a for asks in transfer.FORM_REQUESTS.values() for a in asks):
            question = question.removesuffix(ask)
        # {extra} is a distractor sentence; the rest of the question is the template's own text
        assert _template_regex(template).fullmatch(question), (template, r["question"])
        if r["form"] in ("percent", "decimal"):
            assert terminates(Fraction(r["final_answer"])), r
        if "{extra}" in template:
            assert any(_template_regex(d).search(r["question"]) for d in transfer.DISTRACTORS), r


def test_question_forms_vary():
    forms = Counter(r["form"] for r in TRANSFER)
    assert all(forms[f] >= 15 for f in ("value", "count", "probability", "percent", "decimal")), forms
    text = " ".join(r["question"].lower() for r in TRANSFER)
    for phrase in ("chance", "how likely", "probability", "how many ways", "possible outcomes",
                   "how many different sequences", "at least", "exactly", "put back", "percent", "decimal"):
        assert phrase in text, phrase
    starts_with_question = sum(r["question"].split()[0] in ("How", "What", "Which", "Counting") for r in TRANSFER)
    assert 0.2 * len(TRANSFER) < starts_with_question < 0.8 * len(TRANSFER)
    assert sum(any(_template_regex(d).search(r["question"]) for d in transfer.DISTRACTORS) for r in TRANSFER) >= 20


def test_fixed_and_deterministic():
    assert transfer.transfer_set() == TRANSFER and transfer.retention_candidates() == RETENTION
    assert 300 <= len(TRANSFER) <= 340 and 280 <= len(RETENTION) <= 320
    code = ("import json, sys; from helpers import transfer; "
            "json.dump([transfer.transfer_set(), transfer.retention_candidates()], sys.stdout); "
            "print(); print('torch' in sys.modules)")
    for hash_seed in ("1", "12345"):
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                             env={"PYTHONHASHSEED": hash_seed, "PATH": "/usr/bin:/bin"}).stdout.splitlines()
        assert json.loads(out[0]) == [TRANSFER, RETENTION]
        assert out[1] == "False", "importing helpers.transfer must not import torch"


def test_records_are_copies():
    records = transfer.transfer_set(3)
    records[0]["params"]["template"] = "changed"
    assert transfer.transfer_set(3)[0]["params"]["template"] != "changed"


@pytest.mark.parametrize("n", [1, 7, 20, 24, 50, 100, len(TRANSFER)])
def test_prefix_is_balanced_across_kinds(n):
    subset = transfer.transfer_set(n)
    assert subset == TRANSFER[:n]
    counts = Counter(r["kind"] for r in subset)
    per_kind = [counts[kind] for kind in transfer.KINDS]
    assert max(per_kind) - min(per_kind) <= 1, counts


def test_bad_n_is_refused():
    for bad in (-1, 2.5, "3", True):
        with pytest.raises(ValueError):
            transfer.transfer_set(bad)


def test_families_and_new_kinds():
    families = {r["family"] for r in TRANSFER}
    new = {f for f in families if f.startswith("new:")}
    assert len(new) >= 4, new
    assert families - new <= set(FAMILIES)
    assert not {f.removeprefix("new:") for f in new} & set(FAMILIES)


def test_no_question_repeats_and_retention_is_disjoint():
    keys = [data.question_key(r["question"]) for r in TRANSFER]
    retention_keys = [data.question_key(r["question"]) for r in RETENTION]
    assert len(set(keys)) == len(keys) and len(set(retention_keys)) == len(retention_keys)
    assert not set(keys) & set(retention_keys)
    assert data.leakage_check(TRANSFER, RETENTION) == []


# --------------------------------------------------------------------------- leakage into training data


def _longest_fragment(template: str) -> str:
    literals = [" ".join(lit.lower().split()) for lit, _, _, _ in string.Formatter().parse(template)]
    return max(literals, key=lambda text: len(text.split()))


def _training_rows() -> list[dict]:
    rows = []
    for path in sorted(TRAINING_DIR.glob("*.json")):
        content = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(content, list):  # data_report.json is a dict
            rows += [r for r in content if isinstance(r, dict) and isinstance(r.get("question"), str)]
    return rows


GENERATED = generate_problems(2000, seed=16)


def test_every_template_has_a_checkable_fragment():
    for template in transfer.all_templates():
        assert len(_longest_fragment(template).split()) >= 4, template


@pytest.mark.parametrize("source", ["training files", "generator"])
def test_no_transfer_template_in_training_questions(source):
    rows = _training_rows() if source == "training files" else GENERATED
    assert rows, f"no {source} rows to check"
    questions = [" ".join(r["question"].lower().split()) for r in rows]
    for template in transfer.all_templates():
        fragment = _longest_fragment(template)
        hit = next((q for q in questions if fragment in q), None)
        assert hit is None, f"transfer wording {fragment!r} appears in {source}: {hit!r}"


@pytest.mark.parametrize("source", ["training files", "generator"])
def test_no_transfer_question_in_training_questions(source):
    rows = _training_rows() if source == "training files" else GENERATED
    assert rows
    keys = {data.question_key(r["question"]) for r in ALL}
    assert not [r["question"] for r in rows if data.question_key(r["question"]) in keys]
    assert data.transfer_leaks(rows) == []


def test_build_training_sets_refuses_a_transfer_question():
    rows = generate_problems(60, seed=3)
    leaked = {"question": "  " + TRANSFER[5]["question"].upper() + " ", "answer": "x\nAnswer: 1",
              "final_answer": "1", "family": "arithmetic"}
    assert data.transfer_leaks(rows) == []
    assert [r["index"] for r in data.transfer_leaks([*rows, leaked])] == [60]
    with pytest.raises(ValueError, match="row index 60"):
        data.build_training_sets([*rows, leaked], 0.1, 0.3, seed=0)
    data.build_training_sets(rows, 0.1, 0.3, seed=0)
