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
import operator
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
    """``P = 6/36 = (6 ÷ 6)/(36 ÷ 6) = 1/6`` (or ``P = 6/36`` when it is already reduced): the common factor is
    named, so reducing a fraction is a division the model writes out, not a guess (``8/40 = 1/2`` was one)."""
    p = Fraction(favourable, total)
    raw = f"{favourable}/{total}"
    if raw == _f(p):
        return f"P = {raw}."
    g = math.gcd(favourable, total)
    return f"P = {raw} = ({favourable} ÷ {g})/({total} ÷ {g}) = {_f(p)}."


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


# Templates are (question, rule): the rule says in words which operation the wording asks for, and the
# worked solution starts with it. Look-alikes on purpose: "{b} more than {a}" adds, "how much more is {a}
# than {b}" subtracts; "{a} times {b}" multiplies, "how many times does {b} go into {a}" divides.
# "{name}" is a name and "{x}" a detail that does not change the answer (recorded as ``extra``).
_ADD_TEMPLATES = (
    ("What is {a} plus {b}?", "Plus means add"),
    ("{a} + {b} = ?", "The sign + means add"),
    ("Work out the sum of {a} and {b}.", "A sum means add"),
    ("Find the total of {a} and {b}.", "A total means add"),
    ("What number is {b} more than {a}?", "More than means add"),
    ("Start with {a} and increase it by {b}. What is the result?", "Increasing means add"),
    ("A library has {a} books and buys {b} more. How many books does it have now?", "Buying more means add"),
    ("{name} scored {a} points in the first game and {b} in the second. Each game lasted {x} minutes. "
     "How many points did {name} score in all?", "In all means add the two scores"),
    ("How many seats are there altogether if one hall has {a} seats and another has {b}?",
     "Altogether means add"),
    ("Add {b} to {a}.", "Add"),
)
_SUB_TEMPLATES = (
    ("What is {a} minus {b}?", "Minus means subtract"),
    ("{a} - {b} = ?", "The sign - means subtract"),
    ("Take {b} away from {a}.", "Taking away means subtract"),
    ("Find the difference between {a} and {b}.", "A difference means subtract the smaller from the larger"),
    ("How much greater is {a} than {b}?", "How much greater means subtract"),
    ("What number is {b} less than {a}?", "Less than means subtract"),
    ("A tank holds {a} litres of water and {b} litres are drained. How many litres remain?",
     "Draining leaves less, so subtract"),
    ("{name} had {a} stamps in an album with {x} pages and sold {b} of them. How many stamps are left?",
     "Selling leaves fewer, so subtract"),
    ("A road is {a} metres long and {b} metres of it are paved. How many metres are not paved yet?",
     "The rest is the whole minus the part, so subtract"),
    ("By how much does {a} exceed {b}?", "How much it exceeds by means subtract"),
)
_MUL_TEMPLATES = (
    ("What is {a} times {b}?", "Times means multiply"),
    ("{a} × {b} = ?", "The sign × means multiply"),
    ("Find the product of {a} and {b}.", "A product means multiply"),
    ("A box holds {b} rows of {a} apples. How many apples are in the box?", "Equal rows means multiply"),
    ("{name} reads {a} pages every day for {b} days. How many pages is that?",
     "The same amount each day means multiply"),
    ("There are {a} buses, each carrying {b} people, on a trip of {x} km. How many people travel?",
     "Equal groups means multiply"),
    ("Work out {a} lots of {b}.", "Lots of means multiply"),
    ("Tickets cost ${b} each. How many dollars do {a} tickets cost?", "Price times number bought means multiply"),
    ("Multiply {a} by {b}.", "Multiply"),
    ("Calculate {a} * {b}.", "The sign * means multiply"),
)
_DIV_TEMPLATES = (
    ("What is {a} divided by {b}?", "Divided by means divide"),
    ("{a} ÷ {b} = ?", "The sign ÷ means divide"),
    ("{a} stickers are shared equally among {b} children. How many stickers does each child get?",
     "Sharing equally means divide"),
    ("How many times does {b} go into {a}?", "How many times it goes in means divide"),
    ("{a} eggs are packed in boxes of {b}. How many boxes are filled?", "Packing equal groups means divide"),
    ("Split {a} into {b} equal parts. How big is each part?", "Equal parts means divide"),
    ("{name} drives {a} km in {b} hours at a steady speed, with {x} passengers. How many km is that per hour?",
     "Per hour means divide the distance by the hours"),
    ("What number times {b} gives {a}?", "A missing factor means divide"),
    ("Work out {a} / {b}.", "The sign / means divide"),
    ("Divide {a} by {b}.", "Divide"),
)


def _arith_question(rng: random.Random, templates: tuple, a: int, b: int) -> tuple[str, str, list[int]]:
    """``(question, rule, extra)``: a template filled in; ``extra`` holds the detail number, if any."""
    template, rule = rng.choice(templates)
    x = rng.randint(2, 15)
    q = template.format(a=a, b=b, x=x, name=rng.choice(_NAMES))
    return q, rule, [x] if "{x}" in template else []


def _arithmetic(rng: random.Random, difficulty: str) -> dict:
    """One of + - × ÷ (exact division), worded many ways; the rule the wording asks for, then place-value steps."""
    op = rng.choice(("add", "subtract", "multiply", "divide"))
    size = {"easy": (10, 99), "medium": (100, 999), "hard": (1000, 9999)}[difficulty]
    smaller = {"easy": (2, 9), "medium": (10, 99), "hard": (100, 999)}[difficulty]
    if op in ("add", "subtract"):
        a, b = rng.randint(*size), rng.randint(*(size if rng.random() < 0.6 else smaller))
        if op == "subtract":
            a, b = max(a, b), min(a, b)
            if a == b:
                a += rng.randint(1, 9)
        sign = 1 if op == "add" else -1
        value = a + sign * b
        q, rule, extra = _arith_question(rng, _ADD_TEMPLATES if op == "add" else _SUB_TEMPLATES, a, b)
        return _record(q, [f"{rule}. {_add_steps(a, b, sign)}"], value, op=op, a=a, b=b,
                       expression=f"{a} {'+' if sign > 0 else '-'} {b}", extra=extra)
    ranges = {"easy": ((2, 9), (11, 99)), "medium": ((11, 99), (11, 99)),
              "hard": ((12, 99), (101, 999))}[difficulty]
    x, y = rng.randint(*ranges[0]), rng.randint(*ranges[1])
    if rng.random() < 0.5:
        x, y = y, x
    if op == "multiply":
        q, rule, extra = _arith_question(rng, _MUL_TEMPLATES, x, y)
        return _record(q, [f"{rule}. {_mul_steps(x, y)}"], x * y, op=op, a=x, b=y, expression=f"{x} * {y}",
                       extra=extra)
    divisor, quotient = min(x, y), max(x, y)
    if difficulty == "hard":
        divisor, quotient = rng.randint(11, 49), rng.randint(21, 199)
    total = divisor * quotient
    q, rule, extra = _arith_question(rng, _DIV_TEMPLATES, total, divisor)
    return _record(q, [f"{rule}. {_div_steps(total, divisor, quotient)}"], quotient, op=op, a=total, b=divisor,
                   expression=f"{total} / {divisor}", extra=extra)


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
    """A random expression (our own * / ^ notation) whose divisions are exact.

    Look-alikes on purpose: ``a + b * c`` next to ``(a + b) * c``, and same-level chains
    (``a - b + c``, ``a / b * c``) that must be read left to right.
    """
    r = rng.randint
    if difficulty == "easy":
        kind = rng.randrange(7)
        if kind == 0:
            return f"{r(2, 20)} + {r(2, 9)} * {r(2, 9)}"
        if kind == 1:
            return f"{r(2, 9)} * {r(2, 9)} - {r(1, 20)}"
        if kind == 2:
            return f"({r(2, 12)} + {r(2, 12)}) * {r(2, 6)}"
        if kind == 3:
            c = r(2, 9)
            return f"{r(10, 40)} - {c * r(2, 5)} / {c}"
        if kind == 4:
            a = r(10, 30)
            return f"{a} - {r(2, a - 1)} + {r(2, 15)}"
        if kind == 5:
            c = r(2, 6)
            return f"{c * r(2, 6)} / {c} * {r(2, 5)}"
        return f"{r(20, 60)} - {r(2, 9)} * {r(2, 5)}"
    if difficulty == "medium":
        kind = rng.randrange(6)
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
        if kind == 4:
            b, c = r(2, 12), r(2, 12)
            return f"{r(b + c + 1, 50)} - ({b} + {c})"
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
    ("{e} = ?", _SHOW),
    ("Work out {e}.", _SHOW),
    ("Using the order of operations, find {e}.", _SHOW),
    ("Simplify: {e}", {}),
    ("Calculate {e}, remembering which operations come first.", {}),
    ("What number does {e} equal?", _SHOW),
    ("Find the value of the expression {e}.", _SHOW),
    ("A teacher writes {e} on the board. What is its value?", _SHOW),
    ("Without a calculator, work out {e}.", {}),
    ("Here is an expression: {e}. What does it come to?", _SHOW),
    ("{name} types {e} into a calculator that follows the order of operations. What does it show?", {}),
)


def _ooo_rule(expr: str) -> str:
    """The order-of-operations rules an expression needs, in words: ``Brackets first, then × and ÷ before + and -``."""
    ops = re.findall(r"[-+*/^(]", expr)
    muls, adds = sum(o in "*/" for o in ops), sum(o in "+-" for o in ops)
    rules = ["brackets first"] if "(" in ops else []
    if "^" in ops:
        rules.append("then powers" if rules else "powers first")
    if muls and adds:
        rules.append("× and ÷ before + and -")
    elif muls > 1:
        rules.append("× and ÷ from left to right")
    if adds > 1:
        rules.append("+ and - from left to right")
    text = ", ".join(rules) or "one operation"
    return text[0].upper() + text[1:]


def _order_of_operations(rng: random.Random, difficulty: str) -> dict:
    """Brackets, powers, × ÷, + - in the right order; the rules named, then each reduction shown."""
    expr = _ooo_expression(rng, difficulty)
    stages, value = _evaluate_steps(expr)
    template, symbols = rng.choice(_OOO_TEMPLATES)
    q = template.format(e=_render(_tokenize(expr), symbols), name=rng.choice(_NAMES))
    line = f"{_ooo_rule(expr)}. " + " = ".join(stages) + "."
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
    "add": ("What is {a} + {b}?", "Add {a} and {b}.", "Find the sum of {a} and {b}.", "{a} + {b} = ?",
            "A recipe uses {a} cup of milk and {b} cup of water. How many cups of liquid is that in total?",
            "{name} walked {a} km before lunch and {b} km after it. How far did {name} walk altogether?",
            "A cake for {x} people needs {a} kg of flour and {b} kg of sugar. How many kg is that together?",
            "Work out {a} plus {b} in lowest terms."),
    "subtract": ("What is {a} - {b}?", "Subtract {b} from {a}.", "Find the difference {a} - {b}.", "{a} - {b} = ?",
                 "You have {a} of a pizza and eat {b} of a pizza. How much pizza is left?",
                 "How much larger is {a} than {b}?",
                 "A ribbon is {a} m long. {name} cuts off {b} m. How many metres are left?",
                 "A jug held {a} litre of juice, and {x} children drank {b} litre of it. How much juice is left?"),
    "multiply": ("What is {a} × {b}?", "Multiply {a} by {b}.", "What is {b} of {a}?", "Find the product of {a} and {b}.",
                 "{a} × {b} = ?", "A garden is {a} km long and {b} km wide. What is its area in square km?",
                 "Work out {a} times {b}.", "Compute {a} * {b} in lowest terms."),
    "divide": ("What is {a} ÷ {b}?", "Divide {a} by {b}.", "Compute {a} / ({b}).", "{a} ÷ {b} = ?",
               "What do you get when {a} is divided by {b}?", "How many times does {b} fit into {a}?",
               "How many portions of {b} kg are there in {a} kg of rice?",
               "Work out {a} divided by {b}."),
    "simplify": ("Simplify {a}.", "Reduce {a} to lowest terms.", "Write {a} in simplest form.",
                 "What is {a} in lowest terms?", "Cancel the common factors in {a}.",
                 "A class has {n} girls out of {d} students. What fraction of the class are girls, in simplest "
                 "form?", "{name} answered {n} of {d} questions correctly. Write that as a fraction in lowest terms.",
                 "{a} = ? Give it in lowest terms."),
    # Look-alikes: "2/3 of 12" multiplies; "what fraction of 12 is 8" is the part over the whole.
    "of_number": ("What is {a} of {w}?", "Find {a} of {w}.", "Work out {a} of {w}.", "How much is {a} of {w}?",
                  "{name} has {w} stickers and gives away {a} of them. How many stickers is that?",
                  "Of the {w} students in a school, {a} walk to school. How many students walk?",
                  "A {w} km trip is {a} done. How many km have been covered?",
                  "{a} of the {w} seats in a hall are taken. How many seats are taken?"),
    "what_fraction": ("What fraction of {w} is {p}?", "{p} out of {w} is what fraction, in lowest terms?",
                      "{name} ate {p} of the {w} sweets. What fraction of the sweets did {name} eat?",
                      "There are {w} cars in a car park and {p} are red. What fraction of the cars are red?",
                      "Write {p} as a fraction of {w}.",
                      "Of {w} days, {p} were sunny. What fraction of the days were sunny?"),
}
# The rule each operation uses, named before it is applied.
_FRACTION_RULES = {
    "add": "Add over a common denominator",
    "subtract": "Subtract over a common denominator",
    "multiply": "Multiply the tops and multiply the bottoms",
    "divide": "To divide, multiply by the reciprocal",
    "expression": "Brackets first, over a common denominator",
}


def _fraction_question(rng: random.Random, op: str, **values) -> tuple[str, list[int]]:
    """``(question, extra)`` from ``_FRACTION_TEMPLATES[op]``; ``extra`` holds the detail number, if any."""
    template = rng.choice(_FRACTION_TEMPLATES[op])
    x = rng.randint(2, 12)
    return template.format(x=x, name=rng.choice(_NAMES), **values), [x] if "{x}" in template else []


def _fractions(rng: random.Random, difficulty: str) -> dict:
    """Add, subtract, multiply, divide, simplify; a fraction of a number and what fraction one number is of another."""
    dmax = {"easy": 6, "medium": 12, "hard": 12}[difficulty]
    op = rng.choice(("add", "subtract", "multiply", "divide", "simplify", "of_number", "what_fraction"))
    if difficulty == "hard" and op not in ("simplify", "of_number", "what_fraction") and rng.random() < 0.6:
        a, b, c = _proper(rng, dmax), _proper(rng, dmax), _proper(rng, dmax)
        while len({a, b, c}) < 3:
            b, c = _proper(rng, dmax), _proper(rng, dmax)
        if rng.random() < 0.5:
            signs = [1, 1, -1] if a + b > c else [1, 1, 1]
            line, value = _add_fraction_steps([a, b, c], signs)
            line = f"Add and subtract over a common denominator: {line}"
            shown = f"{_f(a)} + {_f(b)} {'-' if signs[2] < 0 else '+'} {_f(c)}"
            expr = f"({_f(a)}) + ({_f(b)}) {'-' if signs[2] < 0 else '+'} ({_f(c)})"
        else:
            inner, s = _add_fraction_steps([a, b], [1, 1])
            line2, value = _mul_fraction_steps(s, c)
            line = f"Brackets first, adding over a common denominator: {inner}; then multiply: {line2}"
            shown = f"({_f(a)} + {_f(b)}) × {_f(c)}"
            expr = f"(({_f(a)}) + ({_f(b)})) * ({_f(c)})"
        q = rng.choice(("What is {e}?", "Compute {e}.", "Evaluate {e} and simplify.", "{e} = ?",
                        "Simplify {e}.", "Find the value of {e}.", "Work out {e} in lowest terms.")).format(e=shown)
        return _record(q, [line + "."], value, op="expression", expression=expr, extra=[])
    if op == "simplify":
        base = _proper(rng, dmax if difficulty == "easy" else 15)
        k = rng.randint(2, {"easy": 5, "medium": 9, "hard": 15}[difficulty])
        n, d = base.numerator * k, base.denominator * k
        g = math.gcd(n, d)
        line = (f"Divide top and bottom by their greatest common divisor: gcd({n}, {d}) = {g}, "
                f"so {n}/{d} = ({n} ÷ {g})/({d} ÷ {g}) = {_f(base)}.")
        q, extra = _fraction_question(rng, "simplify", a=_fr(n, d), n=n, d=d)
        return _record(q, [line], base, op="simplify", a=_fr(n, d), expression=f"({n}/{d})", extra=extra)
    if op == "of_number":
        part = _proper(rng, {"easy": 5, "medium": 10, "hard": 12}[difficulty])
        whole = part.denominator * rng.randint(2, {"easy": 10, "medium": 15, "hard": 40}[difficulty])
        value = part * whole
        q, extra = _fraction_question(rng, "of_number", a=_f(part), w=whole)
        line = (f"Of means multiply: {_f(part)} × {whole} = ({part.numerator} × {whole})/{part.denominator} "
                f"= {part.numerator * whole}/{part.denominator} = {_f(value)}.")
        return _record(q, [line], value, op="of_number", expression=f"({_f(part)}) * {whole}", extra=extra)
    if op == "what_fraction":
        whole = rng.randint(3, {"easy": 12, "medium": 30, "hard": 60}[difficulty])
        part = rng.randint(1, whole - 1)
        value = Fraction(part, whole)
        q, extra = _fraction_question(rng, "what_fraction", p=part, w=whole)
        g = math.gcd(part, whole)
        line = f"The fraction is the part over the whole: {part}/{whole}"
        line += "." if g == 1 else f"; gcd({part}, {whole}) = {g}, so {part}/{whole} = {_f(value)}."
        return _record(q, [line], value, op="what_fraction", expression=f"({part}/{whole})", extra=extra)
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
    q, extra = _fraction_question(rng, op, a=_f(a), b=_f(b))
    sym = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/"}[op]
    return _record(q, [f"{_FRACTION_RULES[op]}: {line}."], value, op=op, a=_f(a), b=_f(b),
                   expression=f"({_f(a)}) {sym} ({_f(b)})", extra=extra)


