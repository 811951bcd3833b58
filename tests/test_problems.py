"""helpers.problems: every generated answer re-derived independently from params.

The checkers below never call the generator's solution code: they rebuild each
problem from its ``params`` and compute the answer another way (evaluating the
expression with exact fractions, enumerating dice, coins, cards and labelled
balls, summing binomial outcomes one sequence at a time). Pure Python, fast.
"""

from __future__ import annotations

import ast
import json
import math
import operator
import re
from collections import Counter
from fractions import Fraction
from itertools import combinations, permutations, product

import pytest

from helpers.answers import ANSWER_FORMS, answer_line, count_answer_lines, format_final_answer, parse_number
from helpers.problems import DIFFICULTIES, FAMILIES, generate_problems

PER_DIFFICULTY = 20  # 60 problems per family in the answer checks


# ---------------------------------------------------------------------------
# Independent evaluation helpers
# ---------------------------------------------------------------------------

_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.Pow: operator.pow}


def exact_eval(expression: str) -> Fraction:
    """Evaluate + - * / ** and brackets over integers with exact Fractions (Python's precedence)."""
    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return Fraction(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            left, right = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Pow):
                assert right.denominator == 1
                return left ** int(right)
            return _BINOPS[type(node.op)](left, right)
        raise ValueError(f"unexpected syntax in {expression!r}")
    return ev(ast.parse(expression, mode="eval"))


def F(x) -> Fraction:
    return Fraction(str(x))


def prob(outcomes, event) -> Fraction:
    """Equally likely outcomes: favourable / total, by counting."""
    outcomes = list(outcomes)
    return Fraction(sum(1 for o in outcomes if event(o)), len(outcomes))


def weighted(n: int, p: Fraction, event) -> Fraction:
    """Sum of p^s (1-p)^(n-s) over all 2^n success/failure sequences satisfying event(sequence)."""
    total = Fraction(0)
    for seq in product((1, 0), repeat=n):
        if event(seq):
            s = sum(seq)
            total += p ** s * (1 - p) ** (n - s)
    return total


# ---------------------------------------------------------------------------
# One checker per family: params -> the exact answer
# ---------------------------------------------------------------------------

def check_arithmetic(p):
    value = exact_eval(p["expression"])
    expected = {"add": p["a"] + p["b"], "subtract": p["a"] - p["b"], "multiply": p["a"] * p["b"],
                "divide": Fraction(p["a"], p["b"])}[p["op"]]
    assert value == expected
    if p["op"] == "divide":
        assert value.denominator == 1, "arithmetic division must be exact"
    return value


def check_order_of_operations(p):
    value = exact_eval(p["expression"])
    assert value.denominator == 1
    return value


def check_fractions(p):
    value = exact_eval(p["expression"])
    if p["op"] == "simplify":
        n, d = map(int, p["a"].split("/"))
        assert math.gcd(n, d) > 1, "a simplify question should need simplifying"
        assert value == Fraction(n, d)
    return value


def check_percentages(p):
    factor = Fraction(1)
    for c in p.get("changes", []):
        factor *= 1 + F(c) / 100
    if p["kind"] == "percent_of":
        return F(p["percent"]) * p["base"] / 100
    if p["kind"] == "change":
        return p["base"] * factor
    if p["kind"] == "reverse":
        return F(p["final"]) / factor
    if p["kind"] == "fraction_change":
        return Fraction(abs(p["new"] - p["old"]), p["old"])
    if p["kind"] == "percent_change":  # the percent p with old * (1 +- p/100) = new, searched
        (percent,) = [Fraction(q, 100) for q in range(1, 100) if p["old"] * (100 + q) == 100 * p["new"]
                      or p["old"] * (100 - q) == 100 * p["new"]]
        return percent
    if p["kind"] == "what_percent":  # the percent q with q% of whole = part, searched
        (percent,) = [Fraction(q, 100) for q in range(1, 100) if q * p["whole"] == 100 * p["part"]]
        return percent
    raise AssertionError(p)


def check_word_problem(p):
    kind = p["kind"]
    if kind == "total":
        return Fraction(sum(p["values"]))
    if kind == "difference":
        return Fraction(p["a"] - p["b"])
    if kind == "groups":
        return Fraction(sum(p["each"] for _ in range(p["groups"])))
    if kind == "shopping":
        return sum(Fraction(c * price) for c, price in p["items"])
    if kind == "change":
        return p["bill"] - sum(c * price for c, price in p["items"])
    if kind == "sharing":
        value = Fraction(p["total"] - p["given"], p["people"])
        assert value.denominator == 1
        return value
    if kind == "distance":
        return sum(Fraction(speed * hours) for speed, hours in p["legs"])
    if kind == "machines":
        return Fraction(p["rate"] * p["machines"] * p["hours"])
    if kind == "ages_future":
        return Fraction(p["young"] + p["gap"] + p["years"])
    if kind == "ages_sum_diff":  # search the younger age that fits both facts
        (young,) = [y for y in range(p["total"] + 1) if y + (y + p["diff"]) == p["total"]]
        return Fraction(young + p["diff"])
    if kind == "ages_ratio":  # search the son's age
        (son,) = [s for s in range(1, 200)
                  if p["k"] * s + p["years"] == p["m"] * (s + p["years"])]
        return Fraction(son)
    if kind == "average_speed":
        d = p["distance"]
        hours = sum(Fraction(d, v) for v in p["speeds"])
        return 2 * d / hours
    if kind == "work_together":  # time t with t/a + t/b = 1
        a, b = p["times"]
        t = 1 / (Fraction(1, a) + Fraction(1, b))
        assert t / a + t / b == 1
        return t
    raise AssertionError(p)


