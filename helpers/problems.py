"""Generated math problems with exact answers: the workbook's verifiable data.

Why this module exists: SFT needs worked solutions to imitate, and GRPO needs a
reward that says *exactly* whether an answer is right. Both are easy when the
problems are generated: every question here is built from random numbers whose
answer is computed exactly (``fractions.Fraction``, ``math.comb``/``math.perm``,
enumeration), so the reference can never be a typo. Each record carries

* ``question``: the problem, phrased with one of several templates per family
  (the trained model is later tested on wording that is not ours, so variety
  matters more than volume);
* ``answer``: a short worked solution (1-4 lines) whose last line is
  ``answer_line(value)``, e.g. ``Answer: 3/8`` (helpers.answers' convention);
* ``final_answer``: ``format_final_answer(value)``, what the rewards compare;
* ``family``, ``difficulty``, ``source`` (``generated:<family>``);
* ``params``: the inputs in machine-readable form (JSON-safe), so the tests can
  re-derive every answer independently (brute force where possible).

One small function per family, ``_family(rng, difficulty) -> dict``, all listed
in ``_REGISTRY``; ``generate_problems`` is the only public entry point.
Introduced in 01_data_prep.
"""

from __future__ import annotations

import math
import random
import re
from fractions import Fraction
from collections import Counter
from itertools import permutations, product

from helpers.answers import answer_line, format_as, format_final_answer, terminates

DIFFICULTIES = ("easy", "medium", "hard")

# How many fresh draws a family gets to produce a question not seen yet in this
# call before it is considered exhausted (at that difficulty).
_MAX_TRIES = 60


# ---------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------

def _f(value) -> str:
    """A number as the workbook writes it: ``7`` or a reduced ``3/8``."""
    return format_final_answer(Fraction(value))


def _record(question: str, lines: list[str], value, /, form: str = "fraction", **params) -> dict:
    """One problem: the question, the worked solution ending in the answer line, and its params.

    ``form`` is the form the question asks the answer in (``fraction``,
    ``decimal``, ``percent``; see ``_ask_form``); ``final_answer`` stays canonical.
    """
    value = Fraction(value)
    answer = "\n".join([*lines, answer_line(value, form)])
    return {"question": question, "answer": answer, "final_answer": format_final_answer(value),
            "params": params}


_FRACTION_HINTS = (
    "Give your answer as a fraction.",
    "Express the answer as a fraction in lowest terms.",
    "Write the result as a reduced fraction.",
)


def _hint(rng: random.Random, question: str, value, chance: float = 0.25) -> str:
    """Sometimes (not usually) ask for a fraction, only when the answer is one."""
    if Fraction(value).denominator != 1 and rng.random() < chance:
        return f"{question} {rng.choice(_FRACTION_HINTS)}"
    return question


# How a question may ask for a probability, and the form the answer line then takes. Used by every
# probability family so the model learns to read the requested form instead of assuming one.
_FORM_REQUESTS = {
    "decimal": ("Give the answer as a decimal.", "Write your answer as a decimal number.",
                "State the probability as a decimal."),
    "percent": ("Give the answer as a percentage.", "Express the chance as a percent.",
                "What is that as a percentage?"),
}


def _ask_form(rng: random.Random, question: str, value, chance: float = 0.3) -> tuple[str, str]:
    """``(question, form)``: sometimes a request for a decimal or a percent, only when that form is exact.

    The worked solution then ends with the conversion and ``Answer: 0.375`` or
    ``Answer: 37.5%`` (``answers.format_as``); otherwise the form is ``fraction``.
    """
    if terminates(value) and Fraction(value).denominator != 1 and rng.random() < chance:
        form = rng.choice(("decimal", "percent"))
        return f"{question} {rng.choice(_FORM_REQUESTS[form])}", form
    return question, "fraction"


def _prob_line(favourable: int, total: int) -> str:
    """``P = 6/36 = 1/6`` (or ``P = 6/36`` when it is already reduced)."""
    p = Fraction(favourable, total)
    raw = f"{favourable}/{total}"
    return f"P = {raw}." if raw == _f(p) else f"P = {raw} = {_f(p)}."


# ---------------------------------------------------------------------------
# arithmetic
# ---------------------------------------------------------------------------

def _place_parts(n: int) -> list[int]:
    """234 -> [200, 30, 4] (zero parts dropped)."""
    digits = str(n)
    parts = [int(d) * 10 ** (len(digits) - i - 1) for i, d in enumerate(digits)]
    return [p for p in parts if p] or [0]


def _add_steps(a: int, b: int, sign: int) -> str:
    """``456 + 378: 456 + 300 = 756, 756 + 70 = 826, 826 + 8 = 834.``"""
    op = "+" if sign > 0 else "-"
    parts = _place_parts(b)
    if len(parts) == 1:
        return f"{a} {op} {b} = {a + sign * b}."
    steps, cur = [], a
    for p in parts:
        steps.append(f"{cur} {op} {p} = {cur + sign * p}")
        cur += sign * p
    return f"{a} {op} {b}: " + ", ".join(steps) + "."


def _mul_steps(a: int, b: int) -> str:
    """``17 × 23 = 17 × 20 + 17 × 3 = 340 + 51 = 391.`` (splits the shorter factor).

    A one-digit factor splits the other one instead, so a small model only ever
    multiplies by a single digit or a round number:
    ``96 × 9 = 90 × 9 + 6 × 9 = 810 + 54 = 864.``, ``9 × 96 = 9 × 90 + 9 × 6 = ...``
    """
    big, small = (a, b) if len(str(a)) >= len(str(b)) else (b, a)
    parts = _place_parts(small)
    if len(parts) == 1:
        split = _place_parts(big)
        if len(split) == 1:
            return f"{a} × {b} = {a * b}."
        terms = " + ".join(f"{p} × {small}" if a == big else f"{small} × {p}" for p in split)
        values = " + ".join(str(p * small) for p in split)
        return f"{a} × {b} = {terms} = {values} = {a * b}."
    terms = " + ".join(f"{big} × {p}" for p in parts)
    values = " + ".join(str(big * p) for p in parts)
    return f"{a} × {b} = {terms} = {values} = {a * b}."


def _div_steps(total: int, d: int, q: int) -> str:
    """``391 ÷ 17``: take away 17 × 20 = 340, leaving 51 = 17 × 3, so the quotient is 23."""
    high, low = q - q % 10, q % 10
    if high == 0 or low == 0:
        return f"{total} ÷ {d} = {q}, because {d} × {q} = {total}."
    rest = total - d * high
    return (f"{d} × {high} = {d * high}, leaving {total} - {d * high} = {rest}; "
            f"{d} × {low} = {rest}. So {total} ÷ {d} = {high} + {low} = {q}.")


_ADD_TEMPLATES = (
    "What is {a} plus {b}?",
    "Compute {a} + {b}.",
    "Add {a} and {b}.",
    "Find the sum of {a} and {b}.",
    "A library has {a} books and buys {b} more. How many books does it have now?",
    "{a} + {b} = ?",
)
_SUB_TEMPLATES = (
    "What is {a} minus {b}?",
    "Compute {a} - {b}.",
    "Subtract {b} from {a}.",
    "Find the difference between {a} and {b}.",
    "A tank holds {a} litres of water and {b} litres are drained. How many litres remain?",
    "How much greater is {a} than {b}?",
)
_MUL_TEMPLATES = (
    "What is {a} times {b}?",
    "Compute {a} × {b}.",
    "Multiply {a} by {b}.",
    "Find the product of {a} and {b}.",
    "A box holds {b} rows of {a} apples. How many apples are in the box?",
    "Calculate {a} * {b}.",
)
_DIV_TEMPLATES = (
    "What is {a} divided by {b}?",
    "Compute {a} ÷ {b}.",
    "Divide {a} by {b}.",
    "{a} stickers are shared equally among {b} children. How many stickers does each child get?",
    "How many times does {b} go into {a}?",
    "Calculate {a} / {b}.",
)


def _arithmetic(rng: random.Random, difficulty: str) -> dict:
    """One of + - × ÷ (exact division) on multi-digit numbers, with place-value steps."""
    op = rng.choice(("add", "subtract", "multiply", "divide"))
    size = {"easy": (10, 99), "medium": (100, 999), "hard": (1000, 9999)}[difficulty]
    if op in ("add", "subtract"):
        a, b = rng.randint(*size), rng.randint(*size)
        if op == "subtract":
            a, b = max(a, b), min(a, b)
            if a == b:
                a += rng.randint(1, 9)
        sign = 1 if op == "add" else -1
        value = a + sign * b
        templates = _ADD_TEMPLATES if op == "add" else _SUB_TEMPLATES
        q = rng.choice(templates).format(a=a, b=b)
        return _record(q, [_add_steps(a, b, sign)], value, op=op, a=a, b=b,
                       expression=f"{a} {'+' if sign > 0 else '-'} {b}")
    ranges = {"easy": ((2, 9), (11, 99)), "medium": ((11, 99), (11, 99)),
              "hard": ((12, 99), (101, 999))}[difficulty]
    x, y = rng.randint(*ranges[0]), rng.randint(*ranges[1])
    if rng.random() < 0.5:
        x, y = y, x
    if op == "multiply":
        q = rng.choice(_MUL_TEMPLATES).format(a=x, b=y)
        return _record(q, [_mul_steps(x, y)], x * y, op=op, a=x, b=y, expression=f"{x} * {y}")
    divisor, quotient = min(x, y), max(x, y)
    if difficulty == "hard":
        divisor, quotient = rng.randint(11, 49), rng.randint(21, 199)
    total = divisor * quotient
    q = rng.choice(_DIV_TEMPLATES).format(a=total, b=divisor)
    return _record(q, [_div_steps(total, divisor, quotient)], quotient, op=op, a=total, b=divisor,
                   expression=f"{total} / {divisor}")


# ---------------------------------------------------------------------------
# order_of_operations
# ---------------------------------------------------------------------------
# An expression is a token list: Fraction numbers and "+ - * / ^ ( )". The
# solution reduces it one operation at a time (innermost brackets, then powers,
# then × ÷ left to right, then + - left to right) and prints each stage.

_SHOW = {"*": "×", "/": "÷"}
_APPLY = {
    "+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y,
    "/": lambda x, y: x / y, "^": lambda x, y: x ** int(y),
}


def _tokenize(expr: str) -> list:
    return [Fraction(t) if t[0].isdigit() else t for t in re.findall(r"\d+|[-+*/^()]", expr)]


def _reduce_flat(tokens: list) -> list:
    """One operation in a bracket-free token list (num op num op ...)."""
    for ops in (("^",), ("*", "/"), ("+", "-")):
        for i, tok in enumerate(tokens):
            if isinstance(tok, str) and tok in ops:
                result = _APPLY[tok](tokens[i - 1], tokens[i + 1])
                return tokens[:i - 1] + [result] + tokens[i + 2:]
    return tokens


def _reduce_once(tokens: list) -> list:
    if ")" in tokens:
        j = tokens.index(")")
        i = max(k for k in range(j) if tokens[k] == "(")
        inner = tokens[i + 1:j]
        if len(inner) > 1:
            inner = _reduce_flat(inner)
        if len(inner) == 1:
            return tokens[:i] + inner + tokens[j + 1:]
        return tokens[:i + 1] + inner + tokens[j:]
    return _reduce_flat(tokens)


def _render(tokens: list, symbols: dict | None = None) -> str:
    symbols = _SHOW if symbols is None else symbols
    text = " ".join(_f(t) if isinstance(t, Fraction) else symbols.get(t, t) for t in tokens)
    return text.replace("( ", "(").replace(" )", ")").replace(" ^ ", "^")


def _evaluate_steps(expr: str) -> tuple[list[str], Fraction]:
    """Every stage of the reduction, rendered, and the value."""
    tokens = _tokenize(expr)
    stages = [_render(tokens)]
    while len(tokens) > 1:
        tokens = _reduce_once(tokens)
        stages.append(_render(tokens))
    return stages, tokens[0]


