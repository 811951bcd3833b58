"""The workbook's one answer convention, in one place.

Every worked solution in the data, every prompt, reward and evaluation uses the
same rule: the solution ends with a line ``Answer: <value>``, where the value is
an integer (``42``, ``-3``) or a reduced fraction (``3/8``). Keeping the rule
here means the generator that writes answers, the scorer that grades them and
the reward that trains on them cannot disagree.

Parsing is generous about how a model writes a number (``0.5``, ``50%``,
``1/2``, ``\\frac{1}{2}``, ``1,000``) because a correct value written another
way is still correct; the *format* check is a separate, strict question.

Introduced in 01_data_prep; used by 03_sft_eval, 04_grpo_train and 05_compare.
"""

from __future__ import annotations

import re
from fractions import Fraction

ANSWER_PREFIX = "Answer:"

# "Answer: 3/8" on a line of its own (leading spaces and markdown bold allowed).
_ANSWER_LINE = re.compile(r"^[ \t>*_#]*answer[ \t*_]*[:=][ \t*_]*(.+?)[ \t*_]*$", re.IGNORECASE | re.MULTILINE)
_ANSWER_ANYWHERE = re.compile(r"answer(?: is)?[ \t]*[:=]?[ \t]*(.+)", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:\s*/\s*-?\d[\d,]*(?:\.\d+)?)?%?|-?\.\d+%?")
_FRAC_LATEX = re.compile(r"\\[dt]?frac\{\s*(-?[\d.]+)\s*\}\{\s*(-?[\d.]+)\s*\}")


def format_final_answer(value: int | Fraction) -> str:
    """Write a value canonically: ``7``, ``-2`` or a reduced ``3/8``.

    >>> format_final_answer(Fraction(6, 16))
    '3/8'
    >>> format_final_answer(Fraction(4, 2))
    '2'
    """
    value = Fraction(value)
    if value.denominator == 1:
        return str(value.numerator)
    return f"{value.numerator}/{value.denominator}"


ANSWER_FORMS = ("fraction", "decimal", "percent")


def terminates(value: int | Fraction) -> bool:
    """Whether the value has a finite decimal expansion (denominator of only 2s and 5s)."""
    den = Fraction(value).denominator
    for p in (2, 5):
        while den % p == 0:
            den //= p
    return den == 1


def format_as(value: int | Fraction, form: str = "fraction") -> str:
    """The value in the form a question asked for: ``3/8``, ``0.375`` or ``37.5%``.

    Decimal and percent forms are exact, so they are only written for values
    whose decimal expansion ends (``terminates``); anything else falls back to
    the reduced fraction, which is always exact.

    >>> format_as(Fraction(3, 8), "percent"), format_as(Fraction(3, 8), "decimal"), format_as(Fraction(1, 3), "percent")
    ('37.5%', '0.375', '1/3')
    """
    value = Fraction(value)
    if form not in ANSWER_FORMS:
        raise ValueError(f"form: one of {', '.join(ANSWER_FORMS)}, got {form!r}")
    if form == "fraction" or value.denominator == 1 and form == "decimal" or not terminates(value):
        return format_final_answer(value)
    scaled = value * 100 if form == "percent" else value
    digits = 0
    while (scaled * 10 ** digits).denominator != 1:
        digits += 1
    text = f"{float(scaled):.{digits}f}" if digits else str(int(scaled))
    return text + ("%" if form == "percent" else "")


def answer_line(value: int | Fraction, form: str = "fraction") -> str:
    """The closing line of every worked solution: ``Answer: 3/8`` (or ``Answer: 37.5%`` when asked for).

    >>> answer_line(Fraction(1, 4), "percent")
    'Answer: 25%'
    """
    return f"{ANSWER_PREFIX} {format_as(value, form)}"


def parse_number(text: str) -> Fraction | None:
    """Read one number written in any usual way; ``None`` if there is none.

    Accepts integers, decimals, fractions, percentages, thousands separators,
    ``\\frac{a}{b}``, ``\\boxed{}``, a leading ``$`` and trailing punctuation.

    >>> parse_number("50%") == Fraction(1, 2)
    True
    >>> parse_number("\\\\frac{3}{8}")
    Fraction(3, 8)
    >>> parse_number("about seven") is None
    True
    """
    if text is None:
        return None
    s = str(text).strip()
    s = re.sub(r"\\boxed\{(.*)\}", r"\1", s)
    s = s.replace("$", "").replace("\\%", "%").replace("−", "-").strip()
    latex = _FRAC_LATEX.search(s)
    if latex:
        try:
            den = Fraction(latex.group(2))
            return Fraction(latex.group(1)) / den if den else None
        except (ValueError, ZeroDivisionError):
            return None
    match = _NUMBER.search(s)
    if not match:
        return None
    token = match.group(0).replace(",", "").replace(" ", "")
    percent = token.endswith("%")
    token = token.rstrip("%")
    try:
        if "/" in token:
            num, den = token.split("/", 1)
            if Fraction(den) == 0:
                return None
            value = Fraction(num) / Fraction(den)
        else:
            value = Fraction(token)
    except (ValueError, ZeroDivisionError):
        return None
    return value / 100 if percent else value