def check_permutations(p):
    kind = p["kind"]
    if kind == "arrange":
        return Fraction(sum(1 for _ in permutations(range(p["n"]))))
    if kind == "ordered":
        return Fraction(sum(1 for _ in permutations(range(p["n"]), p["k"])))
    if kind == "word":
        return Fraction(len(set(permutations(p["word"]))))
    if kind == "repeat":
        return Fraction(sum(1 for _ in product(range(p["n"]), repeat=p["k"])))
    if kind == "together":
        return Fraction(sum(1 for order in permutations(range(p["n"]))
                            if abs(order.index(0) - order.index(1)) == 1))
    if kind == "circular":  # seatings up to rotation: count rotation classes
        n = p["n"]
        classes = {min(order[i:] + order[:i] for i in range(n)) for order in permutations(range(n))}
        return Fraction(len(classes))
    raise AssertionError(p)


def check_combinations(p):
    kind = p["kind"]
    if kind == "choose":
        return Fraction(sum(1 for _ in combinations(range(p["n"]), p["k"])))
    if kind == "handshakes":
        return Fraction(sum(1 for a in range(p["n"]) for b in range(p["n"]) if a < b))
    if kind == "ordered_pairs":
        return Fraction(sum(1 for a in range(p["n"]) for b in range(p["n"]) if a != b))
    if kind == "grid":
        steps = p["right"] + p["up"]
        return Fraction(sum(1 for path in product("RU", repeat=steps) if path.count("U") == p["up"]))
    if kind == "split":
        people = [("A", i) for i in range(p["a"])] + [("B", i) for i in range(p["b"])]
        return Fraction(sum(1 for g in combinations(people, p["i"] + p["j"])
                            if sum(1 for x in g if x[0] == "A") == p["i"]))
    if kind == "at_least":
        people = [("first", i) for i in range(p["first"])] + [("second", i) for i in range(p["second"])]
        return Fraction(sum(1 for g in combinations(people, p["k"]) if any(x[0] == "second" for x in g)))
    raise AssertionError(p)


DICE_EVENTS = {  # written again here, not imported: (outcome tuple, number) -> bool
    "gt": lambda o, v: o[0] > v,
    "even": lambda o, v: o[0] in (2, 4, 6),
    "prime": lambda o, v: o[0] in (2, 3, 5),
    "at_most": lambda o, v: o[0] <= v,
    "mult3": lambda o, v: o[0] in (3, 6),
    "not_eq": lambda o, v: o[0] != v,
    "sum_eq": lambda o, v: sum(o) == v,
    "sum_ge": lambda o, v: sum(o) >= v,
    "sum_le": lambda o, v: sum(o) <= v,
    "doubles": lambda o, v: all(x == o[0] for x in o),
    "at_least_one": lambda o, v: any(x == v for x in o),
    "product_even": lambda o, v: any(x % 2 == 0 for x in o),
    "diff_eq": lambda o, v: abs(o[0] - o[1]) == v,
    "max_eq": lambda o, v: max(o) == v,
    "first_gt": lambda o, v: o[0] > o[1],
    "all_different": lambda o, v: len(set(o)) == len(o),
    "product_eq": lambda o, v: math.prod(o) == v,
    "any": lambda o, v: True,
}


def count_or_prob(p, outcomes, event):
    """A count of the favourable outcomes when the question asks how many, else their share."""
    outcomes = list(outcomes)
    if p.get("quantity") == "count":
        return Fraction(sum(1 for o in outcomes if event(o)))
    return prob(outcomes, event)


def check_dice(p):
    faces = range(1, p.get("sides", 6) + 1)
    return count_or_prob(p, product(faces, repeat=p["dice"]), lambda o: DICE_EVENTS[p["event"]](o, p["value"]))


def check_coins(p):
    n, k = p["n"], p["k"]
    events = {
        "exactly": lambda s: s.count("H") == k,
        "exactly_tails": lambda s: s.count("T") == k,
        "at_least": lambda s: s.count("H") >= k,
        "at_most": lambda s: s.count("H") <= k,
        "at_least_one": lambda s: "H" in s,
        "all_same": lambda s: len(set(s)) == 1,
        "more_heads": lambda s: s.count("H") > s.count("T"),
        "no_consecutive": lambda s: "HH" not in "".join(s),
        "sequence": lambda s: list(s) == p["sequence"],
        "first_k": lambda s: set(s[:k]) == {"H"},
        "sequences": lambda s: True,
        "count_exactly": lambda s: s.count("H") == k,
    }
    return count_or_prob(p, product("HT", repeat=n), events[p["event"]])