# ---------------------------------------------------------------------------
# percentages
# ---------------------------------------------------------------------------

def _pct(p: Fraction) -> str:
    """25 -> '25', 25/2 -> '12.5' (percent values in questions are written as decimals)."""
    p = Fraction(p)
    if p.denominator == 1:
        return str(p.numerator)
    return f"{float(p):g}"


# Look-alikes on purpose: the same jacket, bill or town asks for the percent of (the saving, the tip, the
# newcomers), the price after the change, or the percent change itself. "{x}" is a detail that does not matter.
_PERCENT_OF_TEMPLATES = (
    "What is {p}% of {n}?", "Find {p} percent of {n}.", "{p}% of {n} = ?", "Work out {p}% of {n}.",
    "How much is {p}% of {n}?",
)
_PERCENT_OF_STORIES = (  # only used when the answer is a whole number
    "A survey of {n} people found that {p}% prefer tea. How many people is that?",
    "A jacket costs ${n} and is {p}% off. How many dollars do you save?",
    "A restaurant bill is ${n}. {name} leaves a {p}% tip. How much is the tip in dollars?",
    "Of the {n} students in a school, {p}% walk to school. How many students walk?",
    "A town of {n} people grows by {p}% this year. How many new residents is that?",
    "{name} got {p}% of the {n} questions right on a test that took {x} minutes. How many questions did "
    "{name} get right?",
)
_DISCOUNT_TEMPLATES = (
    "A jacket costs ${n}. It is on sale for {p}% off. What is the sale price in dollars?",
    "A price of ${n} is reduced by {p}%. What is the new price?",
    "What is the final cost of a ${n} item after a {p}% discount?",
    "A store takes {p}% off a ${n} pair of shoes. How much do the shoes cost now?",
    "{n} decreased by {p}% is what number?",
    "{name} buys a ${n} bike in a {p}% off sale. How much does {name} pay?",
    "The shop is open {x} days a week and sells a ${n} lamp at {p}% off. What does the lamp cost?",
    "Take {p}% off {n}. What is left?",
)
_INCREASE_TEMPLATES = (
    "A town of {n} people grows by {p}%. What is the new population?",
    "Increase {n} by {p}%.",
    "A ${n} bill has a {p}% tip added. What is the total in dollars?",
    "What is {n} after a {p}% increase?",
    "A salary of ${n} per week rises by {p}%. What is the new weekly salary?",
    "Prices rose {p}% this year. A basket that cost ${n} last year costs how much now?",
    "{name} has {x} plants and ${n} in savings, and the savings grow by {p}%. How many dollars are saved now?",
    "What number is {p}% more than {n}?",
)
_PERCENT_CHANGE_TEMPLATES = (
    "A price goes from ${a} to ${b}. By what percent did it {v}?",
    "Find the percentage {w} from {a} to {b}.",
    "The number of visitors went from {a} to {b}. What was the percentage {w}?",
    "{name}'s rent was ${a} and is now ${b}. By what percent did the rent {v}?",
    "Work out the percent {w} when {a} becomes {b}.",
    "What is the percentage {w} if a value changes from {a} to {b}?",
    "A shop had {a} customers on Monday and {b} on Tuesday, with {x} staff each day. By what percent did "
    "the number of customers {v}?",
)
_WHAT_PERCENT_TEMPLATES = (
    "What percent of {w} is {p}?", "{p} is what percentage of {w}?",
    "{name} scored {p} out of {w} on a test. What percentage is that?",
    "Out of {w} seeds, {p} sprouted. What percent sprouted?",
    "Express {p} out of {w} as a percentage.",
    "In a class of {w}, {p} students wear glasses. What percentage of the class wears glasses?",
    "A book has {w} pages and {name} has read {p} of them. What percent of the book has {name} read?",
)


def _pct_question(rng: random.Random, templates: tuple, **values) -> tuple[str, list[int]]:
    """``(question, extra)`` from one of ``templates``; ``extra`` holds the detail number, if any."""
    template = rng.choice(templates)
    x = rng.randint(2, 9)
    return template.format(x=x, name=rng.choice(_NAMES), **values), [x] if "{x}" in template else []