def _ooo_expression(rng: random.Random, difficulty: str) -> str:
    """A random expression (our own * / ^ notation) whose divisions are exact."""
    r = rng.randint
    if difficulty == "easy":
        kind = rng.randrange(5)
        if kind == 0:
            return f"{r(2, 20)} + {r(2, 9)} * {r(2, 9)}"
        if kind == 1:
            return f"{r(2, 9)} * {r(2, 9)} - {r(1, 20)}"
        if kind == 2:
            return f"({r(2, 12)} + {r(2, 12)}) * {r(2, 6)}"
        if kind == 3:
            c = r(2, 9)
            return f"{r(10, 40)} - {c * r(2, 5)} / {c}"
        return f"{r(20, 60)} - {r(2, 9)} * {r(2, 5)}"
    if difficulty == "medium":
        kind = rng.randrange(5)
        if kind == 0:
            return f"{r(5, 30)} + {r(2, 9)} * {r(2, 9)} - {r(2, 15)}"
        if kind == 1:
            c = r(6, 15)
            return f"({r(2, 12)} + {r(2, 12)}) * ({c} - {r(1, c - 1)})"
        if kind == 2:
            d = r(2, 9)
            return f"{r(2, 12)} * {r(2, 9)} + {d * r(2, 9)} / {d}"
        if kind == 3:
            return f"{r(3, 12)}^2 - {r(2, 9)} * {r(2, 9)}"
        a = r(6, 20)
        return f"({a} - {r(1, a - 1)})^2 + {r(2, 20)}"
    kind = rng.randrange(5)
    if kind == 0:
        e = r(2, 9)
        return f"{r(2, 9)} * ({r(2, 15)} + {r(2, 15)}) - {e * r(2, 12)} / {e}"
    if kind == 1:
        a = r(5, 15)
        return f"({a} - {r(1, a - 1)})^2 + {r(2, 12)} * {r(2, 12)} - {r(5, 40)}"
    if kind == 2:
        e = r(2, 6)
        c = r(8, 20)
        return f"{r(2, 30)} + {e * r(2, 6)} * ({c} - {r(1, c - 1)}) / {e}"
    if kind == 3:
        c, b = r(3, 12), r(2, 9)
        a = c * r(b * b // c + 1, b * b // c + 8) - b * b
        return f"({a} + {b}^2) / {c} + {r(2, 9)} * {r(2, 9)}"
    return f"{r(2, 5)}^3 - ({r(2, 9)} + {r(2, 9)}) * {r(2, 6)} + {r(2, 30)}"


_OOO_TEMPLATES = (
    ("Evaluate {e}.", _SHOW),
    ("What is {e}?", _SHOW),
    ("Compute the value of {e}.", _SHOW),
    ("Using the order of operations, find {e}.", _SHOW),
    ("Simplify: {e}", {}),
    ("Calculate {e}, remembering which operations come first.", {}),
    ("What number does {e} equal?", _SHOW),
)


def _order_of_operations(rng: random.Random, difficulty: str) -> dict:
    """Brackets, powers, × ÷, + - in the right order; each reduction shown."""
    expr = _ooo_expression(rng, difficulty)
    stages, value = _evaluate_steps(expr)
    template, symbols = rng.choice(_OOO_TEMPLATES)
    q = template.format(e=_render(_tokenize(expr), symbols))
    line = " = ".join(stages) + "."
    if difficulty != "easy" and rng.random() < 0.5:
        line = "Brackets, then powers, then × ÷, then + -: " + line
    return _record(q, [line], value, expression=expr.replace("^", "**"))


# ---------------------------------------------------------------------------
# fractions
# ---------------------------------------------------------------------------

def _fr(n: int, d: int) -> str:
    return f"{n}/{d}"


def _proper(rng: random.Random, dmax: int) -> Fraction:
    d = rng.randint(2, dmax)
    return Fraction(rng.randint(1, d - 1), d)


def _add_fraction_steps(terms: list[Fraction], signs: list[int]) -> tuple[str, Fraction]:
    """``1/3 + 1/4 = 4/12 + 3/12 = 7/12`` over the least common denominator."""
    lcd = math.lcm(*(t.denominator for t in terms))

    def join(items: list[str]) -> str:
        return " ".join(x if i == 0 else f"{'+' if s > 0 else '-'} {x}" for i, (x, s) in enumerate(zip(items, signs)))

    first = join([_f(t) for t in terms])
    conv = join([_fr(t.numerator * lcd // t.denominator, lcd) for t in terms])
    num = sum(s * t.numerator * lcd // t.denominator for t, s in zip(terms, signs))
    value = Fraction(num, lcd)
    parts = [first]
    if conv != first:
        parts.append(conv)
    raw = _fr(num, lcd)
    parts.append(raw)
    if raw != _f(value):
        parts.append(_f(value))
    return " = ".join(parts), value


def _mul_fraction_steps(a: Fraction, b: Fraction, divide: bool = False) -> tuple[str, Fraction]:
    parts = [f"{_f(a)} {'÷' if divide else '×'} {_f(b)}"]
    if divide:
        b = 1 / b
        parts.append(f"{_f(a)} × {_f(b)}")
    num, den = a.numerator * b.numerator, a.denominator * b.denominator
    parts.append(f"({a.numerator} × {b.numerator})/({a.denominator} × {b.denominator})")
    value = Fraction(num, den)
    parts.append(_fr(num, den))
    if _fr(num, den) != _f(value):
        parts.append(_f(value))
    return " = ".join(parts), value


_FRACTION_TEMPLATES = {
    "add": ("What is {a} + {b}?", "Add {a} and {b}.", "Find the sum of {a} and {b}.",
            "A recipe uses {a} cup of milk and {b} cup of water. How many cups of liquid is that in total?",
            "Compute {a} + {b} and simplify."),
    "subtract": ("What is {a} - {b}?", "Subtract {b} from {a}.", "Find the difference {a} - {b}.",
                 "You have {a} of a pizza and eat {b} of a pizza. How much pizza is left?",
                 "How much larger is {a} than {b}?"),
    "multiply": ("What is {a} × {b}?", "Multiply {a} by {b}.", "What is {b} of {a}?",
                 "Find the product of {a} and {b}.", "Compute {a} * {b} in lowest terms."),
    "divide": ("What is {a} ÷ {b}?", "Divide {a} by {b}.", "Compute {a} / ({b}).",
               "What do you get when {a} is divided by {b}?", "How many times does {b} fit into {a}?"),
    "simplify": ("Simplify {a}.", "Reduce {a} to lowest terms.", "Write {a} in simplest form.",
                 "What is {a} in lowest terms?", "A class has {n} girls out of {d} students. "
                 "What fraction of the class are girls, in simplest form?"),
}


def _fractions(rng: random.Random, difficulty: str) -> dict:
    """Add, subtract, multiply, divide and simplify fractions (hard: three terms or mixed steps)."""
    dmax = {"easy": 6, "medium": 12, "hard": 12}[difficulty]
    op = rng.choice(("add", "subtract", "multiply", "divide", "simplify"))
    if difficulty == "hard" and op != "simplify" and rng.random() < 0.6:
        a, b, c = _proper(rng, dmax), _proper(rng, dmax), _proper(rng, dmax)
        while len({a, b, c}) < 3:
            b, c = _proper(rng, dmax), _proper(rng, dmax)
        if rng.random() < 0.5:
            signs = [1, 1, -1] if a + b > c else [1, 1, 1]
            line, value = _add_fraction_steps([a, b, c], signs)
            shown = f"{_f(a)} + {_f(b)} {'-' if signs[2] < 0 else '+'} {_f(c)}"
            expr = f"({_f(a)}) + ({_f(b)}) {'-' if signs[2] < 0 else '+'} ({_f(c)})"
        else:
            inner, s = _add_fraction_steps([a, b], [1, 1])
            line2, value = _mul_fraction_steps(s, c)
            line = f"{inner}; then {line2}"
            shown = f"({_f(a)} + {_f(b)}) × {_f(c)}"
            expr = f"(({_f(a)}) + ({_f(b)})) * ({_f(c)})"
        q = rng.choice(("What is {e}?", "Compute {e}.", "Evaluate {e} and simplify.",
                        "Simplify {e}.", "Find the value of {e}.")).format(e=shown)
        return _record(q, [line + "."], value, op="expression", expression=expr)
    if op == "simplify":
        base = _proper(rng, dmax if difficulty == "easy" else 15)
        k = rng.randint(2, {"easy": 5, "medium": 9, "hard": 15}[difficulty])
        n, d = base.numerator * k, base.denominator * k
        g = math.gcd(n, d)
        line = f"gcd({n}, {d}) = {g}, so {n}/{d} = ({n} ÷ {g})/({d} ÷ {g}) = {_f(base)}."
        q = rng.choice(_FRACTION_TEMPLATES["simplify"]).format(a=_fr(n, d), n=n, d=d)
        return _record(q, [line], base, op="simplify", a=_fr(n, d), expression=f"({n}/{d})")
    a, b = _proper(rng, dmax), _proper(rng, dmax)
    if difficulty != "easy" and rng.random() < 0.4:
        a += rng.randint(1, 3)
    if op == "subtract" and a < b:
        a, b = b, a
    if op == "subtract" and a == b:
        a += 1
    if op in ("add", "subtract"):
        line, value = _add_fraction_steps([a, b], [1, 1 if op == "add" else -1])
    else:
        line, value = _mul_fraction_steps(a, b, divide=op == "divide")
    q = rng.choice(_FRACTION_TEMPLATES[op]).format(a=_f(a), b=_f(b))
    sym = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/"}[op]
    return _record(q, [line + "."], value, op=op, a=_f(a), b=_f(b), expression=f"({_f(a)}) {sym} ({_f(b)})")


# ---------------------------------------------------------------------------
# percentages
# ---------------------------------------------------------------------------

def _pct(p: Fraction) -> str:
    """25 -> '25', 25/2 -> '12.5' (percent values in questions are written as decimals)."""
    p = Fraction(p)
    if p.denominator == 1:
        return str(p.numerator)
    return f"{float(p):g}"


def _percentages(rng: random.Random, difficulty: str) -> dict:
    """Percent of a number, increases, discounts, successive changes, reverse percentages, change as a fraction."""
    kinds = {"easy": ("percent_of", "discount", "increase"),
             "medium": ("percent_of", "discount", "increase", "fraction_change"),
             "hard": ("percent_of", "successive", "reverse", "fraction_change")}[difficulty]
    kind = rng.choice(kinds)
    if kind == "percent_of":
        if difficulty == "easy":
            p = Fraction(rng.choice((10, 20, 25, 50, 75, 5)))
            base = rng.randint(1, 20) * 20
        elif difficulty == "medium":
            p = Fraction(rng.choice((15, 35, 45, 60, 12, 8, 40, 30, 64)))
            base = rng.randint(2, 40) * (25 if p % 5 else 20)
        else:
            p = rng.choice((Fraction(25, 2), Fraction(35, 2), Fraction(15), Fraction(45), Fraction(85), Fraction(6)))
            base = rng.randint(11, 99)
        value = p * base / 100
        q = rng.choice((
            "What is {p}% of {n}?", "Find {p} percent of {n}.", "Compute {p}% of {n}.",
            "A survey of {n} people found that {p}% prefer tea. How many people is that?"
            if value.denominator == 1 else "How much is {p}% of {n}?",
            "A school has {n} students and {p}% of them walk to school. How many students walk?"
            if value.denominator == 1 else "Take {p}% of {n}. What do you get?",
        )).format(p=_pct(p), n=base)
        line = f"{_pct(p)}% of {base} = {_pct(p)}/100 × {base} = {_f(value)}."
        return _record(_hint(rng, q, value), [line], value, kind=kind, base=base, percent=_pct(p))
    if kind in ("discount", "increase"):
        p = Fraction(rng.choice((10, 20, 25, 50) if difficulty == "easy" else (15, 30, 35, 40, 60, 5, 45)))
        base = rng.randint(2, 30) * 20
        change = p * base / 100
        if kind == "discount":
            value = base - change
            q = rng.choice((
                "A jacket costs ${n}. It is on sale for {p}% off. What is the sale price in dollars?",
                "A price of ${n} is reduced by {p}%. What is the new price?",
                "What is the final cost of a ${n} item after a {p}% discount?",
                "A store takes {p}% off a ${n} pair of shoes. How much do the shoes cost now?",
                "{n} decreased by {p}% is what number?",
            )).format(n=base, p=_pct(p))
            line = (f"The discount is {_pct(p)}% of {base} = {_f(change)}, "
                    f"so the price is {base} - {_f(change)} = {_f(value)}.")
            return _record(q, [line], value, kind="change", base=base, changes=[str(-p)])
        value = base + change
        q = rng.choice((
            "A town of {n} people grows by {p}%. What is the new population?",
            "Increase {n} by {p}%.",
            "A ${n} bill has a {p}% tip added. What is the total in dollars?",
            "What is {n} after a {p}% increase?",
            "A salary of ${n} per week rises by {p}%. What is the new weekly salary?",
        )).format(n=base, p=_pct(p))
        line = (f"The increase is {_pct(p)}% of {base} = {_f(change)}, "
                f"so the new value is {base} + {_f(change)} = {_f(value)}.")
        return _record(q, [line], value, kind="change", base=base, changes=[str(p)])
    if kind == "fraction_change":
        old = rng.randint(2, 30) * (5 if difficulty == "medium" else 3)
        new = old + rng.choice((-1, 1)) * rng.randint(1, old - 1)
        diff = new - old
        value = Fraction(abs(diff), old)
        word = "increased" if diff > 0 else "decreased"
        q = rng.choice((
            "A price {w} from ${a} to ${b}. The change is what fraction of the original price?",
            "A population goes from {a} to {b}. By what fraction of its starting size did it change?",
            "The number of visitors {w} from {a} to {b}. Express the change as a fraction of the original number.",
            "A value changes from {a} to {b}. What fraction of {a} is the size of that change?",
        )).format(a=old, b=new, w=word)
        line = f"The change is {abs(diff)} out of {old}, so the fraction is {abs(diff)}/{old} = {_f(value)}."
        if _f(value) == f"{abs(diff)}/{old}":
            line = f"The change is {abs(diff)} out of the original {old}, so the fraction is {_f(value)}."
        return _record(_hint(rng, q, value), [line], value, kind=kind, old=old, new=new)
    if kind == "successive":
        p1 = rng.choice((10, 20, 25, 50, 40))
        p2 = rng.choice((10, 20, 25, 50, 40))
        up = rng.random() < 0.5
        base = rng.randint(1, 10) * 200
        c1 = p1 if up else -p1
        c2 = -p2 if up else p2
        mid = Fraction(base) * (100 + c1) / 100
        value = mid * (100 + c2) / 100
        q = rng.choice((
            "A price of ${n} is raised by {p1}% and then lowered by {p2}%. What is the final price?",
            "A ${n} item goes up {p1}%, then the new price goes down {p2}%. What does it cost now?",
            "Start with {n}. Increase it by {p1}%, then decrease the result by {p2}%. What number do you get?",
            "A stock worth ${n} gains {p1}% in one month and loses {p2}% the next. What is it worth at the end?",
        ) if up else (
            "A price of ${n} is cut by {p1}% and then raised by {p2}%. What is the final price?",
            "A ${n} item is discounted {p1}%, then the sale price is marked up {p2}%. What does it cost now?",
            "Start with {n}. Decrease it by {p1}%, then increase the result by {p2}%. What number do you get?",
            "A stock worth ${n} loses {p1}% in one month and gains {p2}% the next. What is it worth at the end?",
        )).format(n=base, p1=p1, p2=p2)
        line = (f"{base} × {100 + c1}/100 = {_f(mid)}; then {_f(mid)} × {100 + c2}/100 = {_f(value)}.")
        return _record(q, [line], value, kind="change", base=base, changes=[str(c1), str(c2)])
    # reverse: the price after a change is known, find the original
    p = rng.choice((10, 20, 25, 40, 50, 60, 75, 15))
    up = rng.random() < 0.4
    c = p if up else -p
    original = rng.randint(2, 40) * 20
    final = Fraction(original) * (100 + c) / 100
    if final.denominator != 1:
        original = rng.randint(2, 40) * 100
        final = Fraction(original) * (100 + c) / 100
    q = rng.choice((
        "After a {p}% {w}, a coat costs ${f}. What was the original price?",
        "A number {v} by {p}% becomes {f}. What was the number?",
        "The price of a bike is ${f} after a {p}% {w}. How much did it cost before?",
        "{f} is what you get after a {p}% {w}. What was the starting amount?",
    )).format(p=p, f=_f(final), w="increase" if up else "discount", v="increased" if up else "decreased")
    line = f"The new price is {100 + c}% of the original, so the original is {_f(final)} × 100/{100 + c} = {original}."
    return _record(q, [line], original, kind="reverse", final=_f(final), changes=[str(c)])


# ---------------------------------------------------------------------------
# word_problem
# ---------------------------------------------------------------------------

_NAMES = ("Ana", "Ben", "Chloe", "David", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jack", "Kai", "Lena",
          "Maya", "Noah", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tariq")
_ITEMS = (("notebook", "notebooks"), ("pen", "pens"), ("apple", "apples"), ("ticket", "tickets"),
          ("sandwich", "sandwiches"), ("candle", "candles"), ("mug", "mugs"), ("book", "books"))


def _two_names(rng: random.Random) -> tuple[str, str]:
    a, b = rng.sample(_NAMES, 2)
    return a, b


def _word_problem(rng: random.Random, difficulty: str) -> dict:
    """Everyday stories: shopping and change, sharing, distance and speed, ages, work rates."""
    kinds = {"easy": ("shopping", "sharing", "distance", "ages_future", "machines"),
             "medium": ("change", "sharing", "distance", "ages_sum_diff", "machines"),
             "hard": ("change", "ages_ratio", "average_speed", "work_together")}[difficulty]
    kind = rng.choice(kinds)
    name, other = _two_names(rng)
    r = rng.randint
    if kind in ("shopping", "change"):
        (i1, i1s), (i2, i2s) = rng.sample(_ITEMS, 2)
        items = [[r(2, 9), r(2, 12)]]
        if kind == "change":
            items.append([r(2, 6), r(2, 15)])
        total = sum(c * p for c, p in items)
        parts = [f"{c} × ${p} = ${c * p}" for c, p in items]
        if kind == "shopping":
            (c, p), = items
            q = rng.choice((
                "{n} buys {c} {its} at ${p} each. How much does {n} spend in dollars?",
                "One {it} costs ${p}. What is the cost of {c} {its}?",
                "How many dollars do {c} {its} cost if each costs ${p}?",
                "A shop sells {its} for ${p} apiece. {n} buys {c}. What is the total?",
            )).format(n=name, c=c, p=p, it=i1, its=i1s)
            return _record(q, [f"{c} × ${p} = ${total}."], total, kind="shopping", items=items)
        bill = max(20, -(-total // 10) * 10 + rng.choice((0, 10, 20, 30)))
        if bill == total:
            bill += 10
        value = bill - total
        (c1, p1), (c2, p2) = items
        q = rng.choice((
            "{n} buys {c1} {a} at ${p1} each and {c2} {b} at ${p2} each, paying with a ${bill} bill. "
            "How much change does {n} get?",
            "{c1} {a} cost ${p1} each and {c2} {b} cost ${p2} each. How much change is left from ${bill} "
            "after buying them all?",
            "With ${bill}, {n} pays for {c1} {a} (${p1} each) and {c2} {b} (${p2} each). How many dollars "
            "remain?",
            "What change should {n} receive from ${bill} for {c1} {a} priced at ${p1} and {c2} {b} priced "
            "at ${p2} each?",
        )).format(n=name, c1=c1, p1=p1, c2=c2, p2=p2, a=i1s, b=i2s, bill=bill)
        line = f"Cost: {parts[0]} and {parts[1]}, total ${total}. Change: {bill} - {total} = ${value}."
        return _record(q, [line], value, kind="change", items=items, bill=bill)
    if kind == "sharing":
        people, each = r(2, 9), r(3, 15)
        given = 0 if difficulty == "easy" else r(2, 20)
        total = people * each + given
        if given == 0:
            q = rng.choice((
                "{t} sweets are shared equally among {k} children. How many does each child get?",
                "{n} splits {t} marbles evenly into {k} bags. How many marbles go in each bag?",
                "If {t} dollars are divided equally between {k} friends, how much does each friend get?",
                "A teacher puts {t} chairs into {k} equal rows. How many chairs are in each row?",
            )).format(t=total, k=people, n=name)
            return _record(q, [f"{total} ÷ {people} = {each}."], each, kind="sharing", total=total,
                           given=0, people=people)
        q = rng.choice((
            "{n} has {t} stickers, gives {g} to {o}, and shares the rest equally among {k} friends. "
            "How many stickers does each friend get?",
            "A baker makes {t} cookies, keeps {g}, and packs the rest into {k} boxes with the same number "
            "in each. How many cookies are in each box?",
            "{t} pencils minus {g} broken ones are handed out equally to {k} students. How many pencils does "
            "each student receive?",
            "After spending ${g} of ${t}, {n} splits the remaining money equally among {k} envelopes. "
            "How many dollars go in each envelope?",
        )).format(n=name, o=other, t=total, g=given, k=people)
        line = f"{total} - {given} = {total - given} are left, and {total - given} ÷ {people} = {each}."
        return _record(q, [line], each, kind="sharing", total=total, given=given, people=people)
    if kind == "distance":
        legs = [[r(3, 12) * 5, r(2, 5)]]
        if difficulty != "easy":
            legs.append([r(3, 12) * 5, r(2, 4)])
        value = sum(s * t for s, t in legs)
        if len(legs) == 1:
            (s, t), = legs
            q = rng.choice((
                "A car travels at {s} km/h for {t} hours. How far does it go in km?",
                "{n} cycles for {t} hours at a steady {s} km per hour. What distance does {n} cover?",
                "How many kilometres does a train moving at {s} km/h travel in {t} hours?",
                "A boat sails for {t} hours at {s} kilometres per hour. How many kilometres does it sail?",
            )).format(s=s, t=t, n=name)
            return _record(q, [f"Distance = speed × time = {s} × {t} = {value} km."], value,
                           kind="distance", legs=legs)
        (s1, t1), (s2, t2) = legs
        q = rng.choice((
            "A bus drives {t1} hours at {s1} km/h and then {t2} hours at {s2} km/h. How many km does it travel?",
            "{n} runs a delivery route: {t1} h at {s1} km/h followed by {t2} h at {s2} km/h. What is the total "
            "distance in kilometres?",
            "What total distance is covered by driving at {s1} km/h for {t1} hours and then at {s2} km/h for "
            "{t2} hours?",
            "A truck goes {s1} km per hour for {t1} hours, then slows to {s2} km per hour for {t2} more hours. "
            "How far did it go?",
        )).format(s1=s1, t1=t1, s2=s2, t2=t2, n=name)
        line = f"{s1} × {t1} = {s1 * t1} km and {s2} × {t2} = {s2 * t2} km, so {s1 * t1} + {s2 * t2} = {value} km."
        return _record(q, [line], value, kind="distance", legs=legs)
    if kind == "machines":
        rate, machines, hours = r(3, 25), r(2, 6), r(2, 8)
        if difficulty == "easy":
            machines = 1
        value = rate * machines * hours
        if machines == 1:
            q = rng.choice((
                "A machine makes {r} toys per hour. How many toys does it make in {h} hours?",
                "{n} types {r} words a minute. How many words does {n} type in {h} minutes?",
                "A printer prints {r} pages each minute. How many pages does it print in {h} minutes?",
                "A tap drips {r} drops a second. How many drops fall in {h} seconds?",
            )).format(r=rate, h=hours, n=name)
            return _record(q, [f"{rate} × {hours} = {value}."], value, kind="machines", rate=rate,
                           machines=1, hours=hours)
        template, unit = rng.choice((
            ("Each of {m} machines makes {r} toys per hour. How many toys do they make together in {h} hours?",
             "hour"),
            ("{m} printers each print {r} pages per minute. How many pages do they print in {h} minutes?",
             "minute"),
            ("A farm has {m} workers who each pick {r} baskets an hour. How many baskets do they pick in "
             "{h} hours?", "hour"),
            ("If one pump moves {r} litres per minute, how many litres do {m} pumps move in {h} minutes?",
             "minute"),
        ))
        q = template.format(m=machines, r=rate, h=hours)
        line = (f"Together they do {machines} × {rate} = {machines * rate} per {unit}, "
                f"and {machines * rate} × {hours} = {value}.")
        return _record(q, [line], value, kind="machines", rate=rate, machines=machines, hours=hours)
    if kind == "ages_future":
        young, gap, years = r(3, 20), r(2, 30), r(2, 15)
        value = young + gap + years
        q = rng.choice((
            "{o} is {y} years old and {n} is {g} years older. How old will {n} be in {k} years?",
            "{n} is {g} years older than {o}, who is {y}. What will {n}'s age be {k} years from now?",
            "In {k} years, how old will {n} be if {n} is {g} years older than {o} and {o} is {y} now?",
            "{o} is {y}. {n} was born {g} years before {o}. How old is {n} going to be in {k} years?",
        )).format(n=name, o=other, y=young, g=gap, k=years)
        line = f"{name} is {young} + {gap} = {young + gap} now, so in {years} years {young + gap} + {years} = {value}."
        return _record(q, [line], value, kind="ages_future", young=young, gap=gap, years=years)
    if kind == "ages_sum_diff":
        young, diff = r(4, 30), r(2, 25)
        total, older = 2 * young + diff, young + diff
        q = rng.choice((
            "The ages of {n} and {o} add up to {s}, and {n} is {d} years older. How old is {n}?",
            "Two siblings' ages total {s} years. The older one is {d} years older than the younger. "
            "How old is the older sibling?",
            "{n} is {d} years older than {o}. Together they are {s} years old. Find {n}'s age.",
            "The sum of two ages is {s} and their difference is {d}. What is the larger age?",
        )).format(n=name, o=other, s=total, d=diff)
        line = f"Older = (sum + difference)/2 = ({total} + {diff})/2 = {2 * older}/2 = {older}."
        return _record(q, [line], older, kind="ages_sum_diff", total=total, diff=diff)
    if kind == "ages_ratio":
        while True:
            m, son, years = r(2, 3), r(3, 15), r(2, 20)
            k = Fraction(m * (son + years) - years, son)
            if k.denominator == 1 and k > m and k <= 8:
                k = int(k)
                break
        q = rng.choice((
            "A mother is {k} times as old as her son. In {y} years she will be {m} times as old as he is. "
            "How old is the son now?",
            "{n}'s father is {k} times {n}'s age. After {y} years, the father will be {m} times as old as {n}. "
            "What is {n}'s age today?",
            "Today a teacher is {k} times as old as a student; {y} years from now the teacher will be exactly "
            "{m} times the student's age. How old is the student now?",
            "A grandmother's age is {k} times her grandson's. In {y} years her age will be {m} times his. "
            "Find the grandson's present age.",
        )).format(n=name, k=k, m=m, y=years)
        solved = f"s = {son}" if k - m == 1 else f"{k - m}s = {(m - 1) * years}, s = {son}"
        line = (f"Let s be the age now: {k}s + {years} = {m}(s + {years}), so {k}s - {m}s = {m * years} - {years}, "
                f"{solved}.")
        return _record(q, [line], son, kind="ages_ratio", k=k, m=m, years=years)
    if kind == "average_speed":
        while True:
            d, s1, s2 = r(2, 24) * 10, r(3, 12) * 10, r(3, 12) * 10
            if s1 != s2 and d % s1 == 0 and d % s2 == 0:
                break
        t1, t2 = d // s1, d // s2
        value = Fraction(2 * d, t1 + t2)
        q = rng.choice((
            "A car drives {d} km to a city at {a} km/h and returns the same way at {b} km/h. What is its "
            "average speed for the whole trip in km/h?",
            "{n} travels {d} km out at {a} km/h and {d} km back at {b} km/h. Find the average speed.",
            "Going to work {d} km away, {n} averages {a} km/h; coming home, {b} km/h. What is the average speed "
            "over the round trip?",
            "What is the average speed of a round trip of {d} km each way, driven at {a} km/h there and {b} km/h "
            "back?",
        )).format(n=name, d=d, a=s1, b=s2)
        line = (f"Time: {d}/{s1} + {d}/{s2} = {t1} + {t2} = {t1 + t2} h for {2 * d} km, "
                f"so average speed = {2 * d}/{t1 + t2} = {_f(value)} km/h.")
        return _record(_hint(rng, q, value), [line], value, kind="average_speed", distance=d,
                       speeds=[s1, s2])
    a, b = rng.sample(range(2, 13), 2)
    value = Fraction(a * b, a + b)
    template, unit = rng.choice((
        ("Pipe A fills a tank in {a} hours and pipe B fills it in {b} hours. How many hours do they take "
         "together?", "hour"),
        ("{n} can paint a fence in {a} hours; {o} can paint it in {b} hours. Working together, how long will "
         "it take them?", "hour"),
        ("One printer finishes a job in {a} minutes and another in {b} minutes. How many minutes if both print "
         "at once?", "minute"),
        ("Working alone, two machines need {a} and {b} days for an order. How many days does the order take "
         "with both running?", "day"),
    ))
    q = template.format(a=a, b=b, n=name, o=other)
    rate = Fraction(1, a) + Fraction(1, b)
    line = f"Each {unit} they do 1/{a} + 1/{b} = {_f(rate)} of the job, so the time is 1 ÷ {_f(rate)} = {_f(value)}."
    return _record(_hint(rng, q, value), [line], value, kind="work_together", times=[a, b])


# ---------------------------------------------------------------------------
# permutations
# ---------------------------------------------------------------------------

_WORDS = {
    "medium": ("LEVEL", "APPLE", "HELLO", "STATS", "KAYAK", "RADAR", "ALPHA", "GEESE", "LETTER",
               "TOMATO", "COFFEE", "PEPPER", "CHEESE", "BANANA", "ALPACA", "PUPPY"),
    "hard": ("BALLOON", "SUCCESS", "ADDRESS", "ASSESS", "BOOKKEEP", "COOKBOOK", "TEETH", "GOOGOL",
             "CANNONS", "RACECAR", "DEEDED", "MAMMAL", "TATTOO", "REFERRED", "CALCULUS"),
}


def _factorial_text(n: int) -> str:
    return f"{n}! = " + " × ".join(str(i) for i in range(n, 0, -1)) + f" = {math.factorial(n)}"


def _permutations(rng: random.Random, difficulty: str) -> dict:
    """Orderings: n!, P(n, k), words with repeated letters, a pair kept together, round tables."""
    kinds = {"easy": ("arrange", "ordered", "repeat"), "medium": ("arrange", "ordered", "word", "repeat"),
             "hard": ("ordered", "word", "together", "circular")}[difficulty]
    kind = rng.choice(kinds)
    if kind == "arrange":
        n = rng.randint(3, 6) if difficulty == "easy" else rng.randint(5, 8)
        value = math.factorial(n)
        q = rng.choice((
            "In how many ways can {n} different books be arranged on a shelf?",
            "How many different orders can {n} runners finish a race in, with no ties?",
            "{n} friends stand in a line for a photo. How many different line-ups are possible?",
            "How many arrangements are there of {n} distinct objects in a row?",
            "A playlist has {n} songs. In how many orders can they be played, each once?",
        )).format(n=n)
        return _record(q, [_factorial_text(n) + "."], value, kind="arrange", n=n)
    if kind == "ordered":
        n, k = {"easy": (rng.randint(4, 10), 2), "medium": (rng.randint(6, 10), 3),
                "hard": (rng.randint(9, 12), 4)}[difficulty]
        value = math.perm(n, k)
        roles = {2: "a captain and a vice-captain", 3: "a president, a vice-president and a secretary",
                 4: "a president, a vice-president, a secretary and a treasurer"}[k]
        q = rng.choice((
            "A club has {n} members. In how many ways can it choose {roles}?",
            "{n} runners are in a race. How many different ways can the top {k} places be filled?",
            "How many {k}-letter codes can be made from {n} different letters if no letter is repeated?",
            "In how many ways can {k} of {n} different paintings be hung in a row of {k} spots?",
            "How many ordered selections of {k} items from {n} distinct items are there?",
        )).format(n=n, k=k, roles=roles)
        line = f"P({n}, {k}) = " + " × ".join(str(n - i) for i in range(k)) + f" = {value}."
        return _record(q, [line], value, kind="ordered", n=n, k=k)
    if kind == "repeat":
        if difficulty == "easy":
            n, k = rng.randint(2, 9), rng.randint(2, 3)
        else:
            n, k = rng.randint(3, 10), rng.randint(3, 4)
        value = n ** k
        q = rng.choice((
            "A lock has {k} dials, each showing one of {n} symbols. How many different settings are there?",
            "How many {k}-character codes can be made from {n} symbols if symbols may repeat?",
            "A menu has {n} choices and {name} orders one for each of {k} days (repeats allowed, order "
            "matters). How many plans are possible?",
            "How many ordered sequences of length {k} can be formed from {n} different digits, with repetition "
            "allowed?",
            "Each of {k} light bulbs can glow in any of {n} colours. How many colour patterns are possible?",
        )).format(n=n, k=k, name=rng.choice(_NAMES))
        line = f"{n} choices for each of {k} positions: {n}^{k} = " + " × ".join([str(n)] * k) + f" = {value}."
        return _record(q, [line], value, kind="repeat", n=n, k=k)
    if kind == "word":
        word = rng.choice(_WORDS[difficulty])
        counts = Counter(word)
        repeats = [(ch, c) for ch, c in sorted(counts.items()) if c > 1]
        denom = math.prod(math.factorial(c) for _, c in repeats)
        value = math.factorial(len(word)) // denom
        q = rng.choice((
            "How many distinct arrangements of the letters of {w} are there?",
            "In how many different ways can the letters of the word {w} be arranged?",
            "How many different strings can be formed by rearranging all the letters of {w}?",
            "Count the distinguishable permutations of the letters in {w}.",
        )).format(w=word)
        rep = ", ".join(f"{ch} {c} times" for ch, c in repeats)
        line = (f"{len(word)} letters with {rep}: {len(word)}!/(" + " × ".join(f"{c}!" for _, c in repeats)
                + f") = {math.factorial(len(word))}/{denom} = {value}.")
        return _record(q, [line], value, kind="word", word=word)
    if kind == "together":
        n = rng.randint(4, 7)
        a, b = _two_names(rng)
        value = 2 * math.factorial(n - 1)
        q = rng.choice((
            "{n} people, including {a} and {b}, stand in a line. In how many ways can they line up if {a} and "
            "{b} must stand next to each other?",
            "How many ways can {n} different books be placed on a shelf if two particular books must be "
            "side by side?",
            "{n} students sit in a row of {n} chairs. {a} and {b} insist on sitting together. How many seatings "
            "are possible?",
            "In how many orders can {n} cars park in a row of {n} spaces if two specific cars must be adjacent?",
        )).format(n=n, a=a, b=b)
        line = (f"Glue the pair into one block: {n - 1} units give {n - 1}! = {math.factorial(n - 1)} orders, "
                f"times 2 for the order inside the block = {value}.")
        return _record(q, [line], value, kind="together", n=n)
    n = rng.randint(4, 7)
    value = math.factorial(n - 1)
    q = rng.choice((
        "In how many ways can {n} people sit around a round table, if rotations count as the same seating?",
        "How many distinct circular arrangements of {n} different beads on a fixed ring are there, counting "
        "rotations as the same (but not reflections)?",
        "{n} friends sit at a circular table. How many different seatings are there up to rotation?",
        "Count the ways to seat {n} guests around a circular table where only the relative order matters "
        "(rotations are equal).",
    )).format(n=n)
    line = f"Fix one person's seat and arrange the other {n - 1}: ({n} - 1)! = {n - 1}! = {value}."
    return _record(q, [line], value, kind="circular", n=n)


# ---------------------------------------------------------------------------
# combinations
# ---------------------------------------------------------------------------

def _comb_text(n: int, k: int) -> str:
    """``C(8, 3) = (8 × 7 × 6)/(3 × 2 × 1) = 336/6 = 56``: the products are written out, one division left."""
    if k in (0, n):
        return f"C({n}, {k}) = 1"
    if k == 1:
        return f"C({n}, 1) = {n}"
    k2 = min(k, n - k)
    top = " × ".join(str(n - i) for i in range(k2))
    bottom = " × ".join(str(k2 - i) for i in range(k2))
    return f"C({n}, {k}) = ({top})/({bottom}) = {math.perm(n, k2)}/{math.factorial(k2)} = {math.comb(n, k)}"


def _combinations(rng: random.Random, difficulty: str) -> dict:
    """Unordered choices: C(n, k), handshakes, grid paths, mixed committees, 'at least one' committees."""
    kinds = {"easy": ("choose", "handshakes"), "medium": ("choose", "handshakes", "grid", "split"),
             "hard": ("choose", "split", "at_least", "grid")}[difficulty]
    kind = rng.choice(kinds)
    r = rng.randint
    if kind == "choose":
        n, k = {"easy": (r(4, 8), r(2, 3)), "medium": (r(7, 12), r(3, 4)), "hard": (r(10, 16), r(4, 6))}[difficulty]
        value = math.comb(n, k)
        q = rng.choice((
            "How many ways are there to choose {k} people from a group of {n}?",
            "A committee of {k} is to be formed from {n} volunteers. How many different committees are possible?",
            "A pizza place offers {n} toppings. How many different pizzas with exactly {k} toppings can you order?",
            "From {n} books, {name} wants to pack {k} for a trip. How many different sets of books could {name} pack?",
            "What is C({n}, {k}), the number of {k}-element subsets of a set with {n} elements?",
            "In how many ways can a coach pick {k} players out of {n} for a team, if order does not matter?",
        )).format(n=n, k=k, name=rng.choice(_NAMES))
        return _record(q, [_comb_text(n, k) + "."], value, kind="choose", n=n, k=k)
    if kind == "handshakes":
        n = r(4, 12) if difficulty == "easy" else r(10, 30)
        value = math.comb(n, 2)
        q = rng.choice((
            "At a party, each of {n} guests shakes hands with every other guest exactly once. How many "
            "handshakes are there?",
            "{n} teams play in a league where every team plays every other team once. How many games are played?",
            "How many line segments join pairs of {n} points, no three of which are on a line?",
            "In a chess club of {n} members, every pair plays one game. How many games is that?",
        )).format(n=n)
        return _record(q, [f"Each pair counts once: C({n}, 2) = {n} × {n - 1}/2 = {n * (n - 1)}/2 = {value}."], value,
                       kind="handshakes", n=n)
    if kind == "grid":
        right, up = (r(2, 5), r(2, 4)) if difficulty == "medium" else (r(4, 8), r(3, 6))
        value = math.comb(right + up, up)
        q = rng.choice((
            "How many shortest paths are there on a grid from (0, 0) to ({a}, {b}), moving only right or up?",
            "A robot moves one step right or one step up at a time. In how many ways can it get from (0, 0) "
            "to ({a}, {b})?",
            "A city is a grid of streets. How many shortest routes go {a} blocks east and {b} blocks north?",
            "Count the lattice paths of {a} right-steps and {b} up-steps in any order.",
        )).format(a=right, b=up)
        line = (f"Any path is {right + up} steps, {up} of them up: " + _comb_text(right + up, up) + ".")
        return _record(q, [line], value, kind="grid", right=right, up=up)
    if kind == "split":
        a, b = (r(4, 7), r(3, 6)) if difficulty == "medium" else (r(6, 10), r(5, 9))
        i, j = (r(1, 2), r(1, 2)) if difficulty == "medium" else (r(2, 3), r(2, 3))
        value = math.comb(a, i) * math.comb(b, j)
        q = rng.choice((
            "A committee of {i} teachers and {j} parents is chosen from {a} teachers and {b} parents. How many "
            "committees are possible?",
            "From {a} boys and {b} girls, a team with exactly {i} boys and {j} girls is picked. How many teams "
            "are possible?",
            "A fruit basket gets {i} of {a} kinds of fruit and {j} of {b} kinds of nuts. How many different "
            "baskets are possible?",
            "In how many ways can you pick {i} of {a} novels and {j} of {b} comics to take on holiday?",
        )).format(a=a, b=b, i=i, j=j)
        line = (f"{_comb_text(a, i)} and {_comb_text(b, j)}, so {math.comb(a, i)} × {math.comb(b, j)} = {value}.")
        return _record(q, [line], value, kind="split", a=a, b=b, i=i, j=j)
    men, women, k = r(4, 8), r(3, 6), r(3, 4)
    total, none = math.comb(men + women, k), math.comb(men, k)
    value = total - none
    template, group = rng.choice((
        ("A committee of {k} is chosen from {m} men and {w} women. How many committees include at least one "
         "woman?", "women"),
        ("From {m} red and {w} blue marbles (all different), how many groups of {k} contain at least one blue "
         "marble?", "blue marbles"),
        ("A team of {k} is picked from {m} juniors and {w} seniors. In how many ways can it be picked if it "
         "needs at least one senior?", "seniors"),
        ("How many {k}-person groups from {m} engineers and {w} designers have one or more designers?",
         "designers"),
    ))
    q = template.format(m=men, w=women, k=k)
    line = (f"All groups: C({men + women}, {k}) = {total}; groups with no {group}: C({men}, {k}) = {none}. "
            f"So {total} - {none} = {value}.")
    return _record(q, [line], value, kind="at_least", first=men, second=women, k=k)


# ---------------------------------------------------------------------------
# dice
# ---------------------------------------------------------------------------
# Events: name -> (test on an outcome tuple, clause, noun phrase). "{v}" is the event's number.

_DIE_EVENTS_1 = {
    "gt": (lambda o, v: o[0] > v, "the number rolled is greater than {v}", "a number greater than {v}"),
    "even": (lambda o, v: o[0] % 2 == 0, "the result is even", "an even number"),
    "prime": (lambda o, v: o[0] in (2, 3, 5), "the number shown is prime", "a prime number"),
    "at_most": (lambda o, v: o[0] <= v, "it shows {v} or less", "a number of at most {v}"),
    "mult3": (lambda o, v: o[0] % 3 == 0, "the result is a multiple of 3", "a multiple of 3"),
    "not_eq": (lambda o, v: o[0] != v, "it does not show a {v}", "anything except a {v}"),
}
_DIE_EVENTS_N = {
    "sum_eq": (lambda o, v: sum(o) == v, "the sum is {v}", "a total of {v}"),
    "sum_ge": (lambda o, v: sum(o) >= v, "the sum is at least {v}", "a total of {v} or more"),
    "sum_le": (lambda o, v: sum(o) <= v, "the sum is at most {v}", "a sum of {v} or less"),
    "doubles": (lambda o, v: len(set(o)) == 1, "all the dice show the same number", "all dice matching"),
    "at_least_one": (lambda o, v: v in o, "at least one die shows a {v}", "at least one {v}"),
    "product_even": (lambda o, v: math.prod(o) % 2 == 0, "the product of the numbers is even",
                     "an even product"),
    "diff_eq": (lambda o, v: abs(o[0] - o[1]) == v, "the two numbers differ by exactly {v}",
                "a difference of {v} between the two dice"),
    "max_eq": (lambda o, v: max(o) == v, "the largest number showing is {v}", "a highest value of {v}"),
    "first_gt": (lambda o, v: o[0] > o[1], "the first die shows a larger number than the second",
                 "the first die beating the second"),
    "all_different": (lambda o, v: len(set(o)) == len(o), "all the dice show different numbers",
                      "no two dice matching"),
}

_DICE_SETUP = {
    1: ("A fair six-sided die is rolled once.", "You roll one fair die.", "A standard die is thrown."),
    2: ("Two fair dice are rolled.", "You roll a pair of fair six-sided dice.", "Two standard dice are thrown."),
    3: ("Three fair dice are rolled.", "You throw three fair six-sided dice.", "Three standard dice are rolled."),
}
_DICE_ASK = (
    "{setup} What is the probability that {clause}?",
    "{setup} Find the probability that {clause}.",
    "{setup} How likely is it that {clause}?",
    "What is the chance of {noun} when {rolling}?",
    "If {rolling_if}, what is the probability of {noun}?",
)
_ROLLING = {1: ("rolling a fair die once", "you roll a fair die"),
            2: ("rolling two fair dice", "you roll a pair of dice"),
            3: ("rolling three fair dice", "three fair dice are rolled")}


def _dice(rng: random.Random, difficulty: str) -> dict:
    """One, two or three fair dice: sums, doubles, at least one six, comparisons; counted exactly."""
    if difficulty == "easy":
        k = rng.choice((1, 1, 2))
        event = rng.choice(tuple(_DIE_EVENTS_1)) if k == 1 else rng.choice(("sum_eq", "doubles"))
    elif difficulty == "medium":
        k = 2
        event = rng.choice(("sum_eq", "sum_ge", "sum_le", "doubles", "at_least_one", "product_even",
                            "diff_eq", "max_eq", "first_gt"))
    else:
        k = 3
        event = rng.choice(("sum_eq", "sum_ge", "sum_le", "doubles", "at_least_one", "all_different"))
    value = {"gt": rng.randint(1, 5), "at_most": rng.randint(1, 5), "not_eq": rng.randint(1, 6),
             "at_least_one": rng.randint(1, 6), "diff_eq": rng.randint(0, 5), "max_eq": rng.randint(1, 6),
             "sum_eq": rng.randint(2, 12) if k == 2 else rng.randint(4, 17),
             "sum_ge": rng.randint(8, 12) if k == 2 else rng.randint(14, 17),
             "sum_le": rng.randint(3, 6) if k == 2 else rng.randint(4, 7)}.get(event)
    test, clause, noun = (_DIE_EVENTS_1 if k == 1 else _DIE_EVENTS_N)[event]
    outcomes = list(product(range(1, 7), repeat=k))
    good = [o for o in outcomes if test(o, value)]
    p = Fraction(len(good), len(outcomes))
    clause, noun = clause.format(v=value), noun.format(v=value)
    if k == 2 and event in ("doubles", "all_different"):
        clause = {"doubles": "both dice show the same number", "all_different": "the dice differ"}[event]
        noun = {"doubles": "rolling doubles", "all_different": "two different numbers"}[event]
    template = rng.choice(_DICE_ASK)
    if event == "first_gt":
        template = rng.choice(_DICE_ASK[:3])
        setup = rng.choice(("A red die and a blue die are rolled; call the red one the first die.",
                            "Two fair dice are rolled one after the other.",
                            "You roll a fair die twice (first roll, then second roll)."))
    else:
        setup = rng.choice(_DICE_SETUP[k])
    rolling, rolling_if = _ROLLING[k]
    q = template.format(setup=setup, clause=clause, noun=noun, rolling=rolling, rolling_if=rolling_if)
    total = " × ".join(["6"] * k) + f" = {len(outcomes)}" if k > 1 else "6"
    if k == 1:
        faces = ", ".join(str(o[0]) for o in good)
        line = f"Of the 6 faces, {faces} qualify: {len(good)} of 6. " + _prob_line(len(good), 6)
    elif event.startswith("sum_") and len(good) > 6:
        sums = Counter(sum(o) for o in good)
        ways = " + ".join(str(sums[s]) for s in sorted(sums))
        if len(sums) == 1:
            sums_text = f"A sum of {value} occurs in {len(good)} ways."
        else:
            sums_text = f"Sums {', '.join(map(str, sorted(sums)))} occur {ways} = {len(good)} ways."
        line = f"There are {total} equally likely outcomes. {sums_text} " + _prob_line(len(good), len(outcomes))
    elif len(good) <= 6:
        shown = ", ".join("(" + ",".join(map(str, o)) + ")" for o in good) if good else "none"
        line = (f"There are {total} equally likely outcomes. Favourable: {shown}, {len(good)} outcomes. "
                + _prob_line(len(good), len(outcomes)))
    else:
        n_all, n_good = len(outcomes), len(good)
        if event == "at_least_one":
            reason = f"{n_all} - 5^{k} = {n_all} - {5 ** k} = {n_good} have a {value}"
        elif event == "product_even":
            reason = f"the product is odd only when every die is odd ({3 ** k} ways), so {n_good} are even"
        elif event == "all_different":
            reason = f"6 × 5 × 4 = {n_good} have all different numbers"
        elif event == "first_gt":
            reason = f"of the 30 outcomes that are not doubles, half have the first die larger: {n_good}"
        elif event == "diff_eq":
            reason = f"(a, a + {value}) for a = 1 to {6 - value}, in either order, gives 2 × {6 - value} = {n_good}"
        elif event == "max_eq":
            reason = f"{value}^2 - {value - 1}^2 = {n_good} have maximum {value}"
        else:
            reason = f"{n_good} of them are favourable"
        line = f"There are {total} equally likely outcomes; {reason}. " + _prob_line(len(good), len(outcomes))
    return _record(_hint(rng, q, p), [line], p, dice=k, event=event, value=value)


# ---------------------------------------------------------------------------
# coins
# ---------------------------------------------------------------------------

def _coins(rng: random.Random, difficulty: str) -> dict:
    """n fair coins: exactly k heads, at least one head, at least/at most k, all alike, no two heads in a row."""
    n = {"easy": rng.randint(2, 3), "medium": rng.randint(3, 5), "hard": rng.randint(5, 8)}[difficulty]
    events = {"easy": ("exactly", "at_least_one", "all_same", "exactly_tails"),
              "medium": ("exactly", "at_least_one", "at_least", "at_most", "all_same", "more_heads"),
              "hard": ("exactly", "at_least", "at_most", "more_heads", "no_consecutive", "at_least_one")}[difficulty]
    event = rng.choice(events)
    low = {"exactly": 0, "exactly_tails": 1, "at_least": 2, "at_most": 1}.get(event)
    k = rng.randint(low, n) if low is not None else None
    if event == "at_most" and k == n:
        k = n - 1
    total = 2 ** n
    if event in ("exactly", "exactly_tails"):
        count = math.comb(n, k)
        face = "heads" if event == "exactly" else "tails"
        why = f"Exactly {k} {face}: C({n}, {k}) = {count} of them."
    elif event in ("at_least", "at_most", "more_heads"):
        ks = {"at_least": range(k, n + 1) if k else None, "at_most": range(0, (k or 0) + 1),
              "more_heads": range(n // 2 + 1, n + 1)}[event]
        count = sum(math.comb(n, j) for j in ks)
        rest = [j for j in range(n + 1) if j not in ks]
        if len(ks) > len(rest) + 1:  # the complement is shorter to add up
            terms = " + ".join(f"C({n}, {j})" for j in rest)
            values = " + ".join(str(math.comb(n, j)) for j in rest)
            other = total - count
            why = (f"The rest (heads = {', '.join(map(str, rest))}) number {terms} = "
                   + (f"{values} = " if len(rest) > 1 else "") + f"{other}, so {total} - {other} = {count} qualify.")
        else:
            terms = " + ".join(f"C({n}, {j})" for j in ks)
            values = " + ".join(str(math.comb(n, j)) for j in ks)
            why = f"Add {terms} = {values} = {count}." if len(ks) > 1 else f"C({n}, {ks[0]}) = {count}."
    elif event == "at_least_one":
        count = total - 1
        why = f"Only the outcome with all tails has no head, so {total} - 1 = {count} have at least one."
    elif event == "all_same":
        count = 2
        why = "Only all heads or all tails qualify: 2 outcomes."
    else:  # no_consecutive: lengths 1, 2, 3... give 2, 3, 5, 8... (each the sum of the two before)
        seq = [2, 3]
        while len(seq) < n:
            seq.append(seq[-1] + seq[-2])
        count = seq[n - 1]
        why = (f"Strings with no HH of lengths 1 to {n} number " + ", ".join(map(str, seq[:n]))
               + " (each is the sum of the previous two), so " + f"{count} qualify.")
    p = Fraction(count, total)
    heads, tails = ("one head", "one tail") if k == 1 else (f"{k} heads", f"{k} tails")
    ev = {
        "exactly": f"exactly {heads}", "exactly_tails": f"exactly {tails}",
        "at_least": f"at least {heads}", "at_most": f"at most {heads}",
        "at_least_one": "at least one head", "all_same": "all heads or all tails",
        "more_heads": "more heads than tails", "no_consecutive": "no two heads in a row",
    }[event]
    if event == "exactly" and k == 0:
        ev = "no heads at all"
    setup, ask = rng.choice((
        ("A fair coin is tossed {n} times.", "What is the probability of getting {ev}?"),
        ("{n} fair coins are flipped.", "Find the probability of {ev}."),
        ("You flip a fair coin {n} times.", "How likely is it that you get {ev}?"),
        ("", "If a fair coin is flipped {n} times, what is the chance of {ev}?"),
        ("{name} tosses {n} fair coins at once.", "What is the probability that {name} sees {ev}?"),
    ))
    if event == "no_consecutive":
        setup, ask = rng.choice((
            ("A fair coin is tossed {n} times in a row.", "What is the probability of {ev}?"),
            ("", "A fair coin is flipped {n} times. How likely is it that the sequence has {ev}?"),
            ("You flip a fair coin {n} times and write down the sequence.",
             "Find the probability that it contains {ev}."),
        ))
    q = (setup + " " + ask).strip().format(n=n, ev=ev, name=rng.choice(_NAMES))
    line = f"There are 2^{n} = {total} equally likely outcomes. {why} " + _prob_line(count, total)
    return _record(_hint(rng, q, p), [line], p, n=n, event=event, k=k)


# ---------------------------------------------------------------------------
# cards
# ---------------------------------------------------------------------------

_RANKS = ("A", "2", "3", "4", "5", "6", "7", "8", "9", "10", "J", "Q", "K")
_SUITS = ("hearts", "diamonds", "clubs", "spades")

# single-card events: name -> (test on (rank, suit), noun phrase with article)
_CARD_EVENTS = {
    "heart": (lambda c: c[1] == "hearts", "a heart"),
    "red": (lambda c: c[1] in ("hearts", "diamonds"), "a red card"),
    "king": (lambda c: c[0] == "K", "a king"),
    "ace": (lambda c: c[0] == "A", "an ace"),
    "face": (lambda c: c[0] in ("J", "Q", "K"), "a face card (jack, queen or king)"),
    "heart_or_king": (lambda c: c[1] == "hearts" or c[0] == "K", "a heart or a king"),
    "red_face": (lambda c: c[1] in ("hearts", "diamonds") and c[0] in ("J", "Q", "K"), "a red face card"),
    "black_ace": (lambda c: c[1] in ("clubs", "spades") and c[0] == "A", "a black ace"),
    "number": (lambda c: c[0] in _RANKS[1:10], "a number card (2 through 10)"),
    "not_spade": (lambda c: c[1] != "spades", "a card that is not a spade"),
    "queen_of_spades": (lambda c: c == ("Q", "spades"), "the queen of spades"),
}
_DECK = [(r, s) for s in _SUITS for r in _RANKS]

# two-card events: name -> (test on (first, second), phrase)
_TWO_CARD_EVENTS = {
    "both_aces": (lambda a, b: a[0] == "A" and b[0] == "A", "both cards are aces"),
    "both_hearts": (lambda a, b: a[1] == "hearts" and b[1] == "hearts", "both cards are hearts"),
    "both_red": (lambda a, b: a[1] in ("hearts", "diamonds") and b[1] in ("hearts", "diamonds"),
                 "both cards are red"),
    "both_face": (lambda a, b: a[0] in ("J", "Q", "K") and b[0] in ("J", "Q", "K"), "both cards are face cards"),
    "same_suit": (lambda a, b: a[1] == b[1], "the two cards have the same suit"),
    "pair": (lambda a, b: a[0] == b[0], "the two cards have the same rank"),
    "ace_then_king": (lambda a, b: a[0] == "A" and b[0] == "K", "the first card is an ace and the second is a king"),
    "ace_and_king": (lambda a, b: {a[0], b[0]} == {"A", "K"}, "one card is an ace and the other is a king"),
    "at_least_one_ace": (lambda a, b: "A" in (a[0], b[0]), "at least one of the cards is an ace"),
    "no_hearts": (lambda a, b: "hearts" not in (a[1], b[1]), "neither card is a heart"),
}


def _cards(rng: random.Random, difficulty: str) -> dict:
    """A standard 52-card deck: one card (suits, ranks, face cards, unions) or two cards with/without replacement."""
    deck_text = rng.choice(("a standard 52-card deck", "a well-shuffled deck of 52 playing cards",
                            "an ordinary deck of 52 cards"))
    if difficulty == "easy":
        event = rng.choice(tuple(_CARD_EVENTS))
        test, noun = _CARD_EVENTS[event]
        count = sum(1 for c in _DECK if test(c))
        p = Fraction(count, 52)
        q = rng.choice((
            "A card is drawn at random from {deck}. What is the probability that it is {noun}?",
            "What is the probability of drawing {noun} from {deck}?",
            "You pick one card from {deck}. How likely is it to be {noun}?",
            "One card is dealt from {deck}. Find P(the card is {noun}).",
            "If {name} draws a single card from {deck}, what is the chance it is {noun}?",
        )).format(deck=deck_text, noun=noun, name=rng.choice(_NAMES))
        why = {
            "heart": "13 of the 52 cards are hearts.", "red": "Hearts and diamonds give 26 red cards.",
            "king": "There are 4 kings, one per suit.", "ace": "There are 4 aces, one per suit.",
            "face": "3 face cards in each of 4 suits: 12 cards.",
            "heart_or_king": "13 hearts + 4 kings - 1 king of hearts = 16 cards.",
            "red_face": "3 face cards in each of the 2 red suits: 6 cards.",
            "black_ace": "There are 2 black aces (clubs, spades).",
            "number": "9 number cards in each of 4 suits: 36 cards.",
            "not_spade": "52 - 13 spades = 39 cards.", "queen_of_spades": "Exactly 1 card is the queen of spades.",
        }[event]
        return _record(_hint(rng, q, p), [why + " " + _prob_line(count, 52)], p, draws=1, replacement=False,
                       event=event)
    if difficulty == "medium":
        event = rng.choice(("both_aces", "both_hearts", "both_red", "both_face", "ace_then_king", "no_hearts"))
        replacement = False
    else:
        event = rng.choice(("same_suit", "pair", "ace_and_king", "at_least_one_ace", "both_aces", "both_hearts"))
        replacement = event in ("both_aces", "both_hearts") or rng.random() < 0.25
    test, clause = _TWO_CARD_EVENTS[event]
    pairs = list(product(_DECK, repeat=2)) if replacement else list(permutations(_DECK, 2))
    good = sum(1 for a, b in pairs if test(a, b))
    p = Fraction(good, len(pairs))
    how = ("with replacement (the first card is put back and the deck reshuffled)" if replacement
           else "without replacement")
    q = rng.choice((
        "Two cards are drawn from {deck} {how}. What is the probability that {clause}?",
        "From {deck}, two cards are dealt one after another {how}. Find the probability that {clause}.",
        "{name} draws two cards {how} from {deck}. How likely is it that {clause}?",
        "Two cards are taken {how} from {deck}. What is the chance that {clause}?",
    )).format(deck=deck_text, how=how, clause=clause, name=rng.choice(_NAMES))
    second = 52 if replacement else 51
    m = 0 if replacement else 1
    no_ace = _f(Fraction(48 * (48 - m), 52 * second))
    line = {
        "both_aces": f"P = 4/52 × {4 - m}/{second}",
        "both_hearts": f"P = 13/52 × {13 - m}/{second}",
        "both_red": f"P = 26/52 × {26 - m}/{second}",
        "both_face": f"P = 12/52 × {12 - m}/{second}",
        "no_hearts": f"P = 39/52 × {39 - m}/{second}",
        "ace_then_king": f"P = 4/52 × 4/{second}",
        "ace_and_king": f"Ace then king or king then ace: P = 2 × (4/52 × 4/{second})",
        "same_suit": (f"Whatever the first card, {13 - m} of the {second} cards for the second draw share its "
                      f"suit: P = {13 - m}/{second}"),
        "pair": (f"Whatever the first card, {4 - m} of the {second} cards for the second draw have its rank: "
                 f"P = {4 - m}/{second}"),
        "at_least_one_ace": f"P(no ace) = 48/52 × {48 - m}/{second} = {no_ace}, so P = 1 - {no_ace}",
    }[event]
    if " × " in line and event != "at_least_one_ace" and f"{good}/{len(pairs)}" != _f(p):
        line = f"{line} = {good}/{len(pairs)}"
    line = f"{line} = {_f(p)}."
    return _record(_hint(rng, q, p), [line], p, draws=2, replacement=replacement, event=event)


# ---------------------------------------------------------------------------
# urns
# ---------------------------------------------------------------------------

_COLOURS = ("red", "blue", "green", "white", "black", "yellow")


def _urns(rng: random.Random, difficulty: str) -> dict:
    """Coloured balls drawn from a bag with or without replacement."""
    n_colours = 2 if difficulty != "hard" or rng.random() < 0.5 else 3
    colours = rng.sample(_COLOURS, n_colours)
    counts = {c: rng.randint(2, 7 if difficulty == "easy" else 8) for c in colours}
    total = sum(counts.values())
    c1, c2 = colours[0], colours[1]
    container = rng.choice((("bag", "balls"), ("urn", "balls"), ("jar", "marbles"), ("box", "counters")))
    article = "an" if container[0] == "urn" else "a"
    contents = ", ".join(f"{counts[c]} {c}" for c in colours[:-1]) + f" and {counts[colours[-1]]} {colours[-1]}"
    intro = rng.choice((
        "{A} {box} contains {contents} {things}.",
        "There are {contents} {things} in {a} {box}.",
        "{A} {box} holds {contents} {things}, identical except for colour.",
        "{name} has {a} {box} with {contents} {things}.",
    )).format(box=container[0], things=container[1], contents=contents, name=rng.choice(_NAMES),
              a=article, A=article.capitalize())
    if difficulty == "easy":
        draws, replacement = 1, False
        event = rng.choice(("colour", "not_colour"))
    elif difficulty == "medium":
        draws = 2
        event = rng.choice(("both", "one_each", "same", "first_then"))
        replacement = rng.random() < 0.3
    else:
        draws, replacement = rng.choice(((2, False), (3, False), (2, True)))
        if draws == 2:
            event = rng.choice(("second_is", "same", "one_each", "both"))
        else:
            event = rng.choice(("exactly_two", "all_different") if n_colours == 3 else ("exactly_two", "none_of"))
    tests = {
        "colour": lambda o: o[0] == c1, "not_colour": lambda o: o[0] != c1,
        "both": lambda o: o[0] == c1 and o[1] == c1,
        "one_each": lambda o: sorted(o) == sorted([c1, c2]),
        "same": lambda o: o[0] == o[1],
        "first_then": lambda o: o[0] == c1 and o[1] == c2,
        "second_is": lambda o: o[1] == c1,
        "exactly_two": lambda o: o.count(c1) == 2,
        "none_of": lambda o: c1 not in o,
        "all_different": lambda o: len(set(o)) == 3,
    }
    balls = [c for c in colours for _ in range(counts[c])]
    draws_all = list(product(balls, repeat=draws)) if replacement else list(permutations(balls, draws))
    good = sum(1 for o in draws_all if tests[event](o))
    p = Fraction(good, len(draws_all))
    phrase = {
        "colour": f"it is {c1}", "not_colour": f"it is not {c1}",
        "both": f"both are {c1}", "one_each": f"one is {c1} and one is {c2}",
        "same": "both are the same colour", "first_then": f"the first is {c1} and the second is {c2}",
        "second_is": f"the second one drawn is {c1}", "exactly_two": f"exactly two of them are {c1}",
        "none_of": f"none of them is {c1}", "all_different": "all three have different colours",
    }[event]
    if draws == 1:
        ask = rng.choice(("One is drawn at random. What is the probability that {ph}?",
                          "If you pick one without looking, how likely is it that {ph}?",
                          "A single {thing} is taken out at random. Find the probability that {ph}."))
    else:
        ask = rng.choice(("{d} are drawn at random {how}. What is the probability that {ph}?",
                          "{name} takes out {d} {things} one at a time, {how}. How likely is it that {ph}?",
                          "Draw {d} {things} {how}. Find the probability that {ph}."))
    d_word = {1: "one", 2: "two", 3: "three"}[draws]
    if ask.startswith("{d}"):
        d_word = d_word.capitalize()
    how = "with replacement" if replacement else "without replacement"
    q = intro + " " + ask.format(ph=phrase, d=d_word, how=how, thing=container[1][:-1], things=container[1],
                                 name=rng.choice(_NAMES))
    N, r = total, counts[c1]
    s = counts[c2]
    n2 = N if replacement else N - 1
    m = 0 if replacement else 1
    line = {
        "colour": f"{r} of the {N} are {c1}: P = {r}/{N}",
        "not_colour": f"{N - r} of the {N} are not {c1}: P = {N - r}/{N}",
        "both": f"P = {r}/{N} × {r - m}/{n2}",
        "one_each": f"{c1} then {c2} or {c2} then {c1}: P = 2 × ({r}/{N} × {s}/{n2})",
        "same": "Add over colours: P = " + " + ".join(f"{counts[c]}/{N} × {counts[c] - m}/{n2}" for c in colours),
        "first_then": f"P = {r}/{N} × {s}/{n2}",
        "second_is": f"By symmetry the second draw is like the first: P = {r}/{N}",
        "exactly_two": (f"C({r}, 2) × C({N - r}, 1)/C({N}, 3) = {math.comb(r, 2)} × {N - r}/{math.comb(N, 3)}"
                        f" = {math.comb(r, 2) * (N - r)}/{math.comb(N, 3)}"),
        "none_of": f"C({N - r}, 3)/C({N}, 3) = {math.comb(N - r, 3)}/{math.comb(N, 3)}",
        "all_different": ("One of each colour: " + " × ".join(str(counts[c]) for c in colours)
                          + f"/C({N}, 3) = {math.prod(counts.values())}/{math.comb(N, 3)}"),
    }[event]
    raw = f"{good}/{len(draws_all)}"
    if draws == 2 and event not in ("second_is",) and " × " in line and raw != _f(p):
        line = f"{line} = {raw}"
    line = f"{line}." if line.endswith(f" {_f(p)}") else f"{line} = {_f(p)}."
    # The total first: small models otherwise divide by a number they never computed.
    total_line = "There are " + " + ".join(str(counts[c]) for c in colours) + f" = {N} {container[1]}."
    return _record(_hint(rng, q, p), [total_line, line], p, counts=counts, draws=draws, replacement=replacement,
                   event=event, colour=c1, other=c2)


# ---------------------------------------------------------------------------
# complement
# ---------------------------------------------------------------------------

_TRIALS = (  # (setup with {n} and {p}, the event "at least one success")
    ("A basketball player makes each free throw with probability {p}, independently, and takes {n} free throws.",
     "the player makes at least one"),
    ("{n} seeds are planted, and each germinates with probability {p}, independently of the others.",
     "at least one seed germinates"),
    ("A batch has {n} light bulbs, and each is defective with probability {p}, independently.",
     "at least one bulb is defective"),
    ("An archer shoots {n} arrows and hits the target with probability {p} on each shot, independently.",
     "the archer hits the target at least once"),
)


def _complement(rng: random.Random, difficulty: str) -> dict:
    """'At least one' as 1 - P(none): dice, coins, repeated trials, faulty items, shared weekdays."""
    kinds = {"easy": ("dice", "coins", "independent"), "medium": ("dice", "trials", "batch", "independent"),
             "hard": ("dice", "trials", "batch", "weekday", "independent")}[difficulty]
    kind = rng.choice(kinds)
    if kind == "dice":
        n = {"easy": 2, "medium": rng.randint(3, 4), "hard": 5}[difficulty]
        face = rng.choice((6, 6, 1, 2, 3, 4, 5))
        none = Fraction(5, 6) ** n
        value = 1 - none
        q = rng.choice((
            "A fair die is rolled {n} times. What is the probability of getting at least one {f}?",
            "If you roll a die {n} times, how likely is it that a {f} comes up at least once?",
            "{name} rolls {n} fair dice. Find the probability that at least one of them shows a {f}.",
            "What is the chance of rolling at least one {f} in {n} rolls of a fair die?",
        )).format(n=n, f=face, name=rng.choice(_NAMES))
        line = f"P(no {face} in {n} rolls) = (5/6)^{n} = {_f(none)}, so P(at least one) = 1 - {_f(none)} = {_f(value)}."
        return _record(_hint(rng, q, value), [line], value, kind="dice", n=n, face=face)
    if kind == "coins":
        n = rng.randint(2, 6)
        none = Fraction(1, 2 ** n)
        value = 1 - none
        q = rng.choice((
            "A fair coin is flipped {n} times. What is the probability of at least one head?",
            "What is the chance that {n} tosses of a fair coin give at least one tail?",
            "{name} flips a fair coin {n} times. How likely is it that heads shows up at least once?",
            "Using the complement, find the probability of getting at least one head in {n} fair coin flips.",
        )).format(n=n, name=rng.choice(_NAMES))
        face = "tail" if "tail" in q else "head"
        other = "heads" if face == "tail" else "tails"
        line = f"P(all {other}) = (1/2)^{n} = {_f(none)}, so P(at least one {face}) = 1 - {_f(none)} = {_f(value)}."
        return _record(_hint(rng, q, value), [line], value, kind="coins", n=n)
    if kind == "trials":
        n = rng.randint(3, 5) if difficulty == "medium" else rng.randint(6, 8)
        p = rng.choice((Fraction(1, 2), Fraction(1, 3), Fraction(2, 3), Fraction(1, 4), Fraction(3, 4),
                        Fraction(1, 5)) + ((Fraction(1, 10),) if n <= 4 else ()))
        setup, event = rng.choice(_TRIALS)
        none = (1 - p) ** n
        value = 1 - none
        q = setup.format(n=n, p=_f(p)) + " " + rng.choice((
            "What is the probability that {event}?", "How likely is it that {event}?",
            "Use the complement to find the probability that {event}.", "Find the chance that {event}.",
        )).format(event=event)
        line = f"P(none in {n}) = ({_f(1 - p)})^{n} = {_f(none)}, so P(at least one) = 1 - {_f(none)} = {_f(value)}."
        return _record(_hint(rng, q, value), [line], value, kind="trials", n=n, p=_f(p))
    if kind == "batch":
        total = rng.randint(8, 15)
        bad = rng.randint(1, 4)
        k = 2 if difficulty == "medium" else rng.randint(3, 4)
        none = Fraction(math.comb(total - bad, k), math.comb(total, k))
        value = 1 - none
        q = rng.choice((
            "A box of {t} light bulbs contains {d} defective ones. {k} bulbs are chosen at random. What is the "
            "probability that at least one is defective?",
            "Of {t} eggs in a carton, {d} are cracked. If {name} picks {k} eggs at random, how likely is it that "
            "at least one is cracked?",
            "A class has {t} students, {d} of whom are left-handed. {k} students are chosen at random. Find the "
            "probability that at least one chosen student is left-handed.",
            "From a batch of {t} phones with {d} faulty ones, an inspector tests {k} at random (no phone twice). "
            "What is the chance of finding at least one faulty phone?",
        )).format(t=total, d=bad, k=k, name=rng.choice(_NAMES))
        line = (f"P(none) = C({total - bad}, {k})/C({total}, {k}) = {math.comb(total - bad, k)}/{math.comb(total, k)}"
                f" = {_f(none)}, so P(at least one) = 1 - {_f(none)} = {_f(value)}.")
        return _record(_hint(rng, q, value), [line], value, kind="batch", total=total, bad=bad, k=k)
    if kind == "weekday":
        k = rng.randint(2, 4)
        distinct = math.perm(7, k)
        none = Fraction(distinct, 7 ** k)
        value = 1 - none
        q = rng.choice((
            "{k} people are chosen at random. Assuming each is equally likely to be born on any of the 7 days "
            "of the week, what is the probability that at least two share a weekday of birth?",
            "Each of {k} friends picks a day of the week at random for a party. What is the chance that at "
            "least two pick the same day?",
            "{k} students each roll a fair 7-sided die. Find the probability that some number appears at "
            "least twice.",
        )).format(k=k)
        prod_text = " × ".join(str(7 - i) for i in range(k))
        line = (f"P(all different) = {prod_text}/7^{k} = {distinct}/{7 ** k}"
                + (f" = {_f(none)}" if _f(none) != f"{distinct}/{7 ** k}" else "")
                + f", so P(at least two match) = 1 - {_f(none)} = {_f(value)}.")
        return _record(_hint(rng, q, value), [line], value, kind="weekday", k=k)
    m = 3 if difficulty == "hard" else 2
    probs = [rng.choice((Fraction(1, 2), Fraction(1, 3), Fraction(2, 3), Fraction(1, 4), Fraction(3, 4),
                         Fraction(2, 5), Fraction(3, 5), Fraction(4, 5), Fraction(9, 10))) for _ in range(m)]
    none = math.prod((1 - p for p in probs), start=Fraction(1))
    value = 1 - none
    names = ", ".join(_f(p) for p in probs[:-1]) + f" and {_f(probs[-1])}"
    q = rng.choice((
        "{M} alarms work independently with probabilities {ps}. What is the probability that at least one "
        "works?",
        "{M} students independently try a puzzle; their chances of solving it are {ps}. How likely is it that "
        "the puzzle gets solved?",
        "{M} independent events have probabilities {ps}. Find the probability that at least one of them happens.",
        "A system has {m} independent backup generators that start with probabilities {ps}. What is the chance "
        "that at least one starts?",
    )).format(M={2: "Two", 3: "Three"}[m], m={2: "two", 3: "three"}[m], ps=names)
    factors = " × ".join(_f(1 - p) for p in probs)
    line = f"P(none) = {factors} = {_f(none)}, so P(at least one) = 1 - {_f(none)} = {_f(value)}."
    return _record(_hint(rng, q, value), [line], value, kind="independent", probs=[_f(p) for p in probs])


# ---------------------------------------------------------------------------
# conditional_bayes
# ---------------------------------------------------------------------------

_TABLES = (  # (people, rows: (label, "they are ..."), columns: "they ...")
    ("students", (("grade 10", "in grade 10"), ("grade 11", "in grade 11")), ("play a sport", "do not play a sport")),
    ("workers", (("day shift", "on the day shift"), ("night shift", "on the night shift")),
     ("drive to work", "take the bus")),
    ("visitors", (("adults", "an adult"), ("children", "a child")), ("chose chocolate", "chose vanilla")),
    ("patients", (("treatment group", "in the treatment group"), ("placebo group", "in the placebo group")),
     ("recovered", "did not recover")),
)

_BAYES_STORIES = (
    ("A disease affects {prior}% of a population. A test detects it in {sens}% of people who have it and "
     "gives a false positive for {fp}% of people who do not.", "a person tests positive", "has the disease",
     "a person tests negative", "does not have the disease"),
    ("In a factory, {prior}% of items are faulty. An inspector flags {sens}% of faulty items and also "
     "flags {fp}% of good items.", "an item is flagged", "is faulty", "an item is not flagged", "is good"),
    ("{prior}% of emails are spam. A filter marks {sens}% of spam emails as spam and wrongly marks {fp}% of "
     "normal emails.", "an email is marked", "is really spam", "an email is not marked", "is really normal"),
    ("A rare gene occurs in {prior}% of people. A screening test is positive for {sens}% of carriers and for "
     "{fp}% of non-carriers.", "someone screens positive", "carries the gene", "someone screens negative",
     "is not a carrier"),
)


def _conditional_bayes(rng: random.Random, difficulty: str) -> dict:
    """P(A | B) from formulas, two-way tables, dice and urns; Bayes' rule for tests with false positives."""
    kinds = {"easy": ("formula", "table"), "medium": ("table", "dice", "urn_seq", "total", "union"),
             "hard": ("bayes", "bayes", "two_urns", "dice", "urn_seq")}[difficulty]
    kind = rng.choice(kinds)
    if kind in ("formula", "union"):
        d = rng.choice((10, 12, 20, 8, 5))
        ab = rng.randint(1, d // 3)
        a = rng.randint(ab + 1, d - 1)
        p_a, p_ab = Fraction(a, d), Fraction(ab, d)
        if kind == "formula":
            value = p_ab / p_a
            q = rng.choice((
                "If P(A) = {a} and P(A and B) = {ab}, what is P(B | A)?",
                "Events A and B satisfy P(A) = {a} and P(A ∩ B) = {ab}. Find the conditional probability of B "
                "given A.",
                "The probability that it rains is {a}, and the probability that it rains and the bus is late is "
                "{ab}. Given that it rains, how likely is the bus to be late?",
                "{ab} of customers buy bread and milk, and {a} buy bread. What is the probability that a bread "
                "buyer also buys milk?",
            )).format(a=_f(p_a), ab=_f(p_ab))
            line = f"P(B | A) = P(A and B)/P(A) = {_f(p_ab)} ÷ {_f(p_a)} = {_f(value)}."
            return _record(_hint(rng, q, value), [line], value, kind="formula", p_a=_f(p_a), p_ab=_f(p_ab))
        b = rng.randint(ab + 1, d - a + ab) if d - a + ab > ab else ab + 1
        p_b = Fraction(b, d)
        p_union = p_a + p_b - p_ab
        value = p_ab / p_b
        q = rng.choice((
            "P(A) = {a}, P(B) = {b} and P(A or B) = {u}. Find P(A | B).",
            "For events A and B, P(A) = {a}, P(B) = {b} and P(A ∪ B) = {u}. What is the probability of A given B?",
            "In a town, {a} of households own a cat, {b} own a dog, and {u} own a cat or a dog. What is the "
            "probability that a dog-owning household also owns a cat?",
        )).format(a=_f(p_a), b=_f(p_b), u=_f(p_union))
        line = (f"P(A and B) = {_f(p_a)} + {_f(p_b)} - {_f(p_union)} = {_f(p_ab)}; "
                f"P(A | B) = {_f(p_ab)} ÷ {_f(p_b)} = {_f(value)}.")
        return _record(_hint(rng, q, value), [line], value, kind="union", p_a=_f(p_a), p_b=_f(p_b),
                       p_union=_f(p_union))
    if kind == "table":
        people, row_info, cols = rng.choice(_TABLES)
        rows = [label for label, _ in row_info]
        counts = [[rng.randint(3, 30) for _ in cols] for _ in rows]
        by_col = rng.random() < 0.5
        i, j = rng.randrange(2), rng.randrange(2)
        table = "; ".join(f"{rows[r]}: {counts[r][0]} {cols[0]}, {counts[r][1]} {cols[1]}" for r in range(2))
        if by_col:  # P(row i | column j)
            given_total = counts[0][j] + counts[1][j]
            ask = rng.choice((
                "One of those who {c} is chosen at random. What is the probability that they are {r}?",
                "Given that a randomly chosen person {c3}, how likely is it that they are {r}?",
            )).format(c=cols[j], c3=cols[j] if cols[j].startswith(("chose", "recovered", "did")) else
                      {"play a sport": "plays a sport", "do not play a sport": "does not play a sport",
                       "drive to work": "drives to work", "take the bus": "takes the bus"}[cols[j]], r=row_info[i][1])
            line = (f"Of the {counts[0][j]} + {counts[1][j]} = {given_total} who {cols[j]}, "
                    f"{counts[i][j]} are in the {rows[i]} row.")
        else:  # P(column j | row i)
            given_total = counts[i][0] + counts[i][1]
            ask = rng.choice((
                "A person {r} is chosen at random. What is the probability that they {c}?",
                "If we pick one of the {people} {r} at random, how likely is it that they {c}?",
            )).format(r=row_info[i][1] if not row_info[i][1].startswith(("an ", "a ")) else
                      f"who is {row_info[i][1]}", c=cols[j], people=people)
            line = (f"The {rows[i]} row has {counts[i][0]} + {counts[i][1]} = {given_total}, "
                    f"and {counts[i][j]} of them {cols[j]}.")
        value = Fraction(counts[i][j], given_total)
        intro = rng.choice(("A survey of {people} gives these counts: {t}.", "Counts of {people} — {t}.",
                            "Here is a two-way table of {people} ({t}).", "Among some {people}: {t}."))
        q = intro.format(people=people, t=table) + " " + ask
        line += " " + _prob_line(counts[i][j], given_total)
        return _record(_hint(rng, q, value), [line], value, kind="table", rows=list(rows), cols=list(cols),
                       counts=counts, given=["col", j] if by_col else ["row", i],
                       target=["row", i] if by_col else ["col", j])
    if kind == "dice":
        given, gv = rng.choice((("sum_eq", rng.randint(4, 10)), ("at_least_one", 6), ("sum_ge", rng.randint(8, 10)),
                                ("first_eq", rng.randint(1, 6))))
        event, ev = rng.choice((("doubles", None), ("sum_ge", rng.randint(9, 11)), ("first_eq", rng.randint(1, 6)),
                                ("at_least_one", 6), ("sum_eq", rng.randint(5, 9))))
        tests = {"sum_eq": lambda o, v: o[0] + o[1] == v, "sum_ge": lambda o, v: o[0] + o[1] >= v,
                 "at_least_one": lambda o, v: v in o, "first_eq": lambda o, v: o[0] == v,
                 "doubles": lambda o, v: o[0] == o[1]}
        if given == event:
            event, ev = "doubles", None
        cond = [o for o in product(range(1, 7), repeat=2) if tests[given](o, gv)]
        both = [o for o in cond if tests[event](o, ev)]
        value = Fraction(len(both), len(cond))
        gtext = {"sum_eq": f"the sum is {gv}", "sum_ge": f"the sum is at least {gv}",
                 "at_least_one": f"at least one die shows a {gv}", "first_eq": f"the first die shows {gv}"}[given]
        etext = {"doubles": "both dice show the same number", "sum_ge": f"the sum is at least {ev}",
                 "first_eq": f"the first die shows {ev}", "at_least_one": f"at least one die shows a {ev}",
                 "sum_eq": f"the sum is {ev}"}[event]
        q = rng.choice((
            "Two fair dice are rolled, a first and a second. Given that {g}, what is the probability that {e}?",
            "A first and a second fair die are rolled. You are told that {g}. How likely is it that {e}?",
            "Roll two fair dice (first and second). If {g}, find the probability that {e}.",
            "Two dice are thrown one after the other and {g}. What is the conditional probability that {e}?",
        )).format(g=gtext, e=etext)
        short = {"sum_eq": "sum {v}", "sum_ge": "sum at least {v}", "at_least_one": "a {v}",
                 "first_eq": "first die {v}", "doubles": "doubles"}
        line = (f"{len(cond)} of the 36 outcomes have {short[given].format(v=gv)}; "
                f"{len(both)} of those also have {short[event].format(v=ev)}. " + _prob_line(len(both), len(cond)))
        return _record(_hint(rng, q, value), [line], value, kind="dice", given=given, given_value=gv,
                       event=event, event_value=ev)
    if kind == "urn_seq":
        colours = rng.sample(_COLOURS, 2)
        counts = {c: rng.randint(2, 8) for c in colours}
        c1, c2 = colours
        N, r = sum(counts.values()), counts[c1]
        ask = rng.choice(("second_given_first", "both_given_one")) if difficulty == "hard" else "second_given_first"
        intro = f"A bag has {counts[c1]} {c1} and {counts[c2]} {c2} balls. Two balls are drawn without replacement."
        if ask == "second_given_first":
            first = rng.choice(colours)
            value = Fraction(counts[c1] - (first == c1), N - 1)
            q = intro + " " + rng.choice((
                "Given that the first ball is {f}, what is the probability that the second is {c}?",
                "If the first one drawn is {f}, how likely is the second to be {c}?",
                "The first ball turns out to be {f}. Find the probability that the second ball is {c}.",
            )).format(f=first, c=c1)
            left = counts[c1] - (first == c1)
            line = (f"After a {first} ball is removed, {N - 1} balls remain and {left} are {c1}. "
                    + _prob_line(left, N - 1))
            return _record(_hint(rng, q, value), [line], value, kind="urn_seq", counts=counts, ask=ask,
                           first=first, colour=c1)
        both = r * (r - 1)
        at_least = N * (N - 1) - (N - r) * (N - r - 1)
        value = Fraction(both, at_least)
        q = intro + " " + rng.choice((
            "Given that at least one of them is {c}, what is the probability that both are {c}?",
            "You learn that at least one drawn ball is {c}. How likely is it that both are {c}?",
        )).format(c=c1)
        line = (f"Ordered draws: {N} × {N - 1} = {N * (N - 1)}; both {c1}: {r} × {r - 1} = {both}; "
                f"at least one {c1}: {N * (N - 1)} - {N - r} × {N - r - 1} = {at_least}. "
                + _prob_line(both, at_least))
        return _record(_hint(rng, q, value), [line], value, kind="urn_seq", counts=counts, ask=ask, first=None,
                       colour=c1)
    if kind == "two_urns":
        r1, b1, r2, b2 = (rng.randint(1, 8) for _ in range(4))
        p1 = Fraction(r1, r1 + b1) / 2
        p2 = Fraction(r2, r2 + b2) / 2
        value = p1 / (p1 + p2)
        q = rng.choice((
            "Urn 1 has {r1} red and {b1} blue balls; urn 2 has {r2} red and {b2} blue balls. A fair coin picks an "
            "urn and one ball is drawn from it. The ball is red. What is the probability it came from urn 1?",
            "Box A holds {r1} red and {b1} blue marbles and box B holds {r2} red and {b2} blue. {name} chooses a box "
            "at random and draws a red marble. How likely is it that the box was A?",
            "Two bags: the first has {r1} red and {b1} blue balls, the second {r2} red and {b2} blue. A bag is "
            "chosen with equal probability and a red ball is drawn. Find P(first bag | red).",
        )).format(r1=r1, b1=b1, r2=r2, b2=b2, name=rng.choice(_NAMES))
        line = (f"P(1 and red) = 1/2 × {r1}/{r1 + b1} = {_f(p1)}; P(2 and red) = 1/2 × {r2}/{r2 + b2} = {_f(p2)}. "
                f"P(1 | red) = {_f(p1)} ÷ ({_f(p1)} + {_f(p2)}) = {_f(value)}.")
        return _record(_hint(rng, q, value), [line], value, kind="two_urns", urns=[[r1, b1], [r2, b2]])
    # bayes / total probability with a test
    prior = rng.choice((1, 2, 4, 5, 10, 20))
    sens = rng.choice((80, 90, 95, 99, 75))
    fp = rng.choice((1, 2, 5, 10, 20))
    story, pos, sick, neg, healthy = rng.choice(_BAYES_STORIES)
    P, S, FP = Fraction(prior, 100), Fraction(sens, 100), Fraction(fp, 100)
    tp, fpp = P * S, (1 - P) * FP
    ask = "total" if kind == "total" else rng.choice(("positive", "positive", "negative"))
    if ask == "total":
        value = tp + fpp
        q = story.format(prior=prior, sens=sens, fp=fp) + " " + rng.choice((
            "What is the probability that {pos}?", "Find the overall probability that {pos}.",
            "How likely is it that {pos}?")).format(pos=pos)
        line = f"P = {_f(P)} × {_f(S)} + {_f(1 - P)} × {_f(FP)} = {_f(tp)} + {_f(fpp)} = {_f(value)}."
    elif ask == "positive":
        value = tp / (tp + fpp)
        q = story.format(prior=prior, sens=sens, fp=fp) + " " + rng.choice((
            "If {pos}, what is the probability that it {sick}?", "Given that {pos}, how likely is it that it {sick}?",
            "Suppose {pos}. Find the probability that it {sick}.")).format(pos=pos, sick=sick)
        line = (f"P(+) = {_f(P)} × {_f(S)} + {_f(1 - P)} × {_f(FP)} = {_f(tp)} + {_f(fpp)} = {_f(tp + fpp)}. "
                f"By Bayes, P = {_f(tp)} ÷ {_f(tp + fpp)} = {_f(value)}.")
    else:
        tn, fn = (1 - P) * (1 - FP), P * (1 - S)
        value = tn / (tn + fn)
        q = story.format(prior=prior, sens=sens, fp=fp) + " " + rng.choice((
            "If {neg}, what is the probability that it {healthy}?",
            "Given that {neg}, how likely is it that it {healthy}?")).format(neg=neg, healthy=healthy)
        line = (f"P(-) = {_f(1 - P)} × {_f(1 - FP)} + {_f(P)} × {_f(1 - S)} = {_f(tn)} + {_f(fn)} = "
                f"{_f(tn + fn)}. By Bayes, P = {_f(tn)} ÷ {_f(tn + fn)} = {_f(value)}.")
    q = q.replace("that it has the disease", "that the person has the disease").replace(
        "that it does not have", "that the person does not have").replace("that it carries", "that they carry") \
        .replace("that it is not a carrier", "that they are not a carrier")
    return _record(_hint(rng, q, value), [line], value, kind="bayes", ask=ask, prior=_f(P), sensitivity=_f(S),
                   false_positive=_f(FP))


# ---------------------------------------------------------------------------
# expectation_variance
# ---------------------------------------------------------------------------

def _terms(values, probs, square: bool = False) -> str:
    """``0 × 1/4 + 1 × 1/2 + 2 × 1/4`` (values squared for E[X^2])."""
    return " + ".join(f"{(v * v if square else v)} × {_f(p)}" if (v * v if square else v) >= 0
                      else f"({v}) × {_f(p)}" for v, p in zip(values, probs))


def _random_pmf(rng: random.Random, size: int) -> tuple[list[int], list[Fraction]]:
    d = rng.choice((4, 5, 6, 8, 10, 12))
    cuts = sorted(rng.sample(range(1, d), size - 1))
    weights = [b - a for a, b in zip([0, *cuts], [*cuts, d])]
    start = rng.randint(0, 3)
    values = sorted(rng.sample(range(start, start + 8), size))
    return values, [Fraction(w, d) for w in weights]


def _expectation_variance(rng: random.Random, difficulty: str) -> dict:
    """E[X] and Var(X): fair n-sided dice, a small given PMF, games, binomial (np, np(1-p)), aX + b."""
    kinds = {"easy": ("die", "pmf", "binomial", "game"),
             "medium": ("die", "pmf", "binomial", "linear", "game"),
             "hard": ("die", "pmf", "binomial", "linear", "two_dice")}[difficulty]
    kind = rng.choice(kinds)
    quantity = "mean" if difficulty == "easy" else rng.choice(("mean", "variance")) if difficulty == "medium" \
        else "variance"
    if kind in ("game", "two_dice") and difficulty != "hard":
        quantity = "mean"
    if kind == "die":
        sides = rng.choice((4, 6, 8, 10, 12, 20)) if difficulty != "easy" else rng.choice((4, 6, 8))
        mean = Fraction(sides + 1, 2)
        ex2 = Fraction((sides + 1) * (2 * sides + 1), 6)
        var = ex2 - mean ** 2
        die = "a fair six-sided die" if sides == 6 else f"a fair {sides}-sided die (faces 1 to {sides})"
        if quantity == "mean":
            q = rng.choice((
                "What is the expected value of a roll of {die}?", "Find E[X] where X is the result of rolling {die}.",
                "On average, what number does {die} show?", "Compute the mean of the number shown by {die}.",
            )).format(die=die)
            line = f"E[X] = (1 + 2 + ... + {sides})/{sides} = {sides * (sides + 1) // 2}/{sides} = {_f(mean)}."
            return _record(_hint(rng, q, mean), [line], mean, kind="die", sides=sides, quantity=quantity)
        q = rng.choice((
            "What is the variance of the number shown when rolling {die}?", "Find Var(X) for X = the roll of {die}.",
            "Let X be the outcome of {die}. Compute Var(X).", "How large is the variance of a single roll of {die}?",
        )).format(die=die)
        line = (f"E[X] = {_f(mean)} and E[X^2] = (1^2 + ... + {sides}^2)/{sides} = {_f(ex2)}, "
                f"so Var(X) = {_f(ex2)} - ({_f(mean)})^2 = {_f(var)}.")
        return _record(_hint(rng, q, var), [line], var, kind="die", sides=sides, quantity=quantity)
    if kind in ("pmf", "game"):
        values, probs = _random_pmf(rng, 3 if difficulty != "hard" else rng.randint(3, 4))
        if kind == "game":
            values = [rng.choice((-5, -2, -1)), rng.randint(2, 3), rng.randint(4, 20)]
        mean = sum(v * p for v, p in zip(values, probs))
        ex2 = sum(v * v * p for v, p in zip(values, probs))
        var = ex2 - mean ** 2
        table = ", ".join(f"P(X = {v}) = {_f(p)}" for v, p in zip(values, probs))
        if kind == "game":
            lose, small, big = values
            q = rng.choice((
                "In a game you lose ${l} with probability {pl}, win ${s} with probability {ps}, and win ${b} with "
                "probability {pb}. What are your expected winnings in dollars?",
                "A raffle ticket pays ${b} with probability {pb} and ${s} with probability {ps}; otherwise "
                "(probability {pl}) you are down ${l}. What is the expected payoff?",
                "A spinner gives -{l} points with probability {pl}, {s} points with probability {ps} and {b} points "
                "with probability {pb}. Find the expected score.",
            )).format(l=-lose, s=small, b=big, pl=_f(probs[0]), ps=_f(probs[1]), pb=_f(probs[2]))
            line = f"E = {_terms(values, probs)} = {_f(mean)}."
            return _record(_hint(rng, q, mean), [line], mean, kind="pmf", values=values,
                           probs=[_f(p) for p in probs], quantity="mean")
        if quantity == "mean":
            q = rng.choice((
                "A random variable X has {t}. Find E[X].", "Given {t}, what is the expected value of X?",
                "X takes values {vs} with probabilities {ps}. What is the mean of X?",
                "What is E[X] if {t}?",
            )).format(t=table, vs=", ".join(map(str, values)), ps=", ".join(_f(p) for p in probs))
            line = f"E[X] = {_terms(values, probs)} = {_f(mean)}."
            return _record(_hint(rng, q, mean), [line], mean, kind="pmf", values=values,
                           probs=[_f(p) for p in probs], quantity="mean")
        q = rng.choice((
            "A random variable X has {t}. Find Var(X).", "Given {t}, what is the variance of X?",
            "X takes values {vs} with probabilities {ps}. Compute the variance of X.",
            "What is Var(X) if {t}?",
        )).format(t=table, vs=", ".join(map(str, values)), ps=", ".join(_f(p) for p in probs))
        line = (f"E[X] = {_terms(values, probs)} = {_f(mean)}.\nE[X^2] = {_terms(values, probs, True)} = {_f(ex2)}.\n"
                f"Var(X) = {_f(ex2)} - ({_f(mean)})^2 = {_f(var)}.")
        return _record(_hint(rng, q, var), [line], var, kind="pmf", values=values, probs=[_f(p) for p in probs],
                       quantity="variance")
    if kind == "binomial":
        p = rng.choice((Fraction(1, 2), Fraction(1, 3), Fraction(1, 4), Fraction(1, 6), Fraction(1, 5),
                        Fraction(2, 3), Fraction(3, 4)))
        n = rng.randint(2, 12) * (p.denominator if difficulty == "easy" else 1)
        mean, var = n * p, n * p * (1 - p)
        story = {Fraction(1, 2): "heads in {n} flips of a fair coin",
                 Fraction(1, 6): "sixes in {n} rolls of a fair die",
                 Fraction(1, 4): "correct answers when guessing on {n} questions with 4 choices each",
                 }.get(p, "successes in {n} independent trials with success probability {p}")
        story = story.format(n=n, p=_f(p))
        if quantity == "mean":
            q = rng.choice((
                "What is the expected number of {s}?", "On average, how many {s} are there?",
                "X counts the {s}. Find E[X].", "X ~ Binomial({n}, {p}). What is E[X]?",
            )).format(s=story, n=n, p=_f(p))
            line = f"For a binomial count, E[X] = np = {n} × {_f(p)} = {_f(mean)}."
            return _record(_hint(rng, q, mean), [line], mean, kind="binomial", n=n, p=_f(p), quantity="mean")
        q = rng.choice((
            "What is the variance of the number of {s}?", "X counts the {s}. Find Var(X).",
            "X ~ Binomial({n}, {p}). What is Var(X)?", "Compute the variance of X, the number of {s}.",
        )).format(s=story, n=n, p=_f(p))
        line = f"For a binomial count, Var(X) = np(1 - p) = {n} × {_f(p)} × {_f(1 - p)} = {_f(var)}."
        return _record(_hint(rng, q, var), [line], var, kind="binomial", n=n, p=_f(p), quantity="variance")
    if kind == "linear":
        a, b = rng.choice((2, 3, 4, 5, -2, -1)), rng.randint(-10, 10)
        mean, var = Fraction(7, 2), Fraction(35, 12)
        expr = f"{a}X {'+' if b >= 0 else '-'} {abs(b)}"
        if quantity == "mean":
            value = a * mean + b
            q = rng.choice((
                "X is the result of rolling a fair six-sided die. Find E[{e}].",
                "A fair die is rolled and shows X. What is the expected value of Y = {e}?",
                "Let X be a fair die roll. Compute the mean of {e}.",
                "You win {e} dollars, where X is the roll of a fair die. What are your expected winnings?",
            )).format(e=expr)
            line = f"E[X] = 7/2, so E[{expr}] = {a} × 7/2 {'+' if b >= 0 else '-'} {abs(b)} = {_f(value)}."
        else:
            value = a * a * var
            q = rng.choice((
                "X is the result of rolling a fair six-sided die. Find Var({e}).",
                "A fair die is rolled and shows X. What is the variance of Y = {e}?",
                "Let X be a fair die roll. Compute the variance of {e}.",
                "Given Var(X) = 35/12 for a fair die roll X, find Var({e}).",
            )).format(e=expr)
            line = f"Var(X) = 35/12 for a fair die, and Var(aX + b) = a^2 Var(X) = {a * a} × 35/12 = {_f(value)}."
        return _record(_hint(rng, q, value), [line], value, kind="linear", a=a, b=b, quantity=quantity)
    # two_dice: the sum of two fair dice
    value = Fraction(7) if quantity == "mean" else Fraction(35, 6)
    if quantity == "mean":
        q = rng.choice(("What is the expected sum of two fair dice?", "Two fair dice are rolled. Find E[sum].",
                        "On average, what total do two dice show?"))
        line = "E[sum] = E[X1] + E[X2] = 7/2 + 7/2 = 7."
    else:
        q = rng.choice(("What is the variance of the sum of two fair dice?",
                        "Two fair dice are rolled independently. Find the variance of their total.",
                        "Let S be the sum of two independent fair die rolls. Compute Var(S)."))
        line = "The dice are independent, so Var(sum) = 35/12 + 35/12 = 35/6."
    return _record(q, [line], value, kind="two_dice", quantity=quantity)


# ---------------------------------------------------------------------------
# binomial
# ---------------------------------------------------------------------------

_BINOMIAL_STORIES = (  # (p, setup with {n}, what is counted: singular, plural)
    (Fraction(1, 2), "A fair coin is tossed {n} times.", "head", "heads"),
    (Fraction(1, 6), "A fair die is rolled {n} times.", "six", "sixes"),
    (Fraction(1, 4), "A student guesses randomly on {n} multiple-choice questions, each with 4 options.",
     "correct answer", "correct answers"),
    (Fraction(1, 3), "A spinner with 3 equal sections (one red) is spun {n} times.", "red", "reds"),
    (Fraction(2, 3), "A basketball player makes each free throw with probability 2/3 and takes {n} shots.",
     "made shot", "made shots"),
    (Fraction(3, 4), "Each of {n} seeds germinates independently with probability 3/4.", "seed that germinates",
     "seeds that germinate"),
    (Fraction(1, 5), "Each of {n} customers independently buys dessert with probability 1/5.", "dessert buyer",
     "dessert buyers"),
)


def _binomial(rng: random.Random, difficulty: str) -> dict:
    """P(X = k), P(X >= k), P(X <= k) for X ~ Binomial(n, p) with p a simple fraction."""
    p, setup, one, many = rng.choice(_BINOMIAL_STORIES)
    n = {"easy": rng.randint(2, 4), "medium": rng.randint(4, 6), "hard": rng.randint(5, 8)}[difficulty]
    if difficulty == "hard":
        event = rng.choice(("ge", "le"))
        k = n - rng.randint(1, 2) if event == "ge" else rng.randint(1, 2)
    else:
        event, k = "eq", rng.randint(0, n) if difficulty == "medium" else rng.randint(1, n)
    ks = {"eq": [k], "ge": list(range(k, n + 1)), "le": list(range(0, k + 1))}[event]
    terms = [math.comb(n, j) * p ** j * (1 - p) ** (n - j) for j in ks]
    value = sum(terms, Fraction(0))
    rel = {"eq": "exactly", "ge": "at least", "le": "at most"}[event]
    generic = rng.random() < 0.25
    if generic:
        q = rng.choice((
            "X ~ Binomial({n}, {p}). Find P(X {op} {k}).",
            "Let X be binomial with n = {n} and p = {p}. What is P(X {op} {k})?",
        )).format(n=n, p=_f(p), k=k, op={"eq": "=", "ge": ">=", "le": "<="}[event])
    else:
        what = f"no {many}" if event == "eq" and k == 0 else f"{rel} {k} {one if k == 1 else many}"
        q = setup.format(n=n) + " " + rng.choice((
            "What is the probability of {w}?", "Find the probability of getting {w}.",
            "How likely is it to get {w}?", "What is the chance of {w}?",
        )).format(w=what)
    pieces = [f"C({n}, {j}) ({_f(p)})^{j} ({_f(1 - p)})^{n - j}" for j in ks]
    values = [_f(t) for t in terms]
    if len(ks) == 1:
        j = ks[0]
        raw_num = math.comb(n, j) * p.numerator ** j * (p.denominator - p.numerator) ** (n - j)
        raw = f"{raw_num}/{p.denominator ** n}"
        line = f"P(X = {k}) = {pieces[0]} = {raw}" + (f" = {_f(value)}." if raw != _f(value) else ".")
    else:
        sym = {"ge": "≥", "le": "≤"}[event]
        line = (f"P(X {sym} {k}) = " + " + ".join(f"P({j})" for j in ks) + " = " + " + ".join(values)
                + f" = {_f(value)}, using P(j) = C({n}, j) ({_f(p)})^j ({_f(1 - p)})^({n} - j).")
    return _record(_hint(rng, q, value, chance=0.2), [line], value, n=n, k=k, p=_f(p), event=event)


# ---------------------------------------------------------------------------
# Registry and public API
# ---------------------------------------------------------------------------

# Family name -> generator. Each generator takes (rng, difficulty) and returns the
# question, worked answer, final answer and params; generate_problems adds the
# family, difficulty and source. The order here is the order of FAMILIES.
_REGISTRY = {
    "arithmetic": _arithmetic,
    "order_of_operations": _order_of_operations,
    "fractions": _fractions,
    "percentages": _percentages,
    "word_problem": _word_problem,
    "permutations": _permutations,
    "combinations": _combinations,
    "dice": _dice,
    "coins": _coins,
    "cards": _cards,
    "urns": _urns,
    "complement": _complement,
    "conditional_bayes": _conditional_bayes,
    "expectation_variance": _expectation_variance,
    "binomial": _binomial,
}

FAMILIES: tuple[str, ...] = tuple(_REGISTRY)


def _question_key(question: str) -> str:
    return " ".join(question.lower().split())


def generate_problems(n: int, seed: int, families: list[str] | None = None,
                      difficulty: str | None = None) -> list[dict]:
    """``n`` generated problems with exact answers, the same for the same arguments.

    Families take turns (round robin over a seeded shuffle of ``families``,
    default all of ``FAMILIES``) so every family is represented; ``difficulty``
    is one of ``DIFFICULTIES`` or ``None`` for a seeded mix. No question repeats
    within a call: a family gets ``_MAX_TRIES`` draws to find a new question, and
    when it runs out the others carry on without it. Raises ``ValueError`` for
    an unknown family or difficulty, a negative ``n``, or when the chosen
    families cannot produce ``n`` distinct questions.

    Used in 01_data_prep (training and validation data, GRPO prompts) and by
    ``python -m helpers check``.
    """
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    if difficulty is not None and difficulty not in DIFFICULTIES:
        raise ValueError(f"unknown difficulty {difficulty!r}; valid: {', '.join(DIFFICULTIES)}")
    if families is None:
        chosen = list(FAMILIES)
    else:
        if isinstance(families, str):
            families = [families]
        unknown = [f for f in families if f not in _REGISTRY]
        if unknown:
            raise ValueError(f"unknown famil{'y' if len(unknown) == 1 else 'ies'} "
                             f"{', '.join(map(repr, unknown))}; valid: {', '.join(FAMILIES)}")
        chosen = list(dict.fromkeys(families))
        if not chosen:
            raise ValueError(f"families is empty; valid: {', '.join(FAMILIES)}")
    if n == 0:
        return []
    rng = random.Random(seed)
    order = chosen[:]
    rng.shuffle(order)
    levels = [difficulty] if difficulty else list(DIFFICULTIES)
    exhausted: set[tuple[str, str]] = set()
    seen: set[str] = set()
    out: list[dict] = []
    turn = 0
    while len(out) < n:
        active = [f for f in order if any((f, d) not in exhausted for d in levels)]
        if not active:
            raise ValueError(f"could not generate {n} distinct problems from {', '.join(chosen)} "
                             f"(difficulty {difficulty or 'mixed'}); got {len(out)}")
        family = active[turn % len(active)]
        turn += 1
        open_levels = [d for d in levels if (family, d) not in exhausted]
        level = rng.choice(open_levels)
        for _ in range(_MAX_TRIES):
            record = _REGISTRY[family](rng, level)
            key = _question_key(record["question"])
            if key not in seen:
                seen.add(key)
                out.append({"question": record["question"], "answer": record["answer"],
                            "final_answer": record["final_answer"], "family": family,
                            "difficulty": level, "source": f"generated:{family}",
                            "params": record["params"]})
                break
        else:
            exhausted.add((family, level))
    return out