RANKS = ["A"] + [str(i) for i in range(2, 11)] + ["J", "Q", "K"]
DECK = [(rank, suit) for rank in RANKS for suit in "SHDC"]  # S spades, H hearts, D diamonds, C clubs
RED = {"H", "D"}
FACES = {"J", "Q", "K"}
ONE_CARD = {
    "heart": lambda c: c[1] == "H",
    "red": lambda c: c[1] in RED,
    "king": lambda c: c[0] == "K",
    "ace": lambda c: c[0] == "A",
    "face": lambda c: c[0] in FACES,
    "heart_or_king": lambda c: c[1] == "H" or c[0] == "K",
    "red_face": lambda c: c[1] in RED and c[0] in FACES,
    "black_ace": lambda c: c[1] not in RED and c[0] == "A",
    "number": lambda c: c[0].isdigit(),
    "not_spade": lambda c: c[1] != "S",
    "queen_of_spades": lambda c: c == ("Q", "S"),
}
TWO_CARDS = {
    "both_aces": lambda a, b: a[0] == b[0] == "A",
    "both_hearts": lambda a, b: a[1] == b[1] == "H",
    "both_red": lambda a, b: a[1] in RED and b[1] in RED,
    "both_face": lambda a, b: a[0] in FACES and b[0] in FACES,
    "same_suit": lambda a, b: a[1] == b[1],
    "pair": lambda a, b: a[0] == b[0],
    "ace_then_king": lambda a, b: (a[0], b[0]) == ("A", "K"),
    "ace_and_king": lambda a, b: sorted((a[0], b[0])) == ["A", "K"],
    "at_least_one_ace": lambda a, b: a[0] == "A" or b[0] == "A",
    "no_hearts": lambda a, b: a[1] != "H" and b[1] != "H",
}


def check_cards(p):
    assert len(DECK) == 52
    if p["quantity"] == "count" and p["draws"] > 1:  # hands (sets) or ordered deals, listed one by one
        deals = permutations(DECK, p["draws"]) if p["ordered"] else combinations(DECK, p["draws"])
        event = TWO_CARDS.get(p["event"], lambda *cards: True)
        return Fraction(sum(1 for cards in deals if event(*cards)))
    if p["draws"] == 1:
        return count_or_prob(p, DECK, ONE_CARD[p["event"]])
    pairs = product(DECK, repeat=2) if p["replacement"] else permutations(DECK, 2)
    return prob(pairs, lambda ab: TWO_CARDS[p["event"]](*ab))


def check_urns(p):
    balls = [(colour, i) for colour, count in p["counts"].items() for i in range(count)]  # labelled balls
    draws = product(balls, repeat=p["draws"]) if p["replacement"] else permutations(balls, p["draws"])
    c, d = p["colour"], p["other"]
    events = {
        "colour": lambda o: o[0][0] == c,
        "not_colour": lambda o: o[0][0] != c,
        "both": lambda o: o[0][0] == c and o[1][0] == c,
        "one_each": lambda o: {o[0][0], o[1][0]} == {c, d},
        "same": lambda o: o[0][0] == o[1][0],
        "first_then": lambda o: o[0][0] == c and o[1][0] == d,
        "second_is": lambda o: o[1][0] == c,
        "exactly_two": lambda o: [b[0] for b in o].count(c) == 2,
        "none_of": lambda o: all(b[0] != c for b in o),
        "all_different": lambda o: len({b[0] for b in o}) == 3,
        "at_least_one": lambda o: any(b[0] == c for b in o),
        "any": lambda o: True,
        "all_colour": lambda o: all(b[0] == c for b in o),
    }
    if p["quantity"] == "count":  # groups of labelled balls, order ignored
        return Fraction(sum(1 for g in combinations(balls, p["draws"]) if events[p["event"]](g)))
    return prob(draws, events[p["event"]])


def check_complement(p):
    kind = p["kind"]
    hits = {"at_least_one": lambda m, n: m >= 1, "none": lambda m, n: m == 0, "exactly_one": lambda m, n: m == 1,
            "not_all": lambda m, n: m < n}
    if kind == "dice":
        return prob(product(range(1, 7), repeat=p["n"]),
                    lambda rolls: hits[p["event"]](rolls.count(p["face"]), p["n"]))
    if kind == "coins":
        face = p["face"][0].upper()
        return prob(product("HT", repeat=p["n"]), lambda s: hits[p["event"]](s.count(face), p["n"]))
    if kind == "trials":
        return weighted(p["n"], F(p["p"]), lambda seq: hits[p["event"]](sum(seq), p["n"]))
    if kind == "batch":
        items = ["bad"] * p["bad"] + ["good"] * (p["total"] - p["bad"])
        return prob(combinations(range(p["total"]), p["k"]), lambda chosen: any(items[i] == "bad" for i in chosen))
    if kind == "weekday":
        return prob(product(range(7), repeat=p["k"]), lambda days: len(set(days)) < len(days))
    if kind == "independent":
        probs = [F(x) for x in p["probs"]]
        total = Fraction(0)
        for happened in product((True, False), repeat=len(probs)):
            if any(happened):
                total += math.prod((q if h else 1 - q for q, h in zip(probs, happened)), start=Fraction(1))
        return total
    raise AssertionError(p)