def _percentages(rng: random.Random, difficulty: str) -> dict:
    """Percent of, after a discount or increase, percent change, what percent, successive and reverse changes."""
    kinds = {"easy": ("percent_of", "discount", "increase", "what_percent"),
             "medium": ("percent_of", "discount", "increase", "fraction_change", "percent_change", "what_percent"),
             "hard": ("percent_of", "successive", "reverse", "fraction_change", "percent_change")}[difficulty]
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
        stories = _PERCENT_OF_STORIES if value.denominator == 1 else ()
        q, extra = _pct_question(rng, _PERCENT_OF_TEMPLATES + stories, p=_pct(p), n=base)
        line = f"Percent means out of 100, so {_pct(p)}% of {base} = {_pct(p)}/100 × {base} = {_f(value)}."
        return _record(_hint(rng, q, value), [line], value, kind=kind, base=base, percent=_pct(p), extra=extra)
    if kind in ("discount", "increase"):
        p = Fraction(rng.choice((10, 20, 25, 50) if difficulty == "easy" else (15, 30, 35, 40, 60, 5, 45)))
        base = rng.randint(2, 30) * (20 if rng.random() < 0.7 else 10)
        change = p * base / 100
        if kind == "discount":
            value = base - change
            q, extra = _pct_question(rng, _DISCOUNT_TEMPLATES, n=base, p=_pct(p))
            line = (f"A discount is taken off the price: the discount is {_pct(p)}% of {base} = {_f(change)}, "
                    f"so the price is {base} - {_f(change)} = {_f(value)}.")
            return _record(q, [line], value, kind="change", base=base, changes=[str(-p)], extra=extra)
        value = base + change
        q, extra = _pct_question(rng, _INCREASE_TEMPLATES, n=base, p=_pct(p))
        line = (f"An increase is added on: the increase is {_pct(p)}% of {base} = {_f(change)}, "
                f"so the new value is {base} + {_f(change)} = {_f(value)}.")
        return _record(q, [line], value, kind="change", base=base, changes=[str(p)], extra=extra)
    if kind == "percent_change":
        p = rng.choice((10, 20, 25, 50, 40, 60, 75, 5, 30) if difficulty == "medium" else (15, 35, 45, 12, 8, 64, 80))
        unit = 100 // math.gcd(p, 100)
        old = unit * rng.randint(1, max(2, 400 // unit))
        up = rng.random() < 0.5 or p >= 100
        new = old + (1 if up else -1) * old * p // 100
        diff, value = abs(new - old), Fraction(p, 100)
        q, extra = _pct_question(rng, _PERCENT_CHANGE_TEMPLATES, a=old, b=new, w="increase" if up else "decrease",
                                 v="rise" if up else "fall")
        raw = f"{diff}/{old}"
        shown = raw if raw == _f(value) else f"{raw} = {_f(value)}"
        line = (f"Percent change is the change over the original, times 100: the change is {max(old, new)} - "
                f"{min(old, new)} = {diff}, and {shown} = {p}%.")
        return _record(q, [line], value, form="percent", kind=kind, old=old, new=new, extra=extra)
    if kind == "what_percent":
        p = rng.choice((10, 20, 25, 50, 75, 40, 60, 5, 30, 80) if difficulty == "easy" else
                       (15, 35, 45, 12, 8, 64, 2, 36, 85))
        unit = 100 // math.gcd(p, 100)
        whole = unit * rng.randint(1, max(2, 200 // unit))
        part = whole * p // 100
        value = Fraction(part, whole)
        q, extra = _pct_question(rng, _WHAT_PERCENT_TEMPLATES, p=part, w=whole)
        raw = f"{part}/{whole}"
        shown = raw if raw == _f(value) else f"{raw} = {_f(value)}"
        line = f"A percent is the part over the whole, times 100: {shown} = {p}%."
        return _record(q, [line], value, form="percent", kind=kind, part=part, whole=whole, extra=extra)
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
            "What fraction of the starting amount is the change when {a} becomes {b}?",
        )).format(a=old, b=new, w=word)
        line = (f"The change over the original: the change is {abs(diff)} out of {old}, "
                f"so the fraction is {abs(diff)}/{old} = {_f(value)}.")
        if _f(value) == f"{abs(diff)}/{old}":
            line = f"The change over the original: {abs(diff)} out of {old}, so the fraction is {_f(value)}."
        return _record(_hint(rng, q, value), [line], value, kind=kind, old=old, new=new, extra=[])
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
            "What is the final price if ${n} is first increased by {p1}% and then cut by {p2}%?",
        ) if up else (
            "A price of ${n} is cut by {p1}% and then raised by {p2}%. What is the final price?",
            "A ${n} item is discounted {p1}%, then the sale price is marked up {p2}%. What does it cost now?",
            "Start with {n}. Decrease it by {p1}%, then increase the result by {p2}%. What number do you get?",
            "A stock worth ${n} loses {p1}% in one month and gains {p2}% the next. What is it worth at the end?",
            "What is the final price if ${n} is first cut by {p1}% and then increased by {p2}%?",
        )).format(n=base, p1=p1, p2=p2)
        line = (f"Each change applies to the amount after the one before: {base} × {100 + c1}/100 = {_f(mid)}; "
                f"then {_f(mid)} × {100 + c2}/100 = {_f(value)}.")
        return _record(q, [line], value, kind="change", base=base, changes=[str(c1), str(c2)], extra=[])
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
        "What was the price before a {p}% {w} if it is ${f} now?",
    )).format(p=p, f=_f(final), w="increase" if up else "discount", v="increased" if up else "decreased")
    line = (f"Work backwards: the new price is {100 + c}% of the original, so the original is "
            f"{_f(final)} × 100/{100 + c} = {original}.")
    return _record(q, [line], original, kind="reverse", final=_f(final), changes=[str(c)], extra=[])


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
    """Everyday stories: totals, differences, equal groups, sharing, shopping and change, distance, ages, rates.

    ``total``, ``difference``, ``groups`` and ``sharing`` are look-alikes: the same kind of story asks for a
    sum, a difference, a product or a quotient, and the solution names which one the question asks for.
    """
    kinds = {"easy": ("total", "difference", "groups", "shopping", "sharing", "distance", "ages_future", "machines"),
             "medium": ("total", "difference", "groups", "change", "sharing", "distance", "ages_sum_diff",
                        "machines"),
             "hard": ("total", "difference", "change", "ages_ratio", "average_speed", "work_together")}[difficulty]
    kind = rng.choice(kinds)
    name, other = _two_names(rng)
    r = rng.randint
    if kind in ("total", "difference", "groups"):
        return _word_arithmetic(rng, difficulty, kind, name, other)
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
                "What do {c} {its} cost at ${p} each?",
                "{n} has ${x} and buys {c} {its} that cost ${p} each. How much do the {its} cost altogether?",
            )).format(n=name, c=c, p=p, it=i1, its=i1s, x=c * p + r(1, 30))
            return _record(q, [f"The same price for each means multiply: {c} × ${p} = ${total}."], total,
                           kind="shopping", items=items)
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
        line = (f"Change is the money paid minus the cost. Cost: {parts[0]} and {parts[1]}, total ${total}. "
                f"Change: {bill} - {total} = ${value}.")
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
                "How many cards does each of {k} players get when {t} cards are dealt out equally?",
                "{t} apples are packed into bags of {k}. How many bags are filled?",
                "{n} has {t} stamps and {x} albums, and shares the stamps equally among {k} friends. How many "
                "stamps does each friend get?",
            )).format(t=total, k=people, n=name, x=r(2, 9))
            return _record(q, [f"Sharing equally means divide: {total} ÷ {people} = {each}."], each,
                           kind="sharing", total=total,
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
        line = (f"Take away the ones not shared, then sharing equally means divide: {total} - {given} = "
                f"{total - given} are left, and {total - given} ÷ {people} = {each}.")
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
                "How far does {n} drive in {t} hours at {s} km/h?",
                "At {s} km/h, a bus leaves at {x} o'clock and drives for {t} hours. How many km does it cover?",
            )).format(s=s, t=t, n=name, x=r(6, 11))
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
        line = (f"Distance = speed × time for each part, then add: {s1} × {t1} = {s1 * t1} km and {s2} × {t2} = "
                f"{s2 * t2} km, so {s1 * t1} + {s2 * t2} = {value} km.")
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
                "How many bricks does {n} lay in {h} hours at {r} bricks an hour?",
                "In {h} days, how many emails does {n} answer at {r} emails a day?",
            )).format(r=rate, h=hours, n=name)
            return _record(q, [f"A rate times the time gives the amount: {rate} × {hours} = {value}."], value,
                           kind="machines", rate=rate,
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
        line = (f"Rates of equal machines add up, then multiply by the time: together they do "
                f"{machines} × {rate} = {machines * rate} per {unit}, "
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
            "How old will {n} be {k} years from now, if {o} is {y} and {n} is {g} years older than {o}?",
        )).format(n=name, o=other, y=young, g=gap, k=years)
        line = (f"Older means add the gap, and later means add the years: {name} is {young} + {gap} = "
                f"{young + gap} now, so in {years} years {young + gap} + {years} = {value}.")
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
        line = f"The older age is half of sum plus difference: ({total} + {diff})/2 = {2 * older}/2 = {older}."
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
        line = (f"Write both facts as one equation. Let s be the age now: {k}s + {years} = {m}(s + {years}), so {k}s - {m}s = {m * years} - {years}, "
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
        line = (f"Average speed is total distance over total time. Time: {d}/{s1} + {d}/{s2} = {t1} + {t2} = {t1 + t2} h for {2 * d} km, "
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
    line = f"Working together, rates add: each {unit} they do 1/{a} + 1/{b} = {_f(rate)} of the job, so the time is 1 ÷ {_f(rate)} = {_f(value)}."
    return _record(_hint(rng, q, value), [line], value, kind="work_together", times=[a, b])


# Look-alike stories (``_word_arithmetic``): the same people and things, asking for a sum, a difference or a
# product. Each template is (question, rule); "{x}" is a detail that does not change the answer.
_WORD_TOTAL = (
    ("{n} has {a} {its} and {o} has {b}. How many {its} do they have altogether?", "Altogether means add"),
    ("How many {its} are there in total if {n} brings {a} and {o} brings {b}?", "In total means add"),
    ("{n} collected {a} {its} on Monday and {b} on Tuesday. What is the total?", "A total means add"),
    ("There are {a} {its} on one table and {b} on another, in a room with {x} windows. How many {its} are "
     "on the tables?", "Both tables together means add"),
    ("Find the number of {its}: {a} in a red box and {b} in a blue box.", "Two boxes together means add"),
    ("{n} had {a} {its}. Then {o} gave {n} {b} more. How many {its} does {n} have now?", "Getting more means add"),
    ("A shop sold {a} {its} in the morning and {b} in the afternoon. How many did it sell that day?",
     "The whole day is both parts, so add"),
)
_WORD_DIFFERENCE = (
    ("{n} has {a} {its} and {o} has {b}. How many more {its} does {n} have than {o}?", "How many more means subtract"),
    ("How many fewer {its} does {o} have than {n}, if {n} has {a} and {o} has {b}?", "How many fewer means subtract"),
    ("{n} had {a} {its} and gave {b} to {o}. How many {its} does {n} have left?", "Giving away means subtract"),
    ("There were {a} {its} in a shop this morning and {b} were sold. The shop has {x} staff. How many {its} are "
     "left?", "Selling leaves fewer, so subtract"),
    ("What is the difference between {a} {its} and {b} {its}?", "A difference means subtract"),
    ("{n} needs {a} {its} and already has {b}. How many more does {n} need?",
     "What is still needed is the goal minus what is there, so subtract"),
    ("A box held {a} {its}. After {o} took some, {b} were left. How many did {o} take?",
     "What was taken is the start minus what is left, so subtract"),
)
_WORD_GROUPS = (
    ("{n} buys {a} packs of {its} with {b} in each pack. How many {its} is that?", "Equal packs means multiply"),
    ("There are {a} boxes and each holds {b} {its}. How many {its} are there altogether?",
     "Equal groups means multiply"),
    ("Each of {a} children brings {b} {its}. How many {its} are brought in total?", "Equal groups means multiply"),
    ("{n} has {a} bags with {b} {its} in each bag, and {x} empty bags. How many {its} does {n} have?",
     "Equal bags means multiply"),
    ("How many {its} are in {a} rows of {b}?", "Equal rows means multiply"),
    ("{a} friends each have {b} {its}. How many do they have together?", "The same number each means multiply"),
    ("A shelf has {a} stacks of {its}, {b} per stack. How many {its} are on the shelf?", "Equal stacks means multiply"),
)


def _word_arithmetic(rng: random.Random, difficulty: str, kind: str, name: str, other: str) -> dict:
    """One-step stories that differ only in what they ask: ``total`` (add), ``difference`` (subtract), ``groups`` (multiply)."""
    r = rng.randint
    _, its = rng.choice(_ITEMS)
    x = r(2, 9)
    if kind == "groups":
        a, b = (r(2, 9), r(2, 12)) if difficulty == "easy" else (r(3, 15), r(6, 25))
        template, rule = rng.choice(_WORD_GROUPS)
        q = template.format(n=name, o=other, a=a, b=b, its=its, x=x)
        return _record(q, [f"{rule}. {_mul_steps(a, b)}"], a * b, kind="groups", groups=a, each=b,
                       extra=[x] if "{x}" in template else [])
    big = {"easy": (12, 60), "medium": (40, 300), "hard": (150, 999)}[difficulty]
    a = r(*big)
    b = r(2, a - 1) if rng.random() < 0.5 else r(max(2, a // 3), a - 1)
    template, rule = rng.choice(_WORD_TOTAL if kind == "total" else _WORD_DIFFERENCE)
    q = template.format(n=name, o=other, a=a, b=b, its=its, x=x)
    extra = [x] if "{x}" in template else []
    if kind == "total":
        return _record(q, [f"{rule}. {_add_steps(a, b, 1)}"], a + b, kind="total", values=[a, b], extra=extra)
    return _record(q, [f"{rule}. {_add_steps(a, b, -1)}"], a - b, kind="difference", a=a, b=b, extra=extra)


# ---------------------------------------------------------------------------
# permutations
# ---------------------------------------------------------------------------

_WORDS = {
    "medium": ("LEVEL", "APPLE", "HELLO", "STATS", "KAYAK", "RADAR", "ALPHA", "GEESE", "LETTER",
               "TOMATO", "COFFEE", "PEPPER", "CHEESE", "BANANA", "ALPACA", "PUPPY"),
    "hard": ("BALLOON", "SUCCESS", "ADDRESS", "ASSESS", "BOOKKEEP", "COOKBOOK", "TEETH", "GOOGOL",
             "CANNONS", "RACECAR", "DEEDED", "MAMMAL", "TATTOO", "REFERRED", "CALCULUS"),
}


def _product(factors) -> str:
    """``8 × 7 × 6 = 56 × 6 = 336``: a product of several numbers, one multiplication per step, from the left.

    A worked solution that multiplies a whole product in one step teaches a small model to guess it: SFT
    `default` trained at commit 2c73f0a wrote a false equation in 115 of its 320 transfer answers, many of them
    products taken whole (``2 × 2 × 2 × 2 = 8``, ``8 × 8 × 8 = 64``). Trained on solutions written with this,
    ``_sum`` and ``_prob_line``'s named common factor, it wrote one in 83, and answered 22.8% right against
    22.2% (17 newly right, 15 newly wrong: within noise; 2026-12-07, README).
    """
    return _one_step_at_a_time(factors, " × ", operator.mul)


def _sum(terms) -> str:
    """``15 + 12 + 25 + 3 = 27 + 25 + 3 = 52 + 3 = 55``: one addition per step, from the left (as ``_product``)."""
    return _one_step_at_a_time(terms, " + ", operator.add)


def _one_step_at_a_time(numbers, sign: str, combine) -> str:
    """The chain of equations that folds ``numbers`` from the left, the first two at each step."""
    values = [int(v) for v in numbers]
    steps = [sign.join(map(str, values))]
    while len(values) > 1:
        values = [combine(values[0], values[1])] + values[2:]
        steps.append(sign.join(map(str, values)))
    return " = ".join(steps)


def _factorial_text(n: int) -> str:
    """``4! = 4 × 3 × 2 = 12 × 2 = 24`` (the factor 1 left out)."""
    return f"{n}! = " + (_product(range(n, 1, -1)) if n > 1 else "1")


# Counting look-alikes: the same clubs, races, codes and prizes appear as arrangements of everyone (n!),
# ordered selections without repeats (P(n, k)), sequences with repeats (n^k, in this family) and unordered
# selections (C(n, k), in combinations), so the wording, not the setting, decides the rule.
_ARRANGE_TEMPLATES = (
    "In how many ways can {n} different books be arranged on a shelf?",
    "How many different orders can {n} runners finish a race in, with no ties?",
    "{n} friends stand in a line for a photo. How many different line-ups are possible?",
    "A playlist has {n} songs. In how many orders can they be played, each once?",
    "{name} has {n} different trophies and a shelf {x} cm wide with room for all of them. How many ways can "
    "the trophies be ordered?",
    "Work out the number of ways to arrange {n} different letters in a row.",
    "How many different ways can {n} people queue at a counter?",
    "All {n} members of a club sit in a row of {n} chairs. How many seating orders are possible?",
    "Find the number of orderings of {n} distinct cards.",
)
_ROLES = {2: "a captain and a vice-captain", 3: "a president, a vice-president and a secretary",
          4: "a president, a vice-president, a secretary and a treasurer"}
_PRIZES = {2: "a gold and a silver prize", 3: "a gold, a silver and a bronze prize",
           4: "four different prizes"}
_ORDERED_TEMPLATES = (
    "A club has {n} members. In how many ways can it choose {roles}?",
    "{n} runners are in a race. How many different ways can the top {k} places be filled?",
    "How many {k}-letter codes can be made from {n} different letters if no letter is repeated?",
    "In how many ways can {k} of {n} different paintings be hung in a row of {k} spots?",
    "How many {k}-digit codes can be made from the digits 1 to {n} if no digit may be used twice?",
    "A teacher gives {prizes} to {k} of {n} students, at most one prize each. How many ways can the prizes "
    "go?",
    "{name} will visit {k} of {n} cities, one after another. How many different routes (orders of cities) "
    "are there?",
    "From {n} students, {k} are picked to stand in a row from left to right. How many rows are possible?",
    "Work out the number of ways to pick {roles} from {n} people, no one holding two jobs.",
)
# (question, fixed number of choices or None, what is repeated): sequences where repeats are allowed.
_REPEAT_TEMPLATES = (
    ("A lock has {k} dials, each showing one of {n} symbols. How many different settings are there?", None, "dial"),
    ("How many {k}-character codes can be made from {n} symbols if symbols may repeat?", None, "character"),
    ("A menu has {n} choices and {name} orders one for each of {k} days (the same choice may repeat). How many "
     "meal plans are possible?", None, "day"),
    ("Each of {k} light bulbs can glow in any of {n} colours. How many colour patterns are possible?", None, "bulb"),
    ("{k} different prizes go to {n} students, and a student may win more than one. How many ways can the "
     "prizes be given?", None, "prize"),
    ("How many {k}-digit codes can be made from the digits 1 to {n} if digits may repeat?", None, "digit"),
    ("A coin is flipped {k} times. How many different sequences of heads and tails are possible?", 2, "flip"),
    ("How many outcomes are there when {name} tosses a coin {k} times and writes down heads or tails each "
     "time?", 2, "toss"),
    ("A quiz has {k} true-or-false questions. How many different answer sheets are possible?", 2, "question"),
    ("A die is rolled {k} times and the results are written in order. How many different sequences are "
     "possible?", 6, "roll"),
    ("How many {k}-digit PINs are there if each digit is 0 to 9 and digits may repeat?", 10, "digit"),
)


def _permutations(rng: random.Random, difficulty: str) -> dict:
    """Orderings: n!, P(n, k), sequences with repeats n^k, words with repeated letters, a pair kept together, round tables."""
    kinds = {"easy": ("arrange", "ordered", "repeat"), "medium": ("arrange", "ordered", "word", "repeat"),
             "hard": ("ordered", "word", "together", "circular", "repeat")}[difficulty]
    kind = rng.choice(kinds)
    name, x = rng.choice(_NAMES), rng.randint(40, 120)
    if kind == "arrange":
        n = rng.randint(3, 6) if difficulty == "easy" else rng.randint(5, 8)
        value = math.factorial(n)
        template = rng.choice(_ARRANGE_TEMPLATES)
        q = template.format(n=n, name=name, x=x)
        line = f"All {n} are placed and order matters, so count arrangements: {_factorial_text(n)}."
        return _record(q, [line], value, kind="arrange", n=n, extra=[x] if "{x}" in template else [])
    if kind == "ordered":
        n, k = {"easy": (rng.randint(4, 9), 2), "medium": (rng.randint(5, 9), 3),
                "hard": (rng.randint(9, 12), 4)}[difficulty]
        if difficulty == "medium" and rng.random() < 0.3:
            n, k = rng.randint(10, 20), 2
        value = math.perm(n, k)
        template = rng.choice(_ORDERED_TEMPLATES)
        if "digits 1 to" in template:
            n = min(n, 9)
            value = math.perm(n, k)
        q = template.format(n=n, k=k, roles=_ROLES[k], prizes=_PRIZES[k], name=name)
        line = (f"Order matters and nothing is used twice, so this is an ordered selection: P({n}, {k}) = "
                + _product(n - i for i in range(k)) + ".")
        return _record(q, [line], value, kind="ordered", n=n, k=k, extra=[])
    if kind == "repeat":
        template, fixed, what = rng.choice(_REPEAT_TEMPLATES)
        ks = {"easy": (2, 3), "medium": (3, 4), "hard": (4, 5)}[difficulty]
        n = fixed or rng.randint(2, 9 if difficulty == "easy" else 10)
        if "digits 1 to" in template:
            n = min(n, 9)
        k = rng.randint(*ks) + (1 if fixed == 2 else 0)
        while n ** k > 10 ** 5:
            k -= 1
        value = n ** k
        q = template.format(n=n, k=k, name=name)
        product_text = _product([n] * k)
        if fixed == 2 and what in ("flip", "toss"):
            line = f"Each {what} has 2 outcomes, so {k} {what}{'es' if what == 'toss' else 's'} give {product_text}."
        else:
            line = (f"Each {what} has {n} choices and repeats are allowed, so multiply: {n}^{k} = "
                    f"{product_text}.")
        return _record(q, [line], value, kind="repeat", n=n, k=k, extra=[])
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
            "The letters of {w} are written on tiles. How many different words (real or not) can be made "
            "using every tile once?",
            "Work out how many different orders the letters of {w} can be put in.",
        )).format(w=word)
        rep = ", ".join(f"{ch} {c} times" for ch, c in repeats)
        line = (f"Repeated letters make equal arrangements, so divide by each repeat's factorial. "
                f"{len(word)} letters with {rep}: {len(word)}!/(" + " × ".join(f"{c}!" for _, c in repeats)
                + f") = {math.factorial(len(word))}/{denom} = {value}.")
        return _record(q, [line], value, kind="word", word=word, extra=[])
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
            "{a} and {b} are two of {n} singers. If they must perform one right after the other, in how many "
            "orders can all {n} singers perform?",
        )).format(n=n, a=a, b=b)
        line = (f"Glue the pair into one block: {n - 1} units give {n - 1}! = {math.factorial(n - 1)} orders, "
                f"times 2 for the order inside the block = {value}.")
        return _record(q, [line], value, kind="together", n=n, extra=[])
    n = rng.randint(4, 7)
    value = math.factorial(n - 1)
    q = rng.choice((
        "In how many ways can {n} people sit around a round table, if rotations count as the same seating?",
        "How many distinct circular arrangements of {n} different beads on a fixed ring are there, counting "
        "rotations as the same (but not reflections)?",
        "{n} friends sit at a circular table. How many different seatings are there up to rotation?",
        "Count the ways to seat {n} guests around a circular table where only the relative order matters "
        "(rotations are equal).",
        "{n} children hold hands in a circle. If turning the circle gives the same circle, how many circles "
        "are possible?",
    )).format(n=n)
    line = (f"Around a circle rotations are the same, so fix one seat and arrange the others: "
            f"({n} - 1)! = {n - 1}! = {value}.")
    return _record(q, [line], value, kind="circular", n=n, extra=[])


# ---------------------------------------------------------------------------
# combinations
# ---------------------------------------------------------------------------

def _comb_text(n: int, k: int) -> str:
    """``C(8, 3) = (8 × 7 × 6)/(3 × 2), where 8 × 7 × 6 = 56 × 6 = 336 and 3 × 2 = 6, so C(8, 3) = 336/6 = 56``
    (``C(9, 2) = 9 × 8/2 = 72/2 = 36``): each product one multiplication at a time, one division left."""
    if k in (0, n):
        return f"C({n}, {k}) = 1"
    if k == 1:
        return f"C({n}, 1) = {n}"
    k2 = min(k, n - k)
    top, bottom = [n - i for i in range(k2)], list(range(k2, 1, -1))
    if k2 == 2:
        return f"C({n}, {k}) = {n} × {n - 1}/2 = {n * (n - 1)}/2 = {math.comb(n, k)}"
    return (f"C({n}, {k}) = ({' × '.join(map(str, top))})/({' × '.join(map(str, bottom))}), where "
            f"{_product(top)} and {_product(bottom)}, so C({n}, {k}) = {math.perm(n, k2)}/{math.factorial(k2)} = "
            f"{math.comb(n, k)}")


