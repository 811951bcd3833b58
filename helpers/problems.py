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
from itertools import permutations, product

from helpers.answers import answer_line, format_final_answer

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


def _record(question: str, lines: list[str], value, **params) -> dict:
    """One problem: the question, the worked solution ending in the answer line, and its params."""
    value = Fraction(value)
    answer = "\n".join([*lines, answer_line(value)])
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


def _prob_line(favourable: int, total: int) -> str:
    """``P = 6/36 = 1/6`` (or ``P = 6/36`` when it is already reduced)."""
    p = Fraction(favourable, total)
    raw = f"{favourable}/{total}"
    return f"P = {raw}." if raw == _f(p) else f"P = {raw} = {_f(p)}."


def _pow_text(p: Fraction, k: int) -> str:
    """``(5/6)^3`` or ``(1/2)^4``; a bare ``p`` for k = 1."""
    return _f(p) if k == 1 else f"({_f(p)})^{k}"


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
    """``17 × 23 = 17 × 20 + 17 × 3 = 340 + 51 = 391.`` (splits the shorter factor)."""
    big, small = (a, b) if len(str(a)) >= len(str(b)) else (b, a)
    parts = _place_parts(small)
    if len(parts) == 1:
        return f"{a} × {b} = {a * b}."
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
    ("Calculate {e} (remember which operations come first).", {}),
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
            c = _proper(rng, dmax)
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
        return _record(q, [line], value, kind=kind, base=base, percent=_pct(p))
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
            line = f"The discount is {_pct(p)}% of {base} = {_f(change)}, so the price is {base} - {_f(change)} = {_f(value)}."
            return _record(q, [line], value, kind="change", base=base, changes=[str(-p)])
        value = base + change
        q = rng.choice((
            "A town of {n} people grows by {p}%. What is the new population?",
            "Increase {n} by {p}%.",
            "A ${n} bill has a {p}% tip added. What is the total in dollars?",
            "What is {n} after a {p}% increase?",
            "A salary of ${n} per week rises by {p}%. What is the new weekly salary?",
        )).format(n=base, p=_pct(p))
        line = f"The increase is {_pct(p)}% of {base} = {_f(change)}, so the new value is {base} + {_f(change)} = {_f(value)}."
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
# Registry and public API
# ---------------------------------------------------------------------------

_REGISTRY = {
    "arithmetic": _arithmetic,
    "order_of_operations": _order_of_operations,
    "fractions": _fractions,
    "percentages": _percentages,
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