def check_conditional_bayes(p):
    kind = p["kind"]
    if kind == "formula":
        return F(p["p_ab"]) / F(p["p_a"])
    if kind == "union":  # inclusion-exclusion, then the definition
        return (F(p["p_a"]) + F(p["p_b"]) - F(p["p_union"])) / F(p["p_b"])
    if kind == "table":  # one record per person, then filter
        people = [(r, c) for r in range(2) for c in range(2) for _ in range(p["counts"][r][c])]
        axis = {"row": 0, "col": 1}
        if p["ask"] == "joint":  # both facts, out of everyone
            return prob(people, lambda x: all(x[axis[a]] == i for a, i in p["both"]))
        g_axis, g_index = p["given"]
        t_axis, t_index = p["target"]
        given = [x for x in people if x[axis[g_axis]] == g_index]
        return Fraction(sum(1 for x in given if x[axis[t_axis]] == t_index), len(given))
    if kind == "dice":
        tests = {"sum_eq": lambda o, v: o[0] + o[1] == v, "sum_ge": lambda o, v: o[0] + o[1] >= v,
                 "at_least_one": lambda o, v: v in o, "first_eq": lambda o, v: o[0] == v,
                 "doubles": lambda o, v: o[0] == o[1]}
        if p["ask"] == "joint":
            return prob(product(range(1, 7), repeat=2), lambda o: tests[p["given"]](o, p["given_value"])
                        and tests[p["event"]](o, p["event_value"]))
        given = [o for o in product(range(1, 7), repeat=2) if tests[p["given"]](o, p["given_value"])]
        return prob(given, lambda o: tests[p["event"]](o, p["event_value"]))
    if kind == "urn_seq":
        balls = [(c, i) for c, n in p["counts"].items() for i in range(n)]
        draws = list(permutations(balls, 2))
        c = p["colour"]
        if p["ask"] == "second_given_first":
            given = [d for d in draws if d[0][0] == p["first"]]
            return prob(given, lambda d: d[1][0] == c)
        given = [d for d in draws if c in (d[0][0], d[1][0])]
        return prob(given, lambda d: d[0][0] == d[1][0] == c)
    if kind == "two_urns":  # weight every (urn, ball) pair, then condition on red
        joint = {}
        for u, (red, blue) in enumerate(p["urns"]):
            for ball in ["red"] * red + ["blue"] * blue:
                joint[(u, ball)] = joint.get((u, ball), 0) + Fraction(1, 2) / (red + blue)
        return joint[(0, "red")] / (joint[(0, "red")] + joint[(1, "red")])
    if kind == "bayes":  # natural frequencies in a population of a million
        n = 10 ** 6
        sick = F(p["prior"]) * n
        sick_pos, healthy_pos = sick * F(p["sensitivity"]), (n - sick) * F(p["false_positive"])
        sick_neg, healthy_neg = sick - sick_pos, (n - sick) - healthy_pos
        assert all(x.denominator == 1 for x in (sick, sick_pos, healthy_pos))
        return {"total": (sick_pos + healthy_pos) / n, "positive": sick_pos / (sick_pos + healthy_pos),
                "negative": healthy_neg / (healthy_neg + sick_neg)}[p["ask"]]
    raise AssertionError(p)


def binomial_pmf(n: int, q: Fraction) -> dict:
    """Distribution of the number of successes, built one trial at a time (no formula)."""
    dist = {0: Fraction(1)}
    for _ in range(n):
        new = {}
        for k, w in dist.items():
            new[k + 1] = new.get(k + 1, 0) + w * q
            new[k] = new.get(k, 0) + w * (1 - q)
        dist = new
    return dist


def mean_var(dist: dict) -> tuple[Fraction, Fraction]:
    assert sum(dist.values()) == 1
    mean = sum(Fraction(x) * w for x, w in dist.items())
    return mean, sum((x - mean) ** 2 * w for x, w in dist.items())


def check_expectation_variance(p):
    kind = p["kind"]
    if kind == "die":
        dist = {face: Fraction(1, p["sides"]) for face in range(1, p["sides"] + 1)}
    elif kind == "pmf":
        dist = {}
        for v, w in zip(p["values"], p["probs"]):
            dist[v] = dist.get(v, 0) + F(w)
    elif kind == "binomial":
        dist = binomial_pmf(p["n"], F(p["p"]))
    elif kind == "linear":
        dist = {p["a"] * face + p["b"]: Fraction(1, 6) for face in range(1, 7)}
    elif kind == "two_dice":
        dist = {}
        for a, b in product(range(1, 7), repeat=2):
            x = a + b if p["combine"] == "sum" else a * b
            dist[x] = dist.get(x, 0) + Fraction(1, 36)
    elif kind == "dice_sum":
        dist = {}
        for rolls in product(range(1, 7), repeat=p["dice"]):
            dist[sum(rolls)] = dist.get(sum(rolls), 0) + Fraction(1, 6 ** p["dice"])
    else:
        raise AssertionError(p)
    mean, var = mean_var(dist)
    return mean if p["quantity"] == "mean" else var


def check_binomial(p):
    n, k = p["n"], p["k"]
    if p["event"] == "ways":  # success/failure sequences with exactly k successes
        return Fraction(sum(1 for seq in product((1, 0), repeat=n) if sum(seq) == k))
    if p["event"] == "order":  # the first k succeed, the rest fail
        return weighted(n, F(p["p"]), lambda seq: seq == (1,) * k + (0,) * (n - k))
    ok = {"eq": lambda s: s == k, "ge": lambda s: s >= k, "le": lambda s: s <= k}[p["event"]]
    return weighted(n, F(p["p"]), lambda seq: ok(sum(seq)))