_CHOOSE_TEMPLATES = (
    "How many ways are there to choose {k} people from a group of {n}?",
    "A committee of {k} is to be formed from {n} volunteers. How many different committees are possible?",
    "A pizza place offers {n} toppings. How many different pizzas with exactly {k} toppings can you order?",
    "From {n} books, {name} wants to pack {k} for a trip. How many different sets of books could {name} pack?",
    "In how many ways can a coach pick {k} players out of {n} for a team, if order does not matter?",
    "A club has {n} members. In how many ways can it send {k} of them to a meeting?",
    "{n} runners are in a race, and the first {k} to finish all go through to the final. How many different "
    "groups of finalists are possible?",
    "A teacher gives {k} identical prizes to {k} of {n} students, at most one each. How many ways can the prizes "
    "go?",
    "Work out how many {k}-card hands can be dealt from {n} different cards.",
    "{name} has {n} different stickers and will give {k} of them to a friend who is {x} years old. How many "
    "different gifts are possible?",
    "How many {k}-element subsets does a set with {n} elements have?",
)
_HANDSHAKE_TEMPLATES = (
    "At a party, each of {n} guests shakes hands with every other guest exactly once. How many handshakes are "
    "there?",
    "{n} teams play in a league where every team plays every other team once. How many games are played?",
    "How many line segments join pairs of {n} points, no three of which are on a line?",
    "In a chess club of {n} members, every pair plays one game. How many games is that?",
    "How many handshakes happen when {n} people each shake hands once with everyone else?",
    "{n} friends want one photo of every possible pair of them. How many photos is that?",
    "Find the number of different pairs that can be made from {n} students.",
)
# The ordered look-alike of a handshake: each pair counted in both orders.
_ORDERED_PAIR_TEMPLATES = (
    "{n} teams play in a league where every team plays every other team twice, once at home and once away. "
    "How many games are played?",
    "Each of {n} friends sends a postcard to every other friend. How many postcards are sent?",
    "In a group of {n}, each person gives a gift to each of the others. How many gifts are given?",
    "How many ordered pairs (first, second) of two different people can be made from {n} people?",
    "At a party of {n} guests, every guest texts every other guest once. How many texts are sent?",
)


def _combinations(rng: random.Random, difficulty: str) -> dict:
    """Unordered choices: C(n, k), handshakes (and their ordered look-alike), grid paths, mixed and 'at least one' committees."""
    kinds = {"easy": ("choose", "handshakes", "ordered_pairs"),
             "medium": ("choose", "handshakes", "ordered_pairs", "grid", "split"),
             "hard": ("choose", "split", "at_least", "grid")}[difficulty]
    kind = rng.choice(kinds)
    r = rng.randint
    if kind == "choose":
        n, k = {"easy": (r(4, 8), r(2, 3)), "medium": (r(7, 12), r(3, 4)), "hard": (r(10, 16), r(4, 6))}[difficulty]
        if difficulty == "medium" and rng.random() < 0.3:
            n, k = r(10, 20), 2
        value = math.comb(n, k)
        template, x = rng.choice(_CHOOSE_TEMPLATES), r(6, 15)
        q = template.format(n=n, k=k, name=rng.choice(_NAMES), x=x)
        line = f"Order does not matter, so count selections: {_comb_text(n, k)}."
        return _record(q, [line], value, kind="choose", n=n, k=k, extra=[x] if "{x}" in template else [])
    if kind in ("handshakes", "ordered_pairs"):
        n = r(4, 12) if difficulty == "easy" else r(10, 30)
        if kind == "handshakes":
            value = math.comb(n, 2)
            q = rng.choice(_HANDSHAKE_TEMPLATES).format(n=n)
            line = (f"Each pair counts once and order does not matter, so C({n}, 2) = {n} × {n - 1}/2 = "
                    f"{n * (n - 1)}/2 = {value}.")
            return _record(q, [line], value, kind="handshakes", n=n, extra=[])
        value = n * (n - 1)
        q = rng.choice(_ORDERED_PAIR_TEMPLATES).format(n=n)
        line = (f"Each pair counts in both orders, so this is an ordered selection: P({n}, 2) = {n} × {n - 1} "
                f"= {value}.")
        return _record(q, [line], value, kind="ordered_pairs", n=n, extra=[])
    if kind == "grid":
        right, up = (r(2, 5), r(2, 4)) if difficulty == "medium" else (r(4, 8), r(3, 6))
        value = math.comb(right + up, up)
        q = rng.choice((
            "How many shortest paths are there on a grid from (0, 0) to ({a}, {b}), moving only right or up?",
            "A robot moves one step right or one step up at a time. In how many ways can it get from (0, 0) "
            "to ({a}, {b})?",
            "A city is a grid of streets. How many shortest routes go {a} blocks east and {b} blocks north?",
            "Count the lattice paths of {a} right-steps and {b} up-steps in any order.",
            "On a grid, point B is {a} steps right of and {b} steps up from point A. How many shortest paths "
            "lead from A to B?",
        )).format(a=right, b=up)
        line = (f"A path is a choice of which steps go up: {right + up} steps, {up} of them up, so "
                + _comb_text(right + up, up) + ".")
        return _record(q, [line], value, kind="grid", right=right, up=up, extra=[])
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
            "How many teams of {i} boys and {j} girls can be formed from {a} boys and {b} girls?",
        )).format(a=a, b=b, i=i, j=j)
        line = (f"Choose each group separately, then multiply: {_comb_text(a, i)} and {_comb_text(b, j)}, "
                f"so {math.comb(a, i)} × {math.comb(b, j)} = {value}.")
        return _record(q, [line], value, kind="split", a=a, b=b, i=i, j=j, extra=[])
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
        ("From {m} men and {w} women, how many committees of {k} are not all men?", "women"),
    ))
    q = template.format(m=men, w=women, k=k)
    line = (f"At least one means all groups minus those with none. All groups: C({men + women}, {k}) = {total}; "
            f"groups with no {group}: C({men}, {k}) = {none}. So {total} - {none} = {value}.")
    return _record(q, [line], value, kind="at_least", first=men, second=women, k=k, extra=[])


# ---------------------------------------------------------------------------
# Question frames shared by the probability families (dice ... binomial)
# ---------------------------------------------------------------------------
# A family supplies the parts of a question: the situation as a clause ("two fair dice are rolled"),
# the event as a clause ("the sum is 7"), or for a count what is counted ("different outcomes"). A frame
# puts them together in one of several structures: setup first or question first, a short story with a
# detail to ignore (a number that plays no part), P(...) notation, a bet. The model has to find the
# situation and the event wherever they sit. Frames marked inline use the situation inside a sentence;
# a family whose setup is several sentences long (a table, a test's error rates) uses only the others.
# Each record keeps its frame's name in params["template"] and the ignored number in params["extra"].

_DISTRACTORS = (
    "{other} has {x} stickers in a pocket.",
    "The game began {x} minutes ago.",
    "{x} people are watching.",
    "It is round {x} of a school fair.",
    "{other} scored {x} points in the previous game.",
    "The room has {x} chairs.",
)

_PROB_FRAMES = {  # name -> (frame, inline)
    "setup_first": ("{S} What is the probability that {c}?", False),
    "question_first": ("What is the probability that {c} when {s}?", True),
    "how_likely": ("{S} How likely is it that {c}?", False),
    "if_chance": ("If {s}, what is the chance that {c}?", True),
    "story_odds": ("{name} is at a games evening. {X} {S} What are the odds that {c}, written as a probability?",
                   False),
    "p_notation": ("Find P({c}) if {s}.", True),
    "detail_middle": ("{S} {X} Find the probability that {c}.", False),
    "event_first": ("{C}: how likely is that, if {s}?", True),
    "bet": ("{name} bets that {c}. {S} What is the probability that {name} wins the bet?", False),
    "ask_then_setup": ("Find the probability that {c}. Here is the situation: {S}", False),
    "detail_first": ("{X} {S} What is P({c})?", False),
    "suppose": ("Suppose {s}. {X} Work out how likely it is that {c}.", True),
}
_COUNT_FRAMES = {
    "count_setup_first": ("{S} How many {what} are possible?", False),
    "count_question_first": ("How many {what} are there when {s}?", True),
    "count_detail": ("{X} {S} Count the {what}.", False),
    "count_list": ("{name} wants to write down every possibility. {S} How many {what} will the list have?", False),
    "count_find": ("Find the number of {what} if {s}.", True),
    "count_if": ("If {s}, how many {what} can occur?", True),
}
_GIVEN_FRAMES = {
    "given_setup_first": ("{S} Given that {g}, what is the probability that {c}?", False),
    "given_question_first": ("What is the probability that {c}, given that {g}, when {s}?", True),
    "given_told": ("{S} You are told that {g}. How likely is it that {c}?", False),
    "given_if": ("If {s} and {g}, what is the chance that {c}?", True),
    "given_story": ("{name} is checking some records. {X} {S} Knowing that {g}, find the probability that {c}.",
                    False),
    "given_notation": ("{S} Find P({c} | {g}).", False),
    "given_detail": ("{S} {X} Suppose {g}. What is the conditional probability that {c}?", False),
    "given_event_first": ("{C}: how likely is that once we know {g}? {S}", False),
    "given_ask_first": ("Find the probability that {c} given that {g}. The facts: {S}", False),
}
_STAT_FRAMES = {
    "stat_setup_first": ("{S} What is the {stat} of {what}?", False),
    "stat_question_first": ("What is the {stat} of {what} when {s}?", True),
    "stat_symbol": ("{S} Let Y stand for {what}. Find {sym}.", False),
    "stat_story": ("{name} is studying a game. {X} {S} Compute the {stat} of {what}.", False),
    "stat_detail": ("{S} {X} Find the {stat} of {what}.", False),
    "stat_if": ("If {s}, what is the {stat} of {what}?", True),
    "stat_long_run": ("{S} Over many repetitions, {what} has what {stat}?", False),
    "stat_suppose": ("Suppose {s}. Work out the {stat} of {what}.", True),
    "stat_ask_first": ("Find the {stat} of {what}. The situation: {S}", False),
}


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _frame(rng: random.Random, frames: dict, long: bool = False, **parts) -> tuple[str, str, int | None]:
    """``(question, frame name, ignored number or None)``; ``long`` setups skip the inline frames.

    A multi-sentence setup is passed as ``S`` (a family's own sentences); a clause as ``s``.
    """
    name = rng.choice([k for k, (_, inline) in frames.items() if not (long and inline)])
    frame = frames[name][0]
    person, other = rng.sample(_NAMES, 2)
    x = rng.randint(3, 40)
    if "S" not in parts:
        parts["S"] = _cap(parts["s"]) + "."
    text = frame.format(C=_cap(parts.get("c", "")), X=rng.choice(_DISTRACTORS).format(other=other, x=x),
                        name=person, **parts)
    return text, name, (x if "{X}" in frame else None)


def _in_form(value, form: str) -> str:
    """`` As a decimal, 3/8 = 0.375.`` when the question asked for that form, else ``""``."""
    if form == "fraction":
        return ""
    return f" As a {'percentage' if form == 'percent' else 'decimal'}, {_f(value)} = {format_as(value, form)}."


def _framed(rng: random.Random, frames: dict, lines: list[str], value, parts: dict, /, long: bool = False,
            **params) -> dict:
    """Frame the question, sometimes ask for a decimal, percent or fraction, and record it with its frame."""
    q, template, extra = _frame(rng, frames, long=long, **parts)
    form = "fraction"
    if len(format_as(value, "decimal")) <= 6:  # a short exact decimal; 53.3935546875% teaches nothing
        q, form = _ask_form(rng, q, value)
    if form == "fraction":
        q = _hint(rng, q, value, chance=0.15)
    lines = [*lines[:-1], lines[-1] + _in_form(value, form)]
    return _record(q, lines, value, form=form, template=template, extra=extra, **params)


def _ask_probability(rng, s: str, c: str, lines: list[str], value, /, **params) -> dict:
    return _framed(rng, _PROB_FRAMES, lines, value, {"s": s, "c": c}, **params)


def _ask_count(rng, s: str, what: str, lines: list[str], value, /, **params) -> dict:
    return _framed(rng, _COUNT_FRAMES, lines, value, {"s": s, "what": what}, **params)


# ---------------------------------------------------------------------------
# dice
# ---------------------------------------------------------------------------
# Events: name -> (test on an outcome tuple, clause). "{v}" is the event's number.

_DIE_EVENTS_1 = {
    "gt": (lambda o, v: o[0] > v, "the number rolled is greater than {v}"),
    "even": (lambda o, v: o[0] % 2 == 0, "the result is even"),
    "prime": (lambda o, v: o[0] in (2, 3, 5, 7, 11), "the number shown is prime"),
    "at_most": (lambda o, v: o[0] <= v, "it shows {v} or less"),
    "mult3": (lambda o, v: o[0] % 3 == 0, "the result is a multiple of 3"),
    "not_eq": (lambda o, v: o[0] != v, "it does not show a {v}"),
}
_DIE_EVENTS_N = {
    "sum_eq": (lambda o, v: sum(o) == v, "the sum of the numbers is {v}"),
    "sum_ge": (lambda o, v: sum(o) >= v, "the sum is at least {v}"),
    "sum_le": (lambda o, v: sum(o) <= v, "the sum is at most {v}"),
    "product_eq": (lambda o, v: math.prod(o) == v, "the product of the numbers is {v}"),
    "diff_eq": (lambda o, v: abs(o[0] - o[1]) == v, "the two numbers differ by exactly {v}"),
    "doubles": (lambda o, v: len(set(o)) == 1, "all the dice show the same number"),
    "at_least_one": (lambda o, v: v in o, "at least one die shows a {v}"),
    "product_even": (lambda o, v: math.prod(o) % 2 == 0, "the product of the numbers is even"),
    "max_eq": (lambda o, v: max(o) == v, "the largest number showing is {v}"),
    "first_gt": (lambda o, v: o[0] > o[1], "the first die shows a larger number than the second"),
    "all_different": (lambda o, v: len(set(o)) == len(o), "all the dice show different numbers"),
    "any": (lambda o, v: True, ""),
}
_DICE_WORDS = {1: "one", 2: "two", 3: "three", 4: "four"}


def _dice_situation(rng: random.Random, k: int, sides: int, ordered: bool) -> str:
    die = "fair die" if sides == 6 else f"fair {sides}-sided die"
    dice = "fair dice" if sides == 6 else f"fair {sides}-sided dice"
    name = rng.choice(_NAMES)
    if k == 1:
        return rng.choice((f"a {die} is rolled once", f"{name} rolls a {die}", f"a {die} is thrown"))
    if ordered:
        return rng.choice((f"a red {die} and a blue {die} are rolled, the red one being the first",
                           f"a {die} is rolled {_DICE_WORDS[k]} times, one roll after the other",
                           f"{name} rolls a {die} {_DICE_WORDS[k]} times and writes the results in order"))
    return rng.choice((f"{_DICE_WORDS[k]} {dice} are rolled", f"{name} throws {_DICE_WORDS[k]} {dice}",
                       f"{name} rolls {_DICE_WORDS[k]} {dice} at once"))


def _dice_favourable(good: list, n_all: int, event: str, value, k: int, sides: int) -> str:
    """How many outcomes the event has, shown the short way."""
    n_good = len(good)
    if k == 1:
        return f"The faces that qualify are {', '.join(str(o[0]) for o in good) or 'none'}: {n_good} of {sides}."
    if event.startswith("sum_") and n_good > 6:
        sums = Counter(sum(o) for o in good)
        return f"Sums {', '.join(map(str, sorted(sums)))} occur {_sum(sums[s] for s in sorted(sums))} ways."
    if n_good <= 6:
        shown = ", ".join("(" + ",".join(map(str, o)) + ")" for o in good) if good else "none"
        return f"Favourable: {shown}, {n_good} outcomes."
    reason = {  # lazily: only the event's own line is built
        "at_least_one": lambda: f"\"At least one {value}\" is the complement of \"no {value}\": {n_all} - {sides - 1}^{k} = "
                        f"{n_all} - {(sides - 1) ** k} = {n_good}",
        "product_even": lambda: f"the product is odd only when every die is odd ({sides // 2}^{k} = {(sides // 2) ** k} "
                        f"ways), so {n_all} - {(sides // 2) ** k} = {n_good} are even",
        "all_different": lambda: f"all different: {' × '.join(str(sides - i) for i in range(k))} = {n_good}",
        "first_gt": lambda: f"of the {n_all - sides} outcomes that are not doubles, half have the first die larger: {n_good}",
        "diff_eq": lambda: f"a difference of 0 means doubles, one per face: {n_good}" if value == 0 else
        f"(a, a + {value}) for a = 1 to {sides - value}, in either order: 2 × {sides - value} = {n_good}",
        "max_eq": lambda: f"{value}^{k} - {value - 1}^{k} = {n_good} have maximum {value}",
        "doubles": lambda: f"one double for each of the {sides} faces: {n_good}",
    }.get(event, lambda: f"{n_good} of them are favourable")()
    return _cap(reason) + "."