def extract_final_answer(text: str, strict: bool = True) -> str | None:
    """The text of the final answer in a completion, or ``None``.

    strict: the convention only, the last ``Answer: ...`` line.
    lenient: also ``the answer is ...`` anywhere, or else the last number in
    the text (how a reader would grade a solution that forgot the marker).

    >>> extract_final_answer("2 + 2 = 4\\nAnswer: 4")
    '4'
    >>> extract_final_answer("so it is 4", strict=False)
    '4'
    """
    if not isinstance(text, str):
        return None
    lines = _ANSWER_LINE.findall(text)
    if lines:
        return lines[-1].strip().rstrip(".").strip()
    if strict:
        return None
    anywhere = _ANSWER_ANYWHERE.findall(text)
    for candidate in reversed(anywhere):
        if parse_number(candidate) is not None:
            return candidate.strip().rstrip(".").strip()
    numbers = _NUMBER.findall(text)
    return numbers[-1].strip() if numbers else None


def count_answer_lines(text: str) -> int:
    """How many ``Answer:`` lines a completion has (the format wants exactly one)."""
    return len(_ANSWER_LINE.findall(text)) if isinstance(text, str) else 0


def answers_equal(predicted: str | None, reference: str | int | Fraction | None) -> bool:
    """Exact numeric equivalence: ``0.5`` = ``1/2`` = ``50%``; ``None`` never matches.

    >>> answers_equal("0.375", "3/8")
    True
    >>> answers_equal("3/7", "3/8")
    False
    """
    if predicted is None or reference is None:
        return False
    ref = reference if isinstance(reference, Fraction) else parse_number(str(reference))
    pred = parse_number(predicted)
    return pred is not None and ref is not None and pred == ref


def chat_messages(question: str) -> list[dict]:
    """The prompt for a question: one plain user message, nothing else.

    No system prompt and no format instruction: the tokenizer's chat template
    adds its own default, and the model learns the ``Answer:`` convention from
    the worked solutions. Training, evaluation and RAG all send exactly this,
    which is also how the trained models are scored elsewhere.
    """
    return [{"role": "user", "content": question}]


_EXACT_DECIMAL = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[-+]?\.\d+")
_EXACT_LATEX_FRAC = re.compile(r"([-+]?)\\[dt]?frac(?:\{([-+]?\d+)\}\{([-+]?\d+)\}|(\d)(\d))")


def parse_exact_number(text: str | int | None) -> Fraction | None:
    """The value of a text that is one number and nothing else; ``None`` otherwise.

    Unlike ``parse_number`` (which finds a number anywhere, for grading), this
    reads a dataset's *reference* answer, where ``5 apples``, ``\\sqrt{2}`` or
    ``x = 5`` must not quietly become 5 or 2. Accepts integers with or without
    thousands commas, decimals, ``a/b``, ``\\frac{a}{b}`` (``\\dfrac``,
    ``\\tfrac``, ``\\frac38``), a percent sign, ``$`` signs, LaTeX spacing
    (``\\!``, ``\\,``, ``{,}``) and one closing full stop. Used by helpers.data
    for GSM8K and MATH style files (01_data_prep).

    >>> parse_exact_number("1,000"), parse_exact_number("\\\\dfrac{3}{8}"), parse_exact_number("12.5\\\\%")
    (Fraction(1000, 1), Fraction(3, 8), Fraction(1, 8))
    >>> parse_exact_number("5 apples") is None, parse_exact_number("\\\\sqrt{2}") is None
    (True, True)
    """
    if isinstance(text, bool) or text is None:
        return None
    if isinstance(text, int):
        return Fraction(text)
    s = str(text).strip()
    for piece in ("$", "\\!", "\\,", "\\;", "\\ "):
        s = s.replace(piece, "")
    s = s.replace("{,}", ",").replace("\\%", "%").replace("−", "-").strip()
    s = re.sub(r"\s*/\s*", "/", s)
    if s.endswith(".") and s[:-1][-1:].isdigit():
        s = s[:-1]
    percent = s.endswith("%")
    s = s[:-1] if percent else s
    if not s or any(ch.isspace() for ch in s):
        return None
    latex = _EXACT_LATEX_FRAC.fullmatch(s)
    try:
        if latex:
            sign, num, den = latex.group(1), latex.group(2) or latex.group(4), latex.group(3) or latex.group(5)
            value = Fraction(int(num), int(den)) * (-1 if sign == "-" else 1)
        elif s.count("/") == 1 and all(_EXACT_DECIMAL.fullmatch(part) for part in s.split("/")):
            num, den = (Fraction(part.replace(",", "")) for part in s.split("/"))
            value = num / den
        elif _EXACT_DECIMAL.fullmatch(s):
            value = Fraction(s.replace(",", ""))
        else:
            return None
    except ZeroDivisionError:
        return None
    return value / 100 if percent else value