CHECKERS = {
    "arithmetic": check_arithmetic,
    "order_of_operations": check_order_of_operations,
    "fractions": check_fractions,
    "percentages": check_percentages,
    "word_problem": check_word_problem,
    "permutations": check_permutations,
    "combinations": check_combinations,
    "dice": check_dice,
    "coins": check_coins,
    "cards": check_cards,
    "urns": check_urns,
    "complement": check_complement,
    "conditional_bayes": check_conditional_bayes,
    "expectation_variance": check_expectation_variance,
    "binomial": check_binomial,
}


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def by_family():
    return {f: [r for d in DIFFICULTIES for r in generate_problems(PER_DIFFICULTY, seed=7, families=[f], difficulty=d)]
            for f in FAMILIES}


def test_family_list():
    assert len(FAMILIES) >= 14
    assert len(set(FAMILIES)) == len(FAMILIES)
    assert DIFFICULTIES == ("easy", "medium", "hard")
    assert set(CHECKERS) == set(FAMILIES), "every family needs an independent checker here"


@pytest.mark.parametrize("family", FAMILIES)
def test_answers_are_right(by_family, family):
    records = by_family[family]
    assert len(records) == 3 * PER_DIFFICULTY
    for r in records:
        expected = CHECKERS[family](r["params"])
        assert parse_number(r["final_answer"]) == expected, (r["question"], r["answer"], r["params"])


@pytest.mark.parametrize("family", FAMILIES)
def test_record_format(by_family, family):
    for r in by_family[family]:
        assert set(r) == {"question", "answer", "final_answer", "family", "difficulty", "source", "params"}
        assert r["family"] == family and r["source"] == f"generated:{family}"
        assert r["difficulty"] in DIFFICULTIES
        assert all(isinstance(r[k], str) and r[k].strip() for k in ("question", "answer", "final_answer"))
        assert r["final_answer"] == format_final_answer(parse_number(r["final_answer"]))
        value = parse_number(r["final_answer"])
        last = r["answer"].splitlines()[-1]
        assert last in {answer_line(value, form) for form in ANSWER_FORMS}, r["answer"]
        if last != answer_line(value):  # a decimal or a percent only when the question asks for one
            assert re.search(r"decimal|percent", r["question"]), (r["question"], last)
            assert parse_number(last.split(":", 1)[1]) == value
        assert count_answer_lines(r["answer"]) == 1, r["answer"]
        assert 2 <= len(r["answer"].splitlines()) <= 5, r["answer"]
        assert "\\frac" not in r["answer"] and "$$" not in r["answer"]
        assert json.loads(json.dumps(r)) == r  # params are JSON-safe
        body = r["answer"].rsplit("\n", 1)[0]
        value = re.escape(r["final_answer"])
        assert re.search(rf"(?<![\d/.]){value}(?![\d/])", body), ("the working should reach the answer", r["answer"])


def numbers(text: str) -> list[int]:
    return sorted(int(x) for x in re.findall(r"\d+", text))


def test_params_describe_the_question(by_family):
    """The params that the checks use are the numbers the question shows (so checking params checks the question)."""
    for family in ("arithmetic", "order_of_operations", "fractions"):
        for r in by_family[family]:
            shown = numbers(r["params"]["expression"]) + r["params"].get("extra", [])  # extra: an irrelevant detail
            assert numbers(r["question"]) == sorted(shown), (r["question"], r["params"])
    for r in by_family["permutations"] + by_family["combinations"]:
        p = r["params"]
        for key in ("n", "k"):
            implicit = (key == "k" and p["kind"] == "ordered"  # "a captain and a vice-captain" is k = 2
                        or key == "n" and re.search(r"coin|die|true-or-false|PIN", r["question"]))  # 2, 6, 10
            if key in p and not implicit:
                assert p[key] in numbers(r["question"]), (r["question"], p)
    for r in by_family["coins"] + by_family["complement"]:
        if "n" in r["params"] and r["params"].get("kind") != "independent":
            assert r["params"]["n"] in numbers(r["question"]), r["question"]
    for r in by_family["urns"]:  # the counts, and the number of a detail to ignore if there is one
        extra = [r["params"]["extra"]] if r["params"].get("extra") is not None else []
        assert sorted([*r["params"]["counts"].values(), *extra]) == numbers(r["question"]), r["question"]
    for r in by_family["dice"]:
        if r["params"]["value"] is not None:
            assert r["params"]["value"] in numbers(r["question"]), r["question"]
    for r in by_family["binomial"]:
        k = r["params"]["k"]
        assert r["params"]["n"] in numbers(r["question"])
        assert k in numbers(r["question"]) or (k == 1 and " 1 " not in r["question"]) or k == 0
    for r in by_family["conditional_bayes"]:
        p = r["params"]
        if p["kind"] == "bayes":
            for key in ("prior", "sensitivity", "false_positive"):
                assert int(F(p[key]) * 100) in numbers(r["question"]), r["question"]
        if p["kind"] == "table":
            shown = Counter(numbers(r["question"]))
            assert Counter(x for row in p["counts"] for x in row) <= shown, r["question"]


@pytest.mark.parametrize("family", FAMILIES)
def test_phrasings_vary(by_family, family):
    skeletons = {re.sub(r"\d+", "#", r["question"]) for r in by_family[family]}
    assert len(skeletons) >= 4, sorted(skeletons)