def _dice(rng: random.Random, difficulty: str) -> dict:
    """Fair dice: probabilities of sums, products, differences, doubles, at least one; and counts of outcomes.

    Look-alikes side by side: "the sum is 6" / "the product is 6" / "they differ by 2", and
    "how many outcomes ..." (a count) next to "what is the probability ..." (a fraction).
    """
    sides = 6
    if difficulty == "easy":
        k, event = rng.choice(((1, None), (1, None), (2, "sum_eq"), (2, "doubles"), (2, "any")))
        if k == 1:
            event = rng.choice(tuple(_DIE_EVENTS_1))
        quantity = "count" if event == "any" else "probability"
        if event == "any" and rng.random() < 0.5:
            sides = rng.choice((4, 8, 10, 12))
    elif difficulty == "medium":
        k = 2
        event = rng.choice(("sum_eq", "product_eq", "diff_eq", "sum_ge", "sum_le", "doubles", "at_least_one",
                            "product_even", "max_eq", "first_gt", "sum_eq", "product_eq"))
        quantity = "count" if rng.random() < 0.25 else "probability"
        if event in ("sum_eq", "product_eq", "diff_eq", "sum_ge", "sum_le", "doubles") and rng.random() < 0.3:
            sides = rng.choice((4, 8, 10, 12))
    else:
        k = rng.choice((3, 3, 3, 4))
        event = rng.choice(("sum_eq", "sum_ge", "sum_le", "doubles", "at_least_one", "all_different", "any",
                            "product_eq")) if k == 3 else "any"
        quantity = "count" if event == "any" or rng.random() < 0.2 else "probability"
    outcomes = list(product(range(1, sides + 1), repeat=k))
    if event == "product_eq":
        value = math.prod(rng.choice(outcomes))
    else:
        value = {"gt": rng.randint(1, 5), "at_most": rng.randint(1, 5), "not_eq": rng.randint(1, 6),
                 "at_least_one": rng.randint(1, 6), "diff_eq": rng.randint(0, min(5, sides - 1)),
                 "max_eq": rng.randint(2, 6),
                 "sum_eq": rng.randint(k, k * sides),
                 "sum_ge": rng.randint(8, 12) if k == 2 and sides == 6 else rng.randint(k * sides - 4, k * sides),
                 "sum_le": rng.randint(3, 6) if k == 2 else rng.randint(k + 1, k + 4)}.get(event)
    test, clause = (_DIE_EVENTS_1 if k == 1 else _DIE_EVENTS_N)[event]
    good = [o for o in outcomes if test(o, value)]
    clause = clause.format(v=value)
    if k == 2 and event in ("doubles", "all_different"):
        clause = {"doubles": "both dice show the same number", "all_different": "the two dice differ"}[event]
    s = _dice_situation(rng, k, sides, ordered=event == "first_gt" or event == "any" and rng.random() < 0.5)
    total = _dice_total_line(k, sides)
    params = dict(dice=k, sides=sides, event=event, value=value, quantity=quantity)
    if event == "any":
        lines = [f"{total} The question asks how many outcomes, so the answer is that count."]
        what = rng.choice(("different outcomes", "possible results, listed die by die", "equally likely outcomes"))
        return _ask_count(rng, s, what, lines, len(outcomes), **params)
    lines = [total, _dice_favourable(good, len(outcomes), event, value, k, sides)]
    if quantity == "count":
        lines[-1] += " The question asks how many outcomes, not how likely: the count."
        return _ask_count(rng, s, f"outcomes in which {clause}", lines, len(good), **params)
    lines[-1] += " Probability = favourable ÷ all: " + _prob_line(len(good), len(outcomes))
    return _ask_probability(rng, s, clause, lines, Fraction(len(good), len(outcomes)), **params)


def _dice_total_line(k: int, sides: int) -> str:
    if k == 1:
        return f"A fair die has {sides} equally likely faces."
    return f"Each die has {sides} faces and the choices multiply: {_product([sides] * k)} equally likely outcomes."


# ---------------------------------------------------------------------------
# coins
# ---------------------------------------------------------------------------

def _coin_total(n: int) -> str:
    product_text = _product([2] * n) if n <= 6 else f"2^{n} = {2 ** n}"
    return f"Each flip has 2 outcomes, so {n} flips give {product_text} equally likely sequences."