PROBABILITY_FAMILIES = ("dice", "coins", "cards", "urns", "complement", "conditional_bayes", "expectation_variance",
                        "binomial")


@pytest.fixture(scope="module")
def many_of_family():
    return {f: generate_problems(400, seed=13, families=[f]) for f in PROBABILITY_FAMILIES}


def skeleton(question: str) -> str:
    """The question with numbers, names, colours and suits replaced by placeholders."""
    from helpers.problems import _COLOURS, _NAMES
    text = re.sub(r"\d+", "#", question)
    text = re.sub(r"\b(" + "|".join(_NAMES) + r")\b", "NAME", text)
    return re.sub(r"\b(" + "|".join(_COLOURS) + r")\b", "COLOUR", text)


@pytest.mark.parametrize("family", PROBABILITY_FAMILIES)
def test_at_least_eight_question_structures(many_of_family, family):
    """Frames differ in structure (setup first, question first, a detail to ignore, P(...), a bet), not in synonyms."""
    rows = many_of_family[family]
    frames = Counter(r["params"]["template"] for r in rows)
    assert len(frames) >= 8, frames
    assert len({skeleton(r["question"]) for r in rows}) >= 8
    # setup first and question first both occur, and so does a detail that plays no part
    starts = {r["question"].split()[0].lower() for r in rows}
    assert starts & {"what", "find", "how", "if"} and len(starts) >= 5, starts
    with_detail = [r for r in rows if r["params"].get("extra") is not None]
    assert len(with_detail) >= 20
    for r in with_detail:
        assert str(r["params"]["extra"]) in r["question"]


RULE_WORDS = {  # family -> (what a record is, by its params) -> the rule its solution must name
    "dice": lambda p: (r"faces" if p["quantity"] == "count" else r"equally likely.*favourable ÷ all"),
    "coins": lambda p: {"first_k": r"independent", "at_least_one": r"complement", "count_exactly": r"choosing which",
                        "sequences": r"Each flip has 2 outcomes.*a count"}.get(p["event"], r"Each flip has 2 outcomes"),
    "cards": lambda p: (r"equally likely" if p["draws"] == 1 and p["quantity"] == "probability" else
                        r"ignores order" if p["quantity"] == "count" and not p["ordered"] and p["draws"] > 1 else
                        r"Order matters" if p["quantity"] == "count" and p["draws"] > 1 else
                        r"how many cards" if p["quantity"] == "count" else r"(With|Without) replacement"),
    "urns": lambda p: (r"order does not matter" if p["quantity"] == "count" else r"equally likely" if p["draws"] == 1
                       else r"symmetry" if p["event"] == "second_is" else r"[Ww]ithout replacement" if p["draws"] == 3
                       else r"complement" if p["event"] == "at_least_one" else r"(With|Without) replacement"),
    "complement": lambda p: {"none": r"\"None\" means", "exactly_one": r"\"Exactly one\" means"}.get(
        p.get("event"), r"complement"),
    "conditional_bayes": lambda p: {"formula": r"definition of conditional probability",
                                    "union": r"Inclusion-exclusion", "two_urns": r"Bayes' rule",
                                    "urn_seq": r"Given the first|condition keeps"}.get(
        p["kind"], r"no condition" if p.get("ask") == "joint" else r"total probability" if p.get("ask") == "total"
        else r"Bayes' rule" if p["kind"] == "bayes" else r"condition keeps only"),
    "expectation_variance": lambda p: (
        r"expected value is|binomial|linear|Expectations add|independent" if p["quantity"] == "mean"
        else r"E\[X\^2\]|variances add|does not change the spread|binomial"),
    "binomial": lambda p: {"eq": r"in any order", "ge": r"adds the cases", "le": r"adds the cases",
                           "order": r"One fixed order", "ways": r"choosing which"}[p["event"]],
}


@pytest.mark.parametrize("family", PROBABILITY_FAMILIES)
def test_solutions_name_their_rule(many_of_family, family):
    for r in many_of_family[family]:
        body = r["answer"].rsplit("\n", 1)[0]
        assert re.search(RULE_WORDS[family](r["params"]), body, re.S), (r["question"], r["answer"], r["params"])


def test_look_alikes_sit_side_by_side(many_of_family):
    """Similar wording, different math: counts next to probabilities, with next to without replacement, ..."""
    def kinds(family, key):
        return Counter(str(r["params"].get(key)) for r in many_of_family[family])
    for family in ("dice", "cards", "urns"):
        assert {"count", "probability"} <= set(kinds(family, "quantity")), family
    assert {"sequences", "count_exactly", "exactly", "sequence", "at_least", "at_most"} <= set(kinds("coins", "event"))
    assert {"ways", "order", "eq", "ge", "le"} <= set(kinds("binomial", "event"))
    assert {"sum_eq", "product_eq", "diff_eq", "any"} <= set(kinds("dice", "event"))
    assert {"at_least_one", "none", "exactly_one", "not_all"} <= set(kinds("complement", "event"))
    assert {"joint", "given", "positive", "total"} <= set(kinds("conditional_bayes", "ask"))
    assert {"sum", "product"} <= set(kinds("expectation_variance", "combine"))
    for family in ("cards", "urns"):  # the same event drawn both ways
        both = {(r["params"]["event"], r["params"]["replacement"]) for r in many_of_family[family]
                if r["params"]["draws"] == 2 and r["params"]["quantity"] == "probability"}
        assert any((event, True) in both and (event, False) in both for event, _ in both), family
    counts = [r for r in many_of_family["coins"] if r["params"]["event"] == "sequences"]
    assert all(r["final_answer"] == str(2 ** r["params"]["n"]) for r in counts)


def test_some_questions_ask_for_a_fraction_but_most_do_not():
    rows = generate_problems(600, seed=3)
    asking = sum("fraction" in r["question"].lower() and r["family"] != "fractions" for r in rows)
    assert 0 < asking < len(rows) // 4


def test_solutions_are_short():
    rows = generate_problems(1500, seed=11)
    words = sorted(len(r["answer"].split()) for r in rows)
    p95 = words[int(0.95 * len(words))]
    assert p95 < 70, p95


def test_same_seed_same_output_and_different_seed_differs():
    a = generate_problems(120, seed=5)
    assert a == generate_problems(120, seed=5)
    assert a != generate_problems(120, seed=6)


def test_filters():
    rows = generate_problems(40, seed=1, families=["fractions", "arithmetic"], difficulty="hard")
    assert len(rows) == 40
    assert {r["family"] for r in rows} == {"fractions", "arithmetic"}
    assert {r["difficulty"] for r in rows} == {"hard"}
    mixed = generate_problems(90, seed=1, families=["arithmetic"])
    assert {r["difficulty"] for r in mixed} == set(DIFFICULTIES)


def test_bad_arguments():
    with pytest.raises(ValueError, match="no_such_family"):
        generate_problems(5, seed=0, families=["arithmetic", "no_such_family"])
    with pytest.raises(ValueError, match="arithmetic"):  # the message lists the valid names
        generate_problems(5, seed=0, families=["no_such_family"])
    with pytest.raises(ValueError, match="impossible"):
        generate_problems(5, seed=0, difficulty="impossible")
    with pytest.raises(ValueError):
        generate_problems(-1, seed=0)
    assert generate_problems(0, seed=0) == []


def test_no_duplicates_in_a_big_call():
    rows = generate_problems(3000, seed=2)
    assert len(rows) == 3000
    questions = [" ".join(r["question"].lower().split()) for r in rows]
    assert len(set(questions)) == len(questions)
    counts = Counter(r["family"] for r in rows)
    assert set(counts) == set(FAMILIES)
    assert min(counts.values()) >= 0.8 * 3000 / len(FAMILIES)  # close to balanced


def test_every_family_appears_in_a_small_call():
    for seed in range(5):
        rows = generate_problems(2 * len(FAMILIES), seed=seed)
        assert {r["family"] for r in rows} == set(FAMILIES)


def test_a_family_that_runs_dry_gives_way():
    # Easy permutations have only several hundred distinct questions. Asking for more
    # must not loop forever: alone it raises, and next to another family the
    # other family fills the remaining slots.
    with pytest.raises(ValueError, match="distinct"):
        generate_problems(2000, seed=0, families=["permutations"], difficulty="easy")
    rows = generate_problems(2000, seed=0, families=["permutations", "arithmetic"], difficulty="easy")
    assert len(rows) == 2000 and len({r["question"] for r in rows}) == 2000
    counts = Counter(r["family"] for r in rows)
    assert counts["arithmetic"] > counts["permutations"] > 100


# ---------------------------------------------------------------------------
# Template variety and named rules (the generator should teach the math, not one template)
# ---------------------------------------------------------------------------

VARIED_FAMILIES = ("arithmetic", "order_of_operations", "fractions", "percentages", "word_problem",
                   "permutations", "combinations")


def skeleton(question: str) -> str:
    """The question with numbers, fractions, expressions and names replaced by placeholders."""
    from helpers.problems import _NAMES
    text = re.sub(r"\b(" + "|".join(_NAMES) + r")\b", "NAME", question)
    text = re.sub(r"[\d(][\d\s/+\-×÷*^()]*[\d)]|\d", "#", text)  # a number, a fraction or a whole expression
    return re.sub(r"#(\s*#)+", "#", text)


@pytest.mark.parametrize("family", VARIED_FAMILIES)
def test_at_least_eight_templates(family):
    rows = generate_problems(400, seed=21, families=[family])
    skeletons = Counter(skeleton(r["question"]) for r in rows)
    assert len(skeletons) >= 8, sorted(skeletons)
    assert max(skeletons.values()) < 0.25 * len(rows), skeletons.most_common(3)  # no template dominates