def _coins(rng: random.Random, difficulty: str) -> dict:
    """n fair coin flips: exactly / at least / at most k heads, a fixed order, the first flips; counts of sequences.

    Look-alikes: "how many sequences can 4 flips produce" (16, a count) next to "the probability
    of exactly 2 heads" (6/16) and "heads, tails, heads in that order" (1/8, one sequence).
    """
    n = {"easy": rng.randint(2, 3), "medium": rng.randint(3, 5), "hard": rng.randint(5, 8)}[difficulty]
    events = {"easy": ("exactly", "at_least_one", "all_same", "exactly_tails", "sequences", "sequence"),
              "medium": ("exactly", "at_least_one", "at_least", "at_most", "all_same", "more_heads", "count_exactly",
                         "first_k", "sequences", "sequence"),
              "hard": ("exactly", "at_least", "at_most", "more_heads", "no_consecutive", "at_least_one",
                       "count_exactly", "sequence", "sequences")}[difficulty]
    event = rng.choice(events)
    low = {"exactly": 0, "exactly_tails": 1, "at_least": 2, "at_most": 1, "count_exactly": 1, "first_k": 2}.get(event)
    k = rng.randint(low, n) if low is not None else None
    if event in ("at_most", "first_k") and k == n:
        k = n - 1 if event == "at_most" or n > 2 else None
        if k is None:
            event, k = "at_least_one", None
    total = 2 ** n
    ordered = rng.choice((f"a fair coin is tossed {n} times in a row", f"{rng.choice(_NAMES)} flips a fair coin {n} "
                          "times and writes down the sequence", f"a fair coin is flipped {n} times, one flip at a time"))
    s = rng.choice((f"a fair coin is tossed {n} times", f"{n} fair coins are flipped", ordered,
                    f"{rng.choice(_NAMES)} tosses {n} fair coins at once"))
    heads = "one head" if k == 1 else f"{k} heads"
    params = dict(n=n, event=event, k=k, sequence=None)
    if event == "sequences":
        lines = [_coin_total(n) + " The question asks how many sequences: a count, not a probability."]
        what = rng.choice(("different sequences of heads and tails", "possible head/tail sequences",
                           "outcomes (ordered strings of H and T)"))
        return _ask_count(rng, ordered, what, lines, total, quantity="count", **params)
    if event == "count_exactly":
        count = math.comb(n, k)
        lines = [f"A sequence with exactly {heads} is fixed by choosing which {k} of the {n} flips are heads: "
                 f"C({n}, {k}) = {count}. It asks how many, so the answer is the count."]
        return _ask_count(rng, ordered, f"sequences with exactly {heads}", lines, count, quantity="count", **params)
    if event == "sequence":
        seq = [rng.choice("HT") for _ in range(n)]
        params["sequence"] = seq
        words = ", ".join("heads" if x == "H" else "tails" for x in seq)
        lines = [_coin_total(n), f"One fixed order is a single sequence, 1 of the {total}: " + _prob_line(1, total)]
        return _ask_probability(rng, ordered, f"the flips come up {words}, in exactly that order", lines,
                                Fraction(1, total), quantity="probability", **params)
    if event == "first_k":
        value = Fraction(1, 2 ** k)
        lines = [f"Flips are independent, and only the first {k} matter: (1/2)^{k} = "
                 f"{' × '.join(['1/2'] * k)} = {_f(value)}."]
        return _ask_probability(rng, ordered, f"the first {k} flips all come up heads", lines, value,
                                quantity="probability", **params)
    if event in ("exactly", "exactly_tails"):
        count = math.comb(n, k)
        face = ("head" if event == "exactly" else "tail") + ("" if k == 1 else "s")
        why = f"Exactly {k} {face} in any order: choose which {k} of the {n} flips, C({n}, {k}) = {count}."
    elif event in ("at_least", "at_most", "more_heads"):
        ks = {"at_least": range(k, n + 1) if k else None, "at_most": range(0, (k or 0) + 1),
              "more_heads": range(n // 2 + 1, n + 1)}[event]
        count = sum(math.comb(n, j) for j in ks)
        rest = [j for j in range(n + 1) if j not in ks]
        rule = {"at_least": f"\"At least {k}\" means {k} to {n} heads", "at_most": f"\"At most {k}\" means 0 to {k} heads",
                "more_heads": f"More heads than tails means {ks[0]} to {n} heads"}[event]
        if len(ks) > len(rest) + 1:  # the complement is shorter to add up
            terms = " + ".join(f"C({n}, {j})" for j in rest)
            other = total - count
            why = (f"{rule}; the rest (heads = {', '.join(map(str, rest))}) number {terms} = "
                   + _sum(math.comb(n, j) for j in rest) + f", so {total} - {other} = {count} qualify.")
        else:
            terms = " + ".join(f"C({n}, {j})" for j in ks)
            why = (f"{rule}: {terms} = {_sum(math.comb(n, j) for j in ks)}." if len(ks) > 1
                   else f"{rule}: C({n}, {ks[0]}) = {count}.")
    elif event == "at_least_one":
        count = total - 1
        why = f"\"At least one head\" is the complement of \"all tails\" (1 sequence): {total} - 1 = {count}."
    elif event == "all_same":
        count = 2
        why = "All alike means all heads or all tails: 2 sequences."
    else:  # no_consecutive: lengths 1, 2, 3... give 2, 3, 5, 8... (each the sum of the two before)
        seq = [2, 3]
        while len(seq) < n:
            seq.append(seq[-1] + seq[-2])
        count = seq[n - 1]
        why = (f"Strings with no HH of lengths 1 to {n} number " + ", ".join(map(str, seq[:n]))
               + f" (each is the sum of the previous two), so {count} qualify.")
    clause = {
        "exactly": f"exactly {heads} {'appears' if k == 1 else 'appear'}",
        "exactly_tails": f"exactly {'one tail appears' if k == 1 else f'{k} tails appear'}",
        "at_least": f"at least {heads} appear", "at_most": f"at most {heads} {'appears' if k == 1 else 'appear'}",
        "at_least_one": "at least one head appears", "all_same": "all the flips land the same way",
        "more_heads": "there are more heads than tails", "no_consecutive": "no two heads come up in a row",
    }[event]
    if event == "exactly" and k == 0:
        clause = "no heads appear at all"
    lines = [_coin_total(n), why + " " + _prob_line(count, total)]
    return _ask_probability(rng, ordered if event == "no_consecutive" else s, clause, lines,
                            Fraction(count, total), quantity="probability", **params)


# ---------------------------------------------------------------------------
# cards
# ---------------------------------------------------------------------------

_RANKS = ("A", "2", "3", "4", "5", "6", "7", "8", "9", "10", "J", "Q", "K")
_SUITS = ("hearts", "diamonds", "clubs", "spades")

# single-card events: name -> (test on (rank, suit), noun phrase with article, how many and why)
_CARD_EVENTS = {
    "heart": (lambda c: c[1] == "hearts", "a heart", "13 of the 52 cards are hearts."),
    "red": (lambda c: c[1] in ("hearts", "diamonds"), "a red card", "Hearts and diamonds give 26 red cards."),
    "king": (lambda c: c[0] == "K", "a king", "There are 4 kings, one per suit."),
    "ace": (lambda c: c[0] == "A", "an ace", "There are 4 aces, one per suit."),
    "face": (lambda c: c[0] in ("J", "Q", "K"), "a face card (jack, queen or king)",
             "3 face cards in each of 4 suits: 12 cards."),
    "heart_or_king": (lambda c: c[1] == "hearts" or c[0] == "K", "a heart or a king",
                      "\"Or\" counts the overlap once: 13 hearts + 4 kings - 1 king of hearts = 16 cards."),
    "red_face": (lambda c: c[1] in ("hearts", "diamonds") and c[0] in ("J", "Q", "K"), "a red face card",
                 "3 face cards in each of the 2 red suits: 6 cards."),
    "black_ace": (lambda c: c[1] in ("clubs", "spades") and c[0] == "A", "a black ace",
                  "There are 2 black aces (clubs, spades)."),
    "number": (lambda c: c[0] in _RANKS[1:10], "a number card (2 through 10)",
               "9 number cards in each of 4 suits: 36 cards."),
    "not_spade": (lambda c: c[1] != "spades", "a card that is not a spade", "52 - 13 spades = 39 cards."),
    "queen_of_spades": (lambda c: c == ("Q", "spades"), "the queen of spades", "Exactly 1 card is the queen of spades."),
}
_DECK = [(r, s) for s in _SUITS for r in _RANKS]
_CARD_PLURALS = {"heart": "hearts", "red": "red cards", "king": "kings", "ace": "aces", "face": "face cards",
                 "red_face": "red face cards", "black_ace": "black aces", "number": "number cards (2 through 10)",
                 "not_spade": "cards that are not spades", "heart_or_king": "cards that are a heart or a king"}

# two-card events: name -> (test on (first, second), clause)
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
# hands counted by kind: name -> (cards of the kind, phrase)
_HAND_KINDS = {"both_hearts": (13, "hearts"), "both_red": (26, "red cards"), "both_face": (12, "face cards"),
               "both_aces": (4, "aces")}


def _cards(rng: random.Random, difficulty: str) -> dict:
    """A 52-card deck: one card, two cards with or without replacement, and counts of hands vs ordered deals.

    Look-alikes: "how many 2-card hands" (C(52, 2), order ignored) next to "how many ways to deal
    a first and a second card" (52 × 51) and "the probability that both are hearts".
    """
    deck = rng.choice(("a standard 52-card deck", "a well-shuffled deck of 52 playing cards",
                       "an ordinary deck of 52 cards"))
    name = rng.choice(_NAMES)
    if difficulty == "easy":
        kind = rng.choice(("one", "one", "one", "count_cards", "hands"))
    elif difficulty == "medium":
        kind = rng.choice(("two", "two", "two", "ordered", "hand_kind", "hands"))
    else:
        kind = rng.choice(("two", "two", "two", "two", "hands", "hand_kind"))
    if kind in ("one", "count_cards"):
        event = rng.choice(tuple(_CARD_EVENTS))
        test, noun, why = _CARD_EVENTS[event]
        count = sum(1 for c in _DECK if test(c))
        params = dict(draws=1, replacement=False, event=event, quantity="count" if kind == "count_cards" else
                      "probability", ordered=False)
        if kind == "count_cards":
            lines = [why + f" It asks how many cards, so the answer is the count {count}."]
            plural = _CARD_PLURALS.get(event, f"cards that are {noun}")
            return _ask_count(rng, f"{name} sorts through {deck}", plural, lines, count, **params)
        s = rng.choice((f"a card is drawn at random from {deck}", f"{name} picks one card from {deck}",
                        f"one card is dealt from {deck}"))
        lines = [why + " Each of the 52 cards is equally likely: " + _prob_line(count, 52)]
        return _ask_probability(rng, s, f"the card is {noun}", lines, Fraction(count, 52), **params)
    if kind in ("hands", "ordered", "hand_kind"):
        k = 2 if kind != "hands" or difficulty == "easy" else rng.choice((2, 3))
        s = rng.choice((f"{_DICE_WORDS[k]} cards are dealt from {deck}", f"{name} is dealt {_DICE_WORDS[k]} cards "
                        f"from {deck}", f"{name} takes {_DICE_WORDS[k]} cards from {deck} without putting any back"))
        if kind == "hands":
            lines = [f"A hand ignores order, so count combinations: {_comb_text(52, k)}."]
            what = rng.choice((f"different {k}-card hands", f"different sets of {k} cards"))
            return _ask_count(rng, s, what, lines, math.comb(52, k), draws=k, replacement=False, event="any",
                              quantity="count", ordered=False)
        if kind == "ordered":
            lines = [f"Order matters (a first card, then a second) and there is no replacement: 52 × 51 = {52 * 51}."]
            what = rng.choice(("ordered ways to deal a first card and then a second card",
                               "ways the first and the second card can come out, in order"))
            return _ask_count(rng, s, what, lines, 52 * 51, draws=2, replacement=False, event="any",
                              quantity="count", ordered=True)
        event = rng.choice(tuple(_HAND_KINDS))
        m, plural = _HAND_KINDS[event]
        lines = [f"A hand ignores order: choose 2 of the {m} {plural}, {_comb_text(m, 2)}."]
        return _ask_count(rng, s, f"2-card hands made only of {plural}", lines, math.comb(m, 2), draws=2,
                          replacement=False, event=event, quantity="count", ordered=False)
    if difficulty == "medium":
        event = rng.choice(("both_aces", "both_hearts", "both_red", "both_face", "ace_then_king", "no_hearts"))
        replacement = rng.random() < 0.3
    else:
        event = rng.choice(("same_suit", "pair", "ace_and_king", "at_least_one_ace", "both_aces", "both_hearts"))
        replacement = rng.random() < 0.35
    test, clause = _TWO_CARD_EVENTS[event]
    pairs = list(product(_DECK, repeat=2)) if replacement else list(permutations(_DECK, 2))
    good = sum(1 for a, b in pairs if test(a, b))
    p = Fraction(good, len(pairs))
    how = rng.choice(("with replacement (the first card is put back and the deck reshuffled)",
                      "putting the first card back before the second draw")) if replacement else \
        rng.choice(("without replacement", "one after the other, keeping the first card out"))
    s = rng.choice((f"two cards are drawn from {deck} {how}", f"{name} draws two cards from {deck}, {how}",
                    f"two cards are taken from {deck}, {how}"))
    second = 52 if replacement else 51
    m = 0 if replacement else 1
    rule = ("With replacement the deck is full again for the second card. " if replacement else
            "Without replacement the second card comes from the 51 left. ")
    no_ace = _f(Fraction(48 * (48 - m), 52 * second))
    line = {
        "both_aces": f"P = 4/52 × {4 - m}/{second}",
        "both_hearts": f"P = 13/52 × {13 - m}/{second}",
        "both_red": f"P = 26/52 × {26 - m}/{second}",
        "both_face": f"P = 12/52 × {12 - m}/{second}",
        "no_hearts": f"P = 39/52 × {39 - m}/{second}",
        "ace_then_king": f"P = 4/52 × 4/{second}",
        "ace_and_king": f"Ace then king or king then ace: P = 2 × (4/52 × 4/{second})",
        "same_suit": f"Whatever the first card, {13 - m} of the {second} share its suit: P = {13 - m}/{second}",
        "pair": f"Whatever the first card, {4 - m} of the {second} have its rank: P = {4 - m}/{second}",
        "at_least_one_ace": (f"\"At least one ace\" is the complement of \"no ace\": P(no ace) = 48/52 × "
                             f"{48 - m}/{second} = {no_ace}, so P = 1 - {no_ace}"),
    }[event]
    if " × " in line and event != "at_least_one_ace" and f"{good}/{len(pairs)}" != _f(p):
        line = f"{line} = {good}/{len(pairs)}"
    line = f"{rule}{line} = {_f(p)}."
    return _ask_probability(rng, s, clause, [line], p, draws=2, replacement=replacement, event=event,
                            quantity="probability", ordered=True)


# ---------------------------------------------------------------------------
# urns
# ---------------------------------------------------------------------------

_COLOURS = ("red", "blue", "green", "white", "black", "yellow")
_URN_EVENTS = {  # name -> test on the tuple of colours drawn (c: the asked colour, d: the other)
    "colour": lambda o, c, d: o[0] == c, "not_colour": lambda o, c, d: o[0] != c,
    "both": lambda o, c, d: o[0] == c and o[1] == c,
    "one_each": lambda o, c, d: sorted(o) == sorted([c, d]),
    "same": lambda o, c, d: o[0] == o[1],
    "first_then": lambda o, c, d: o[0] == c and o[1] == d,
    "second_is": lambda o, c, d: o[1] == c,
    "at_least_one": lambda o, c, d: c in o,
    "exactly_two": lambda o, c, d: o.count(c) == 2,
    "none_of": lambda o, c, d: c not in o,
    "all_different": lambda o, c, d: len(set(o)) == 3,
    "any": lambda o, c, d: True,
    "all_colour": lambda o, c, d: all(x == c for x in o),
}


def _urns(rng: random.Random, difficulty: str) -> dict:
    """Coloured balls drawn with or without replacement; counts of selections next to probabilities.

    Look-alikes: "both red, with replacement" (r/N × r/N) next to "without replacement"
    (r/N × (r-1)/(N-1)), and "how many ways to choose 2 balls" (C(N, 2), a count).
    """
    n_colours = 2 if difficulty != "hard" or rng.random() < 0.5 else 3
    colours = rng.sample(_COLOURS, n_colours)
    counts = {c: rng.randint(2, 7 if difficulty == "easy" else 9) for c in colours}
    N = sum(counts.values())
    c1, c2 = colours[0], colours[1]
    box, things = rng.choice((("bag", "balls"), ("urn", "balls"), ("jar", "marbles"), ("box", "counters"),
                              ("tin", "sweets")))
    article = "an" if box == "urn" else "a"
    contents = ", ".join(f"{counts[c]} {c}" for c in colours[:-1]) + f" and {counts[colours[-1]]} {colours[-1]}"
    quantity = "probability"
    if difficulty == "easy":
        draws, replacement = 1, False
        event = rng.choice(("colour", "not_colour", "colour", "any"))
        if event == "any":
            draws, quantity = 2, "count"
    elif difficulty == "medium":
        draws = 2
        event = rng.choice(("both", "both", "one_each", "same", "first_then", "at_least_one", "all_colour"))
        replacement = rng.random() < 0.4
        if event == "all_colour":
            replacement, quantity = False, "count"
    else:
        draws, replacement = rng.choice(((2, False), (3, False), (2, True)))
        if draws == 2:
            event = rng.choice(("second_is", "same", "one_each", "both", "at_least_one"))
        else:
            event = rng.choice(("exactly_two", "all_different", "any") if n_colours == 3 else
                               ("exactly_two", "none_of", "all_colour"))
            quantity = "count" if event in ("any", "all_colour") else "probability"
    if event == "all_colour" and counts[c1] < draws:
        event = "any"
    d_word = _DICE_WORDS[draws]
    how = "with replacement" if replacement else "without replacement"
    name = rng.choice(_NAMES)
    if quantity == "count":
        replacement = False
        s = rng.choice((f"{article} {box} holds {contents} {things} and {name} picks {d_word} of them at random",
                        f"{name} has {article} {box} with {contents} {things} and takes out {d_word} at once"))
    elif draws == 1:
        s = rng.choice((f"{article} {box} holds {contents} {things} and one is drawn at random",
                        f"{name} has {article} {box} with {contents} {things} and takes one out without looking",
                        f"there are {contents} {things} in {article} {box} and {name} picks one at random"))
    else:
        s = rng.choice((f"{article} {box} holds {contents} {things} and {d_word} are drawn at random {how}",
                        f"{name} takes {d_word} {things} one at a time, {how}, from {article} {box} with {contents} "
                        f"{things}",
                        f"there are {contents} {things} in {article} {box} and {d_word} are drawn {how}"))
    thing = things[:-1]
    phrase = {
        "colour": f"the {thing} is {c1}", "not_colour": f"the {thing} is not {c1}",
        "both": f"both are {c1}", "one_each": f"one is {c1} and one is {c2}",
        "same": "both are the same colour", "first_then": f"the first is {c1} and the second is {c2}",
        "second_is": f"the second one drawn is {c1}", "at_least_one": f"at least one of them is {c1}",
        "exactly_two": f"exactly two of them are {c1}", "none_of": f"none of them is {c1}",
        "all_different": "all three have different colours",
    }.get(event)
    r, b = counts[c1], counts[c2]
    n2 = N if replacement else N - 1
    m = 0 if replacement else 1
    total_line = f"There are {_sum(counts[c] for c in colours)} {things}."
    params = dict(counts=counts, draws=draws, replacement=replacement, event=event, colour=c1, other=c2,
                  quantity=quantity)
    if quantity == "count":
        if event == "any":
            lines = [total_line, f"The order does not matter, so count combinations: {_comb_text(N, draws)}."]
            return _ask_count(rng, s, f"different groups of {d_word} {things}", lines, math.comb(N, draws), **params)
        lines = [f"Only the {r} {c1} {things} can be used, and order does not matter: {_comb_text(r, draws)}."]
        return _ask_count(rng, s, f"ways to pick {d_word} {c1} {things}", lines, math.comb(r, draws), **params)
    balls = [c for c in colours for _ in range(counts[c])]
    draws_all = list(product(balls, repeat=draws)) if replacement else list(permutations(balls, draws))
    good = sum(1 for o in draws_all if _URN_EVENTS[event](o, c1, c2))
    p = Fraction(good, len(draws_all))
    rule = ("With replacement the bag is the same for every draw: " if replacement else
            "Without replacement the second draw has one fewer: ")
    line = {
        "colour": f"Each {thing} is equally likely, and {r} of the {N} are {c1}: P = {r}/{N}",
        "not_colour": f"Each {thing} is equally likely, and {N - r} of the {N} are not {c1}: P = {N - r}/{N}",
        "both": f"{rule}P = {r}/{N} × {r - m}/{n2}",
        "one_each": f"{rule}{c1} then {c2} or {c2} then {c1}, P = 2 × ({r}/{N} × {b}/{n2})",
        "same": f"{rule}add over colours, P = " + " + ".join(f"{counts[c]}/{N} × {counts[c] - m}/{n2}"
                                                            for c in colours),
        "first_then": f"{rule}P = {r}/{N} × {b}/{n2}",
        "second_is": f"By symmetry the second draw is like the first: P = {r}/{N}",
        "at_least_one": (f"\"At least one {c1}\" is the complement of \"no {c1}\". {rule}"
                         f"P(no {c1}) = {N - r}/{N} × {N - r - m}/{n2} = {_f(Fraction((N - r) * (N - r - m), N * n2))}, "
                         f"so P = 1 - {_f(Fraction((N - r) * (N - r - m), N * n2))}"),
        "exactly_two": ("Without replacement, count unordered selections: "
                        f"C({r}, 2) × C({N - r}, 1)/C({N}, 3) = {math.comb(r, 2)} × {N - r}/{math.comb(N, 3)}"
                        f" = {math.comb(r, 2) * (N - r)}/{math.comb(N, 3)}"),
        "none_of": f"Without replacement, count unordered selections: C({N - r}, 3)/C({N}, 3) = "
                   f"{math.comb(N - r, 3)}/{math.comb(N, 3)}",
        "all_different": ("Without replacement, count unordered selections, one of each colour: "
                          + " × ".join(str(counts[c]) for c in colours)
                          + f"/C({N}, 3) = {math.prod(counts.values())}/{math.comb(N, 3)}"),
    }[event]
    raw = f"{good}/{len(draws_all)}"
    if draws == 2 and event not in ("second_is", "at_least_one") and " × " in line and raw != _f(p):
        line = f"{line} = {raw}"
    line = f"{line}." if line.endswith(f" {_f(p)}") else f"{line} = {_f(p)}."
    # The total first: small models otherwise divide by a number they never computed.
    return _ask_probability(rng, s, phrase, [total_line, line], p, **params)


# ---------------------------------------------------------------------------
# complement
# ---------------------------------------------------------------------------

_TRIALS = (  # (situation with {n} and {p}, success clause as "at least one ...", what one success is)
    ("a basketball player makes each free throw with probability {p}, independently, and takes {n} free throws",
     "the player makes", "free throw"),
    ("{n} seeds are planted, and each germinates with probability {p}, independently of the others",
     "germinates", "seed"),
    ("a batch has {n} light bulbs, and each is defective with probability {p}, independently",
     "is defective", "bulb"),
    ("an archer shoots {n} arrows and hits the target with probability {p} on each shot, independently",
     "hits the target", "arrow"),
)


def _repeat_rule(event: str, n: int, p_text: str, q_text: str, value, what: str) -> str:
    """The solution for n independent trials with success probability p (failure q): the event's rule, then the sum."""
    none = Fraction(q_text) ** n
    if event == "at_least_one":
        return (f"\"At least one\" is the complement of \"none\": P(none in {n}) = ({q_text})^{n} = {_f(none)}, "
                f"so P = 1 - {_f(none)} = {_f(value)}.")
    if event == "none":
        return f"\"None\" means every one of the {n} independent trials fails: ({q_text})^{n} = {_f(value)}."
    if event == "not_all":
        every = Fraction(p_text) ** n
        return (f"\"Not every {what}\" is the complement of \"all {n}\": 1 - ({p_text})^{n} = 1 - {_f(every)} = "
                f"{_f(value)}.")
    one = Fraction(p_text) * Fraction(q_text) ** (n - 1)
    return (f"\"Exactly one\" means one success and {n - 1} failures, in any of {n} positions: "
            f"{n} × {p_text} × ({q_text})^{n - 1} = {n} × {_f(one)} = {_f(value)}.")


def _repeat_value(event: str, n: int, p: Fraction) -> Fraction:
    return {"at_least_one": 1 - (1 - p) ** n, "none": (1 - p) ** n, "not_all": 1 - p ** n,
            "exactly_one": n * p * (1 - p) ** (n - 1)}[event]


def _complement(rng: random.Random, difficulty: str) -> dict:
    """'At least one' as 1 - P(none), next to look-alikes that are not complements: 'none', 'exactly one'.

    Dice, coins, repeated independent trials, faulty items drawn from a batch, shared weekdays.
    """
    kinds = {"easy": ("dice", "coins", "independent"), "medium": ("dice", "trials", "batch", "independent", "coins"),
             "hard": ("dice", "trials", "batch", "weekday", "independent")}[difficulty]
    kind = rng.choice(kinds)
    name = rng.choice(_NAMES)
    if kind in ("dice", "coins", "trials"):
        events = {"easy": ("at_least_one", "at_least_one", "none"),
                  "medium": ("at_least_one", "at_least_one", "none", "exactly_one"),
                  "hard": ("at_least_one", "at_least_one", "exactly_one", "not_all")}[difficulty]
        event = rng.choice(events)
    if kind == "dice":
        n = {"easy": 2, "medium": rng.randint(3, 4), "hard": rng.randint(4, 5)}[difficulty]
        face = rng.choice((6, 6, 1, 2, 3, 4, 5))
        if event == "not_all":
            event = "at_least_one"
        value = _repeat_value(event, n, Fraction(1, 6))
        s = rng.choice((f"a fair die is rolled {n} times", f"{name} rolls {n} fair dice",
                        f"{name} throws a fair die {n} times"))
        c = {"at_least_one": f"at least one {face} comes up", "none": f"no {face} comes up at all",
             "exactly_one": f"exactly one {face} comes up"}[event]
        line = _repeat_rule(event, n, "1/6", "5/6", value, "roll")
        return _ask_probability(rng, s, c, [line], value, kind="dice", n=n, face=face, event=event)
    if kind == "coins":
        n = rng.randint(2, 6)
        if event == "not_all":
            event = "at_least_one"
        face = rng.choice(("head", "tail"))
        value = _repeat_value(event, n, Fraction(1, 2))
        s = rng.choice((f"a fair coin is flipped {n} times", f"{name} tosses {n} fair coins",
                        f"{name} flips a fair coin {n} times"))
        c = {"at_least_one": f"at least one {face} shows up", "none": f"no {face}s show up at all",
             "exactly_one": f"exactly one {face} shows up"}[event]
        line = _repeat_rule(event, n, "1/2", "1/2", value, "flip")
        return _ask_probability(rng, s, c, [line], value, kind="coins", n=n, face=face, event=event)
    if kind == "trials":
        n = rng.randint(3, 5) if difficulty == "medium" else rng.randint(5, 7)
        p = rng.choice((Fraction(1, 2), Fraction(1, 3), Fraction(2, 3), Fraction(1, 4), Fraction(3, 4),
                        Fraction(1, 5)) + ((Fraction(1, 10),) if n <= 4 else ()))
        setup, verb, what = rng.choice(_TRIALS)
        value = _repeat_value(event, n, p)
        s = setup.format(n=n, p=_f(p))
        c = {"at_least_one": f"at least one {what} {verb}", "none": f"no {what} {verb}",
             "exactly_one": f"exactly one {what} {verb}", "not_all": f"not every {what} {verb}"}[event]
        line = _repeat_rule(event, n, _f(p), _f(1 - p), value, what)
        return _ask_probability(rng, s, c, [line], value, kind="trials", n=n, p=_f(p), event=event)
    if kind == "batch":
        total = rng.randint(8, 15)
        bad = rng.randint(1, 4)
        k = 2 if difficulty == "medium" else rng.randint(3, 4)
        none = Fraction(math.comb(total - bad, k), math.comb(total, k))
        value = 1 - none
        s, c = rng.choice((
            (f"a box of {total} light bulbs contains {bad} defective ones and {k} bulbs are chosen at random",
             "at least one chosen bulb is defective"),
            (f"{bad} of the {total} eggs in a carton are cracked and {name} picks {k} eggs at random",
             "at least one of them is cracked"),
            (f"a class has {total} students, {bad} of them left-handed, and {k} students are chosen at random",
             "at least one chosen student is left-handed"),
            (f"an inspector tests {k} phones, no phone twice, from a batch of {total} phones with {bad} faulty ones",
             "the inspector finds at least one faulty phone"),
        ))
        line = (f"\"At least one\" is the complement of \"none\": P(none) = C({total - bad}, {k})/C({total}, {k}) = "
                f"{math.comb(total - bad, k)}/{math.comb(total, k)} = {_f(none)}, so P = 1 - {_f(none)} = {_f(value)}.")
        return _ask_probability(rng, s, c, [line], value, kind="batch", total=total, bad=bad, k=k)
    if kind == "weekday":
        k = rng.randint(2, 4)
        distinct = math.perm(7, k)
        none = Fraction(distinct, 7 ** k)
        value = 1 - none
        s, c = rng.choice((
            (f"{k} people are chosen at random, each equally likely to be born on any of the 7 days of the week",
             "at least two of them share a weekday of birth"),
            (f"each of {k} friends picks a day of the week at random for a party", "at least two pick the same day"),
            (f"{k} students each roll a fair 7-sided die", "some number appears at least twice"),
        ))
        prod_text = " × ".join(str(7 - i) for i in range(k))
        line = (f"\"At least two match\" is the complement of \"all different\": P(all different) = {prod_text}/7^{k}"
                f" = {distinct}/{7 ** k}" + (f" = {_f(none)}" if _f(none) != f"{distinct}/{7 ** k}" else "")
                + f", so P = 1 - {_f(none)} = {_f(value)}.")
        return _ask_probability(rng, s, c, [line], value, kind="weekday", k=k)
    m = 3 if difficulty == "hard" else 2
    probs = [rng.choice((Fraction(1, 2), Fraction(1, 3), Fraction(2, 3), Fraction(1, 4), Fraction(3, 4),
                         Fraction(2, 5), Fraction(3, 5), Fraction(4, 5), Fraction(9, 10))) for _ in range(m)]
    none = math.prod((1 - p for p in probs), start=Fraction(1))
    value = 1 - none
    ps = ", ".join(_f(p) for p in probs[:-1]) + f" and {_f(probs[-1])}"
    s, c = rng.choice((
        (f"{_DICE_WORDS[m]} alarms work independently with probabilities {ps}", "at least one alarm works"),
        (f"{_DICE_WORDS[m]} students independently try a puzzle, with chances {ps} of solving it",
         "the puzzle gets solved"),
        (f"{_DICE_WORDS[m]} independent events have probabilities {ps}", "at least one of them happens"),
        (f"a system has {_DICE_WORDS[m]} independent backup generators that start with probabilities {ps}",
         "at least one generator starts"),
    ))
    factors = " × ".join(_f(1 - p) for p in probs)
    line = (f"\"At least one\" is the complement of \"none\", and the events are independent: P(none) = {factors} = "
            f"{_f(none)}, so P = 1 - {_f(none)} = {_f(value)}.")
    return _ask_probability(rng, s, c, [line], value, kind="independent", probs=[_f(p) for p in probs])


# ---------------------------------------------------------------------------
# conditional_bayes
# ---------------------------------------------------------------------------

_TABLES = (  # (people, one person, rows: (label, "is ..."), columns: (label, "does ..."))
    ("students", "student", (("grade 10", "is in grade 10"), ("grade 11", "is in grade 11")),
     (("play a sport", "plays a sport"), ("do not play a sport", "does not play a sport"))),
    ("workers", "worker", (("day shift", "works the day shift"), ("night shift", "works the night shift")),
     (("drive to work", "drives to work"), ("take the bus", "takes the bus"))),
    ("visitors", "visitor", (("adults", "is an adult"), ("children", "is a child")),
     (("chose chocolate", "chose chocolate"), ("chose vanilla", "chose vanilla"))),
    ("patients", "patient", (("treatment group", "is in the treatment group"), ("placebo group",
                                                                                  "is in the placebo group")),
     (("recovered", "recovered"), ("did not recover", "did not recover"))),
    ("phones", "phone", (("brand A", "is a brand A phone"), ("brand B", "is a brand B phone")),
     (("passed the drop test", "passed the drop test"), ("failed it", "failed the drop test"))),
)

_BAYES_STORIES = (  # (story, who, positive, negative, has, has not)
    ("A disease affects {prior}% of a population. A test detects it in {sens}% of people who have it and "
     "gives a false positive for {fp}% of people who do not.", "person", "tests positive", "tests negative",
     "has the disease", "does not have the disease"),
    ("In a factory, {prior}% of items are faulty. An inspector flags {sens}% of faulty items and also "
     "flags {fp}% of good items.", "item", "is flagged", "is not flagged", "is faulty", "is good"),
    ("{prior}% of emails are spam. A filter marks {sens}% of spam emails as spam and wrongly marks {fp}% of "
     "normal emails.", "email", "is marked as spam", "is not marked", "is really spam", "is really normal"),
    ("A rare gene occurs in {prior}% of people. A screening test is positive for {sens}% of carriers and for "
     "{fp}% of non-carriers.", "person", "screens positive", "screens negative", "carries the gene",
     "is not a carrier"),
)


def _ask_given(rng, lines: list[str], value, parts: dict, /, long: bool = False, **params) -> dict:
    return _framed(rng, _GIVEN_FRAMES, lines, value, parts, long=long, **params)


def _conditional_bayes(rng: random.Random, difficulty: str) -> dict:
    """P(A | B) from formulas, two-way tables, dice and urns, Bayes' rule; next to P(A and B), which is not conditional.

    Look-alikes: "given that the student plays a sport, ..." (divide by that column) next to
    "a student plays a sport and is in grade 10" (divide by everyone).
    """
    kinds = {"easy": ("formula", "table"), "medium": ("table", "dice", "urn_seq", "total", "union"),
             "hard": ("bayes", "bayes", "two_urns", "dice", "urn_seq", "table")}[difficulty]
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
                "What is P(B | A) when P(A ∩ B) = {ab} and P(A) = {a}?",
                "A shop finds that {a} of visitors try a sample and {ab} try a sample and then buy. Among those "
                "who try a sample, what is the chance of buying?",
            )).format(a=_f(p_a), ab=_f(p_ab))
            q, form = _ask_form(rng, q, value)
            line = (f"By the definition of conditional probability, P(B | A) = P(A and B)/P(A) = {_f(p_ab)} ÷ "
                    f"{_f(p_a)} = {_f(value)}." + _in_form(value, form))
            return _record(q, [line], value, form=form, kind="formula", p_a=_f(p_a), p_ab=_f(p_ab),
                           template="formula", extra=None)
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
        q, form = _ask_form(rng, q, value)
        line = (f"Inclusion-exclusion: P(A and B) = {_f(p_a)} + {_f(p_b)} - {_f(p_union)} = {_f(p_ab)}; "
                f"then P(A | B) = P(A and B)/P(B) = {_f(p_ab)} ÷ {_f(p_b)} = {_f(value)}." + _in_form(value, form))
        return _record(q, [line], value, form=form, kind="union", p_a=_f(p_a), p_b=_f(p_b), p_union=_f(p_union),
                       template="union", extra=None)
    if kind == "table":
        people, one, row_info, col_info = rng.choice(_TABLES)
        counts = [[rng.randint(3, 30) for _ in range(2)] for _ in range(2)]
        ask = "joint" if rng.random() < 0.3 else "given"
        by_col = rng.random() < 0.5
        i, j = rng.randrange(2), rng.randrange(2)
        table = "; ".join(f"{row_info[r][0]}: {counts[r][0]} {col_info[0][0]}, {counts[r][1]} {col_info[1][0]}"
                          for r in range(2))
        S = rng.choice(("A survey of {people} gives these counts: {t}.", "Counts of {people}: {t}.",
                        "Here is a two-way table of {people} ({t}).", "Among some {people}: {t}."))
        S = S.format(people=people, t=table) + f" One {one} is picked at random."
        row_c, col_c = f"the {one} {row_info[i][1]}", f"the {one} {col_info[j][1]}"
        everyone = sum(map(sum, counts))
        params = dict(kind="table", rows=[r for r, _ in row_info], cols=[c for c, _ in col_info], counts=counts,
                      given=None if ask == "joint" else (["col", j] if by_col else ["row", i]),
                      target=["row", i] if by_col else ["col", j], both=[["row", i], ["col", j]], ask=ask)
        if ask == "joint":
            value = Fraction(counts[i][j], everyone)
            lines = [f"\"And\" with no condition: divide by everyone, {_sum(x for r in counts for x in r)}"
                     f"; {counts[i][j]} are in both. " + _prob_line(counts[i][j], everyone)]
            return _framed(rng, _PROB_FRAMES, lines, value, {"S": S, "c": f"{row_c} and {col_c.split(' ', 2)[2]}"},
                           long=True, **params)
        if by_col:
            given_total = counts[0][j] + counts[1][j]
            lines = [f"The condition keeps only the \"{col_info[j][0]}\" column: {counts[0][j]} + {counts[1][j]} = "
                     f"{given_total}, and {counts[i][j]} of them are in the \"{row_info[i][0]}\" row. "
                     + _prob_line(counts[i][j], given_total)]
            g, c = col_c, row_c
        else:
            given_total = counts[i][0] + counts[i][1]
            lines = [f"The condition keeps only the \"{row_info[i][0]}\" row: {counts[i][0]} + {counts[i][1]} = "
                     f"{given_total}, and {counts[i][j]} of them {col_info[j][0]}. "
                     + _prob_line(counts[i][j], given_total)]
            g, c = row_c, col_c
        value = Fraction(counts[i][j], given_total)
        return _ask_given(rng, lines, value, {"S": S, "g": g, "c": c}, long=True, **params)
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
        ask = "joint" if rng.random() < 0.25 and both else "given"
        gtext = {"sum_eq": f"the sum is {gv}", "sum_ge": f"the sum is at least {gv}",
                 "at_least_one": f"at least one die shows a {gv}", "first_eq": f"the first die shows {gv}"}[given]
        etext = {"doubles": "both dice show the same number", "sum_ge": f"the sum is at least {ev}",
                 "first_eq": f"the first die shows {ev}", "at_least_one": f"at least one die shows a {ev}",
                 "sum_eq": f"the sum is {ev}"}[event]
        s = rng.choice(("two fair dice, a first and a second, are rolled", "a first and a second fair die are rolled",
                        f"{rng.choice(_NAMES)} rolls a fair die twice, a first roll and then a second"))
        short = {"sum_eq": "sum {v}", "sum_ge": "sum at least {v}", "at_least_one": "a {v}",
                 "first_eq": "first die {v}", "doubles": "doubles"}
        params = dict(kind="dice", given=given, given_value=gv, event=event, event_value=ev, ask=ask)
        if ask == "joint":
            value = Fraction(len(both), 36)
            lines = [f"\"And\" with no condition: count among all 36 outcomes; {len(both)} have both "
                     f"{short[given].format(v=gv)} and {short[event].format(v=ev)}. " + _prob_line(len(both), 36)]
            return _ask_probability(rng, s, f"{gtext} and {etext}", lines, value, **params)
        value = Fraction(len(both), len(cond))
        lines = [f"The condition keeps only the {len(cond)} of the 36 outcomes with {short[given].format(v=gv)}; "
                 f"{len(both)} of those also have {short[event].format(v=ev)}. " + _prob_line(len(both), len(cond))]
        return _ask_given(rng, lines, value, {"s": s, "g": gtext, "c": etext}, **params)
    if kind == "urn_seq":
        colours = rng.sample(_COLOURS, 2)
        counts = {c: rng.randint(2, 8) for c in colours}
        c1, c2 = colours
        N, r = sum(counts.values()), counts[c1]
        ask = rng.choice(("second_given_first", "both_given_one")) if difficulty == "hard" else "second_given_first"
        s = rng.choice((f"a bag has {counts[c1]} {c1} and {counts[c2]} {c2} balls and two are drawn one after the "
                        "other without replacement",
                        f"{rng.choice(_NAMES)} takes two marbles, without putting the first back, from a jar with "
                        f"{counts[c1]} {c1} and {counts[c2]} {c2} marbles"))
        thing = "ball" if s.startswith("a bag") else "marble"
        if ask == "second_given_first":
            first = rng.choice(colours)
            left = counts[c1] - (first == c1)
            value = Fraction(left, N - 1)
            lines = [f"Given the first is {first}, the second draw is from the {N - 1} left, and {left} of them are "
                     f"{c1}. " + _prob_line(left, N - 1)]
            return _ask_given(rng, lines, value, {"s": s, "g": f"the first {thing} is {first}",
                                                  "c": f"the second {thing} is {c1}"},
                              kind="urn_seq", counts=counts, ask=ask, first=first, colour=c1)
        both = r * (r - 1)
        at_least = N * (N - 1) - (N - r) * (N - r - 1)
        value = Fraction(both, at_least)
        lines = [f"Ordered draws: {N} × {N - 1} = {N * (N - 1)}; both {c1}: {r} × {r - 1} = {both}; the condition "
                 f"keeps the at-least-one-{c1} draws, {N * (N - 1)} - {N - r} × {N - r - 1} = {at_least}. "
                 + _prob_line(both, at_least)]
        return _ask_given(rng, lines, value, {"s": s, "g": f"at least one of the two is {c1}",
                                              "c": f"both are {c1}"},
                          kind="urn_seq", counts=counts, ask=ask, first=None, colour=c1)
    if kind == "two_urns":
        r1, b1, r2, b2 = (rng.randint(1, 8) for _ in range(4))
        p1 = Fraction(r1, r1 + b1) / 2
        p2 = Fraction(r2, r2 + b2) / 2
        value = p1 / (p1 + p2)
        S = rng.choice((
            "Urn 1 has {r1} red and {b1} blue balls; urn 2 has {r2} red and {b2} blue balls. A fair coin picks an "
            "urn and one ball is drawn from it.",
            "Box 1 holds {r1} red and {b1} blue marbles and box 2 holds {r2} red and {b2} blue. {name} chooses a box "
            "at random, each equally likely, and draws one marble.",
        )).format(r1=r1, b1=b1, r2=r2, b2=b2, name=rng.choice(_NAMES))
        lines = [f"Bayes' rule: P(1 and red) = 1/2 × {r1}/{r1 + b1} = {_f(p1)}; P(2 and red) = 1/2 × {r2}/{r2 + b2} = "
                 f"{_f(p2)}. P(1 | red) = {_f(p1)} ÷ ({_f(p1)} + {_f(p2)}) = {_f(value)}."]
        place = "urn 1" if S.startswith("Urn") else "box 1"
        return _ask_given(rng, lines, value, {"S": S, "g": "the one drawn is red", "c": f"it came from {place}"},
                          long=True, kind="two_urns", urns=[[r1, b1], [r2, b2]])
    # bayes / total probability with a test
    prior = rng.choice((1, 2, 4, 5, 10, 20))
    sens = rng.choice((80, 90, 95, 99, 75))
    fp = rng.choice((1, 2, 5, 10, 20))
    story, who, pos, neg, has, hasnot = rng.choice(_BAYES_STORIES)
    S = story.format(prior=prior, sens=sens, fp=fp) + f" One {who} is chosen at random."
    P, Sn, FP = Fraction(prior, 100), Fraction(sens, 100), Fraction(fp, 100)
    tp, fpp = P * Sn, (1 - P) * FP
    ask = "total" if kind == "total" else rng.choice(("positive", "positive", "negative"))
    params = dict(kind="bayes", ask=ask, prior=_f(P), sensitivity=_f(Sn), false_positive=_f(FP))
    if ask == "total":
        value = tp + fpp
        lines = [f"By total probability, add the two ways a {who} {pos}: "
                 f"P = {_f(P)} × {_f(Sn)} + {_f(1 - P)} × {_f(FP)} = {_f(tp)} + {_f(fpp)} = {_f(value)}."]
        return _framed(rng, _PROB_FRAMES, lines, value, {"S": S, "c": f"the {who} {pos}"}, long=True, **params)
    if ask == "positive":
        value = tp / (tp + fpp)
        lines = [f"P(+) = {_f(P)} × {_f(Sn)} + {_f(1 - P)} × {_f(FP)} = {_f(tp)} + {_f(fpp)} = {_f(tp + fpp)}.",
                 f"By Bayes' rule, P = {_f(tp)} ÷ {_f(tp + fpp)} = {_f(value)}."]
        return _ask_given(rng, lines, value, {"S": S, "g": f"the {who} {pos}", "c": f"the {who} {has}"}, long=True,
                          **params)
    tn, fn = (1 - P) * (1 - FP), P * (1 - Sn)
    value = tn / (tn + fn)
    lines = [f"P(-) = {_f(1 - P)} × {_f(1 - FP)} + {_f(P)} × {_f(1 - Sn)} = {_f(tn)} + {_f(fn)} = {_f(tn + fn)}.",
             f"By Bayes' rule, P = {_f(tn)} ÷ {_f(tn + fn)} = {_f(value)}."]
    return _ask_given(rng, lines, value, {"S": S, "g": f"the {who} {neg}", "c": f"the {who} {hasnot}"}, long=True,
                      **params)


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


def _ask_stat(rng, s: str, what: str, quantity: str, lines: list[str], value, /, **params) -> dict:
    stat = rng.choice(("expected value", "mean")) if quantity == "mean" else "variance"
    parts = {"s": s, "what": what, "stat": stat, "sym": "E[Y]" if quantity == "mean" else "Var(Y)"}
    return _framed(rng, _STAT_FRAMES, lines, value, parts, quantity=quantity, **params)


def _expectation_variance(rng: random.Random, difficulty: str) -> dict:
    """E[X] and Var(X): fair n-sided dice, a small given PMF, games, binomial (np, np(1-p)), aX + b, sums of dice.

    Look-alikes: the expected sum of two dice (7, expectations add) next to their expected
    product (49/4, independence) and the variance of the sum (35/6, variances add).
    """
    kinds = {"easy": ("die", "pmf", "binomial", "game", "dice_sum"),
             "medium": ("die", "pmf", "binomial", "linear", "game", "two_dice", "dice_sum"),
             "hard": ("die", "pmf", "binomial", "linear", "two_dice", "dice_sum")}[difficulty]
    kind = rng.choice(kinds)
    quantity = "mean" if difficulty == "easy" else rng.choice(("mean", "variance")) if difficulty == "medium" \
        else "variance"
    if kind == "game" or kind == "two_dice" and difficulty != "hard":
        quantity = "mean"
    name = rng.choice(_NAMES)
    if kind == "die":
        sides = rng.choice((4, 6, 8, 10, 12, 20)) if difficulty != "easy" else rng.choice((4, 6, 8))
        mean = Fraction(sides + 1, 2)
        ex2 = Fraction((sides + 1) * (2 * sides + 1), 6)
        var = ex2 - mean ** 2
        die = "a fair six-sided die" if sides == 6 else f"a fair {sides}-sided die (faces 1 to {sides})"
        s = rng.choice((f"{die} is rolled", f"{name} rolls {die}"))
        if quantity == "mean":
            lines = [f"The expected value is the average of the equally likely faces: (1 + 2 + ... + {sides})/{sides} = "
                     f"{sides * (sides + 1) // 2}/{sides} = {_f(mean)}."]
            return _ask_stat(rng, s, "the number shown", quantity, lines, mean, kind="die", sides=sides)
        lines = [f"Var(X) = E[X^2] - (E[X])^2, with E[X] = {_f(mean)} and E[X^2] = (1^2 + ... + {sides}^2)/{sides} = "
                 f"{_f(ex2)}: Var(X) = {_f(ex2)} - ({_f(mean)})^2 = {_f(var)}."]
        return _ask_stat(rng, s, "the number shown", quantity, lines, var, kind="die", sides=sides)
    if kind in ("pmf", "game"):
        values, probs = _random_pmf(rng, 3 if difficulty != "hard" else rng.randint(3, 4))
        if kind == "game":
            values = [rng.choice((-5, -2, -1)), rng.randint(2, 3), rng.randint(4, 20)]
        mean = sum(v * p for v, p in zip(values, probs))
        ex2 = sum(v * v * p for v, p in zip(values, probs))
        var = ex2 - mean ** 2
        params = dict(kind="pmf", values=values, probs=[_f(p) for p in probs])
        if kind == "game":
            lose, small, big = values
            s, what = rng.choice((
                (f"in a game you lose ${-lose} with probability {_f(probs[0])}, win ${small} with probability "
                 f"{_f(probs[1])} and win ${big} with probability {_f(probs[2])}", "your winnings in dollars"),
                (f"a raffle ticket pays ${big} with probability {_f(probs[2])} and ${small} with probability "
                 f"{_f(probs[1])}, and otherwise (probability {_f(probs[0])}) you are down ${-lose}",
                 "the payoff in dollars"),
                (f"a spinner gives {lose} points with probability {_f(probs[0])}, {small} points with probability "
                 f"{_f(probs[1])} and {big} points with probability {_f(probs[2])}", "the score"),
            ))
            lines = [f"The expected value is the sum of value × probability: E = {_terms(values, probs)} = {_f(mean)}."]
            return _ask_stat(rng, s, what, "mean", lines, mean, **params)
        table = ", ".join(f"P(X = {v}) = {_f(p)}" for v, p in zip(values, probs))
        s, what = rng.choice((
            (f"a random variable X has {table}", "the value of X"),
            (f"a spinner lands on {', '.join(map(str, values))} with probabilities {', '.join(_f(p) for p in probs)}",
             "the number it lands on"),
            (f"a quantity X takes the values {', '.join(map(str, values))} with probabilities "
             f"{', '.join(_f(p) for p in probs)}", "that quantity"),
        ))
        if quantity == "mean":
            lines = [f"The expected value is the sum of value × probability: E[X] = {_terms(values, probs)} = "
                     f"{_f(mean)}."]
            return _ask_stat(rng, s, what, quantity, lines, mean, **params)
        lines = [f"Var(X) = E[X^2] - (E[X])^2. E[X] = {_terms(values, probs)} = {_f(mean)}.",
                 f"E[X^2] = {_terms(values, probs, True)} = {_f(ex2)}.",
                 f"Var(X) = {_f(ex2)} - ({_f(mean)})^2 = {_f(var)}."]
        return _ask_stat(rng, s, what, quantity, lines, var, **params)
    if kind == "binomial":
        p = rng.choice((Fraction(1, 2), Fraction(1, 3), Fraction(1, 4), Fraction(1, 6), Fraction(1, 5),
                        Fraction(2, 3), Fraction(3, 4)))
        n = rng.randint(2, 12) * (p.denominator if difficulty == "easy" else 1)
        mean, var = n * p, n * p * (1 - p)
        s, what = {Fraction(1, 2): (f"a fair coin is flipped {n} times", "the number of heads"),
                   Fraction(1, 6): (f"a fair die is rolled {n} times", "the number of sixes"),
                   Fraction(1, 4): (f"a student guesses on {n} questions with 4 choices each",
                                    "the number of correct answers"),
                   }.get(p, (f"{n} independent trials each succeed with probability {_f(p)}",
                             "the number of successes"))
        params = dict(kind="binomial", n=n, p=_f(p))
        if quantity == "mean":
            lines = [f"A count of independent successes is binomial, so E[X] = np = {n} × {_f(p)} = {_f(mean)}."]
            return _ask_stat(rng, s, what, quantity, lines, mean, **params)
        lines = [f"A count of independent successes is binomial, so Var(X) = np(1 - p) = {n} × {_f(p)} × {_f(1 - p)} = "
                 f"{_f(var)}."]
        return _ask_stat(rng, s, what, quantity, lines, var, **params)
    if kind == "linear":
        a, b = rng.choice((2, 3, 4, 5, -2, -1)), rng.randint(-10, 10)
        expr = f"{a}X {'+' if b >= 0 else '-'} {abs(b)}"
        s = rng.choice(("a fair six-sided die is rolled and shows X", f"{name} rolls a fair die and calls the result X"))
        if quantity == "mean":
            value = a * Fraction(7, 2) + b
            lines = [f"Expectation is linear: E[aX + b] = aE[X] + b, and E[X] = 7/2, so E[{expr}] = {a} × 7/2 "
                     f"{'+' if b >= 0 else '-'} {abs(b)} = {_f(value)}."]
        else:
            value = a * a * Fraction(35, 12)
            lines = [f"Adding a constant does not change the spread: Var(aX + b) = a^2 Var(X), and Var(X) = 35/12 for a "
                     f"fair die, so Var({expr}) = {a * a} × 35/12 = {_f(value)}."]
        return _ask_stat(rng, s, expr, quantity, lines, value, kind="linear", a=a, b=b)
    if kind == "dice_sum":
        k = rng.randint(2, 5) if difficulty != "hard" else rng.randint(3, 8)
        s = rng.choice((f"{k} fair dice are rolled", f"{name} throws {k} fair six-sided dice"))
        if quantity == "mean":
            value = k * Fraction(7, 2)
            lines = [f"Expectations add, die by die: E[total] = {k} × 7/2 = {_f(value)}."]
        else:
            value = k * Fraction(35, 12)
            lines = [f"For independent dice, variances add: Var(total) = {k} × 35/12 = {_f(value)}."]
        return _ask_stat(rng, s, "the total shown", quantity, lines, value, kind="dice_sum", dice=k)
    # two_dice: the sum or the product of two fair dice
    combine = rng.choice(("sum", "product")) if quantity == "mean" else "sum"
    s = rng.choice(("two fair dice are rolled", f"{name} rolls two fair six-sided dice, one red and one blue"))
    if combine == "sum" and quantity == "mean":
        value = Fraction(7)
        lines = ["Expectations add: E[X1 + X2] = E[X1] + E[X2] = 7/2 + 7/2 = 7."]
    elif combine == "product":
        value = Fraction(49, 4)
        lines = ["The dice are independent, so the expectation of the product is the product of the expectations: "
                 "E[X1 × X2] = 7/2 × 7/2 = 49/4."]
    else:
        value = Fraction(35, 6)
        lines = ["For independent dice, variances add: Var(X1 + X2) = 35/12 + 35/12 = 35/6."]
    what = "the sum of the two numbers" if combine == "sum" else "the product of the two numbers"
    return _ask_stat(rng, s, what, quantity, lines, value, kind="two_dice", combine=combine)