# kind -> a phrase its worked solution must contain: the rule, named in words before it is applied.
RULE_WORDS = {
    "arithmetic": {"add": r"\badd\b", "subtract": r"subtract", "multiply": r"multiply",
                   "divide": r"divide"},
    "order_of_operations": {None: r"first|before|left to right"},
    "fractions": {"add": r"common denominator", "subtract": r"common denominator",
                  "multiply": r"Multiply the tops", "divide": r"reciprocal", "simplify": r"greatest common divisor",
                  "of_number": r"Of means multiply", "what_fraction": r"part over the whole",
                  "expression": r"common denominator"},
    "percentages": {"percent_of": r"out of 100", "change": r"discount is taken off|increase is added on|Each change",
                    "reverse": r"Work backwards", "fraction_change": r"change over the original",
                    "percent_change": r"change over the original, times 100",
                    "what_percent": r"part over the whole, times 100"},
    "word_problem": {"total": r"add", "difference": r"subtract", "groups": r"multiply",
                     "sharing": r"divide", "shopping": r"multiply", "change": r"paid minus the cost",
                     "distance": r"speed × time", "machines": r"rate|Rates", "ages_future": r"add the gap",
                     "ages_sum_diff": r"sum plus difference", "ages_ratio": r"equation",
                     "average_speed": r"total distance over total time", "work_together": r"rates add"},
    "permutations": {"arrange": r"order matters, so count arrangements", "ordered": r"ordered selection",
                     "repeat": r"2 outcomes|repeats are allowed", "word": r"divide by each repeat",
                     "together": r"one block", "circular": r"fix one seat"},
    "combinations": {"choose": r"Order does not matter", "handshakes": r"order does not matter",
                     "ordered_pairs": r"both orders", "grid": r"which steps go up",
                     "split": r"each group separately", "at_least": r"minus those with none"},
}


@pytest.mark.parametrize("family", VARIED_FAMILIES)
def test_solutions_name_their_rule(family):
    rows = generate_problems(400, seed=22, families=[family])
    key = {"arithmetic": "op", "fractions": "op", "order_of_operations": None}.get(family, "kind")
    seen = set()
    for r in rows:
        kind = r["params"].get(key) if key else None
        seen.add(kind)
        body = r["answer"].rsplit("\n", 1)[0]
        assert re.search(RULE_WORDS[family][kind], body, re.IGNORECASE), (kind, r["question"], r["answer"])
        assert len(body.splitlines()) <= 3, r["answer"]
    assert seen == set(RULE_WORDS[family]), "every kind should appear in 400 problems"


def test_counting_look_alikes_use_different_rules():
    """Sequences, arrangements, ordered and unordered selections and pairs all appear, each with its own rule."""
    rows = generate_problems(600, seed=23, families=["permutations", "combinations"])
    answers = {r["params"]["kind"]: r for r in rows}
    assert {"arrange", "ordered", "repeat", "choose", "handshakes", "ordered_pairs"} <= set(answers)
    coins = [r for r in rows if "coin" in r["question"] and r["params"]["kind"] == "repeat"]
    assert coins and all("P(" not in r["answer"] for r in coins)
    for r in coins:
        assert parse_number(r["final_answer"]) == 2 ** r["params"]["k"], r
    assert all("C(" in r["answer"] for r in rows if r["params"]["kind"] in ("choose", "handshakes"))
    assert all("P(" in r["answer"] for r in rows if r["params"]["kind"] in ("ordered", "ordered_pairs"))


def test_word_and_percent_look_alikes():
    words = generate_problems(300, seed=24, families=["word_problem"], difficulty="easy")
    assert {"total", "difference", "groups", "sharing"} <= {r["params"]["kind"] for r in words}
    pcts = generate_problems(300, seed=24, families=["percentages"], difficulty="medium")
    kinds = Counter(r["params"]["kind"] for r in pcts)
    assert {"percent_of", "change", "percent_change", "what_percent"} <= set(kinds)
    for r in pcts:
        if r["params"]["kind"] in ("percent_change", "what_percent"):  # asked "what percent", answered in percent
            assert r["answer"].splitlines()[-1].endswith("%"), r["answer"]


def test_distracting_details_are_recorded_and_ignored():
    rows = generate_problems(800, seed=25, families=list(VARIED_FAMILIES))
    with_extra = [r for r in rows if r["params"].get("extra")]
    assert len(with_extra) > 20
    for r in with_extra:
        for x in r["params"]["extra"]:
            assert x in numbers(r["question"])


def test_products_sums_and_reductions_are_written_one_step_at_a_time():
    """The worked solutions multiply, add and reduce one operation per step (a small model guessed whole products:
    ``2 × 2 × 2 × 2 = 8``), and every step is true."""
    from helpers.problems import _comb_text, _factorial_text, _prob_line, _product, _sum

    assert _product([8, 7, 6]) == "8 × 7 × 6 = 56 × 6 = 336"
    assert _product([2, 2, 2, 2]) == "2 × 2 × 2 × 2 = 4 × 2 × 2 = 8 × 2 = 16"
    assert _product([5]) == "5"
    assert _sum([15, 12, 25, 3]) == "15 + 12 + 25 + 3 = 27 + 25 + 3 = 52 + 3 = 55"
    assert _factorial_text(4) == "4! = 4 × 3 × 2 = 12 × 2 = 24"
    assert _factorial_text(1) == "1! = 1"
    assert _prob_line(6, 36) == "P = 6/36 = (6 ÷ 6)/(36 ÷ 6) = 1/6."
    assert _prob_line(5, 36) == "P = 5/36."
    assert _comb_text(9, 2) == "C(9, 2) = 9 × 8/2 = 72/2 = 36"
    assert _comb_text(8, 5) == ("C(8, 5) = (8 × 7 × 6)/(3 × 2), where 8 × 7 × 6 = 56 × 6 = 336 and 3 × 2 = 6, "
                                "so C(8, 5) = 336/6 = 56")