# ---------------------------------------------------------------------------
# binomial
# ---------------------------------------------------------------------------

_BINOMIAL_STORIES = (  # (p, situation with {n}, success: singular, plural, "the first {k} ... the rest ...")
    (Fraction(1, 2), "a fair coin is tossed {n} times", "head", "heads",
     "the first {k} tosses are heads and the other {r} are tails"),
    (Fraction(1, 6), "a fair die is rolled {n} times", "six", "sixes",
     "the first {k} rolls are sixes and none of the other {r} is"),
    (Fraction(1, 4), "a student guesses randomly on {n} multiple-choice questions, each with 4 options",
     "correct answer", "correct answers", "the first {k} answers are correct and the other {r} are wrong"),
    (Fraction(1, 3), "a spinner with 3 equal sections, one of them red, is spun {n} times", "red", "reds",
     "the first {k} spins land on red and the other {r} do not"),
    (Fraction(2, 3), "a basketball player makes each free throw with probability 2/3 and takes {n} shots",
     "made shot", "made shots", "the first {k} shots go in and the other {r} miss"),
    (Fraction(3, 4), "each of {n} seeds germinates independently with probability 3/4", "seed that germinates",
     "seeds that germinate", "the first {k} seeds germinate and the other {r} do not"),
    (Fraction(1, 5), "each of {n} customers independently buys dessert with probability 1/5", "dessert buyer",
     "dessert buyers", "the first {k} customers buy dessert and the other {r} do not"),
)


def _binomial(rng: random.Random, difficulty: str) -> dict:
    """X ~ Binomial(n, p): exactly / at least / at most k successes, one fixed order, and counts of sequences.

    Look-alikes: "exactly 2 sixes in 5 rolls" (C(5, 2) orders) next to "the first 2 rolls are
    sixes and the rest are not" (one order, no C) and "how many sequences have exactly 2 sixes"
    (C(5, 2), a count).
    """
    p, situation, one, many, first = rng.choice(_BINOMIAL_STORIES)
    n = {"easy": rng.randint(2, 4), "medium": rng.randint(4, 6), "hard": rng.randint(5, 8)}[difficulty]
    event = {"easy": ("eq", "eq", "ways", "order"), "medium": ("eq", "eq", "order", "ways"),
             "hard": ("ge", "le", "ge", "le", "eq")}[difficulty]
    event = rng.choice(event)
    if event == "ge":
        k = n - rng.randint(1, 2)
    elif event == "le":
        k = rng.randint(1, 2)
    elif event in ("order", "ways"):
        k = rng.randint(1, n - 1)
    else:
        k = rng.randint(0, n) if difficulty != "easy" else rng.randint(1, n)
    q_ = 1 - p
    s = situation.format(n=n)
    params = dict(n=n, k=k, p=_f(p), event=event)
    word = one if k == 1 else many
    if event == "ways":
        count = math.comb(n, k)
        lines = [f"A sequence with exactly {k} {word} is fixed by choosing which {k} of the {n} are {many}: "
                 f"{_comb_text(n, k)}. It asks how many sequences, so the answer is this count."]
        return _ask_count(rng, s, f"possible sequences of results with exactly {k} {word}", lines, count, **params)
    if event == "order":
        value = p ** k * q_ ** (n - k)
        lines = [f"One fixed order needs no C({n}, {k}), and the trials are independent: ({_f(p)})^{k} × "
                 f"({_f(q_)})^{n - k} = {_f(p ** k)} × {_f(q_ ** (n - k))} = {_f(value)}."]
        return _ask_probability(rng, s, first.format(k=k, r=n - k), lines, value, **params)
    ks = {"eq": [k], "ge": list(range(k, n + 1)), "le": list(range(0, k + 1))}[event]
    terms = [math.comb(n, j) * p ** j * q_ ** (n - j) for j in ks]
    value = sum(terms, Fraction(0))
    rel = {"eq": "exactly", "ge": "at least", "le": "at most"}[event]
    clause = (f"there are no {many}" if event == "eq" and k == 0 else
              f"there {'is' if k == 1 else 'are'} {rel} {k} {word}")
    if rng.random() < 0.2:  # the notation, as a textbook states it
        s = f"X ~ Binomial({n}, {_f(p)}) counts the {many}"
        clause = f"X {'=' if event == 'eq' else {'ge': '≥', 'le': '≤'}[event]} {k}"
    if event == "eq":
        j = k
        raw_num = math.comb(n, j) * p.numerator ** j * (p.denominator - p.numerator) ** (n - j)
        raw = f"{raw_num}/{p.denominator ** n}"
        lines = [f"Exactly {k} of {n} in any order: C({n}, {k}) orders, each with probability ({_f(p)})^{k} "
                 f"({_f(q_)})^{n - k}. P = {math.comb(n, k)} × {_f(p ** k)} × {_f(q_ ** (n - k))} = {raw}"
                 + (f" = {_f(value)}." if raw != _f(value) else ".")]
    else:
        sym = {"ge": "≥", "le": "≤"}[event]
        lines = [f"\"{_cap(rel)} {k}\" adds the cases " + ", ".join(map(str, ks)) + ", each C(n, j) orders: "
                 f"P(X {sym} {k}) = " + " + ".join(f"P({j})" for j in ks) + " = " + " + ".join(_f(t) for t in terms)
                 + f" = {_f(value)}, using P(j) = C({n}, j) ({_f(p)})^j ({_f(q_)})^({n} - j)."]
    return _ask_probability(rng, s, clause, lines, value, **params)


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
