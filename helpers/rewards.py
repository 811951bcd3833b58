"""Rewards for GRPO, built on the evaluation scorers so training aims at what is graded.

Why this module exists: GRPO learns only from differences in reward between
samples of the same prompt. A reward that cannot tell a right answer from a
wrong one, or that crashes on one odd completion, silently wastes the run. So
each reward here is a pure function with TRL's signature
``(completions, **kwargs) -> list[float | None]`` that reuses helpers.evaluate's
scorers, returns ``None`` (TRL: "not applicable", skipped) for rows it does not
grade, and is wrapped by ``robust`` so one exception scores one item as missing
instead of stopping training. ``reward_sanity_check`` proves, before training,
that the rewards separate good answers from bad ones.

Rewards (weights per preset in helpers.config, the seed's "reward weights"):
- ``correctness``: 1 for the exact final answer in the workbook's format; 0.5
  partial credit for the right value without the format; 0 otherwise.
- ``format``: 1 for exactly one ``Answer:`` line at the end, else 0.
- ``similarity``: concept questions only: embedding cosine with the reference
  (packaged all-MiniLM-L6-v2), or token F1 when it is absent.
- ``length``: 0 for a finished answer within budget, down to -1 for an answer
  cut off at the token limit (rambling earns less than stopping).
- ``arithmetic``: the share of the worked solution's checkable equations
  (``4/36 = 1/9``, ``C(6, 2) = 15``) that are true, checked exactly with
  fractions. The final answer is all-or-nothing, so in a group whose samples
  are all wrong it gives GRPO nothing; this reward still prefers the sample
  that slipped less. Not in any preset's weights: measured with weight 0.5 on
  the CPU `default` run, the sampled steps' share of true equations rose from
  0.52 to 0.63 in 56 steps, but held-out accuracy fell 3.0 points (README).

Used in 04_grpo_train (helpers.grpo) and 05_compare.
"""

from __future__ import annotations

import ast
import functools
import logging
import math
import random
import re
import statistics
from fractions import Fraction

from helpers.answers import answers_equal, extract_final_answer
from helpers.evaluate import (embedding_similarity, is_numeric_record, score_format, score_numeric,
                              strip_answer_line, token_f1)

log = logging.getLogger(__name__)


def completion_text(completion) -> str:
    """The text of a completion, whether TRL passes a string or a conversation."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content", ""))
    if isinstance(completion, dict):
        return str(completion.get("content", ""))
    raise TypeError(f"unexpected completion type {type(completion).__name__}")


def correctness(completions, final_answer=None, **kwargs) -> list[float | None]:
    """1.0 exact answer in format, 0.5 right value without the format, 0.0 wrong; None for concept rows.

    >>> correctness(["2 + 2 = 4\\nAnswer: 4", "it is 4", "Answer: 5"], final_answer=["4", "4", "4"])
    [1.0, 0.5, 0.0]
    """
    refs = final_answer if final_answer is not None else [None] * len(completions)
    out = []
    for completion, ref in zip(completions, refs):
        if ref in (None, ""):
            out.append(None)
            continue
        text = completion_text(completion)
        if score_numeric(text, ref, strict=True):
            out.append(1.0)
        elif score_numeric(text, ref, strict=False):
            out.append(0.5)
        else:
            out.append(0.0)
    return out


def format_reward(completions, **kwargs) -> list[float]:
    """1.0 when the completion ends in exactly one ``Answer:`` line, else 0.0.

    >>> format_reward(["x\\nAnswer: 3/8", "Answer: 1\\nAnswer: 2", "no answer"])
    [1.0, 0.0, 0.0]
    """
    return [1.0 if score_format(completion_text(c)) else 0.0 for c in completions]


format_reward.__name__ = "format"


def similarity(completions, answer=None, final_answer=None, **kwargs) -> list[float | None]:
    """Concept questions: cosine of sentence embeddings with the reference (token F1 without the encoder).

    Numeric problems get None (graded by ``correctness``).

    >>> similarity(["the mean is np"], answer=["The mean is np."], final_answer=[None]) [0] > 0.5
    True
    """
    n = len(completions)
    answers = answer if answer is not None else [None] * n
    finals = final_answer if final_answer is not None else [None] * n
    idx = [i for i in range(n) if answers[i] and finals[i] in (None, "")]
    out: list[float | None] = [None] * n
    if not idx:
        return out
    preds = [strip_answer_line(completion_text(completions[i])) for i in idx]
    refs = [answers[i] for i in idx]
    sims = embedding_similarity(preds, refs)
    if sims is None:
        sims = [token_f1(p, r) for p, r in zip(preds, refs)]
    for i, s in zip(idx, sims):
        out[i] = float(max(0.0, s))
    return out


# An arithmetic expression as the worked solutions write one: numbers, + - × ÷ / ^ %, brackets, C(n, k), P(n, k),
# gcd(a, b), and $ signs. Letters other than those function names end it.
_EXPR = r"(?:(?:C|P|gcd)\(|[\d\s.+\-*/×÷·^()%$,!−–])+"
_LEFT_EXPR = re.compile(_EXPR + r"$")
_RIGHT_EXPR = re.compile(r"^" + _EXPR)
_OPERATOR = re.compile(r"[+\-*/×÷·^%!−–]|\b(?:C|P|gcd)\(|\d\s*\(|\)\s*\(")
_MAX_CHECKED = 40


def _top_level_parts(text: str) -> list[str]:
    """``text`` split at commas outside brackets (``C(6, 3)`` stays whole)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _python_expression(text: str) -> str:
    text = text.replace("$", "").replace("−", "-").replace("–", "-")
    # a written fraction is one number (1/8 ÷ 1/4, 2 × 3/4), except next to a power (4/7^4 is 4/(7^4))
    text = re.sub(r"(?<![\d.^])(\d+)\s*/\s*(\d+)(?![\d.]|\s*\^)", r"(\1/\2)", text)
    text = text.replace("×", "*").replace("·", "*").replace("÷", "/").replace("^", "**")
    text = re.sub(r"(\d+(?:\.\d+)?)\s*%", r"(\1/100)", text)
    text = re.sub(r"(\d+)!", r"factorial(\1)", text)
    text = re.sub(r"\bC\(", "comb(", text)
    text = re.sub(r"\bP\(", "perm(", text)
    return re.sub(r"(\d|\))\s*\(", r"\1*(", text)  # implicit products: C(6, 3) (1/6)^3, 2(3 + 4)


def _exact_value(node):
    """Evaluate a parsed expression with fractions; ValueError for anything outside plain arithmetic."""
    if isinstance(node, ast.Expression):
        return _exact_value(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return Fraction(str(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _exact_value(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp):
        a, b = _exact_value(node.left), _exact_value(node.right)
        if isinstance(node.op, ast.Add):
            return a + b
        if isinstance(node.op, ast.Sub):
            return a - b
        if isinstance(node.op, ast.Mult):
            return a * b
        if isinstance(node.op, ast.Div):
            if b == 0:
                raise ValueError("division by zero")
            return a / b
        if isinstance(node.op, ast.Pow) and b.denominator == 1 and abs(b) <= 64 and abs(a.numerator) < 10**6:
            if a == 0 and b < 0:
                raise ValueError("zero to a negative power")
            return a ** int(b)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        fn = {"comb": math.comb, "perm": math.perm, "gcd": math.gcd, "factorial": math.factorial}.get(node.func.id)
        args = [_exact_value(a) for a in node.args]
        arity = 1 if node.func.id == "factorial" else 2
        if fn and len(args) == arity and all(a.denominator == 1 and 0 <= a <= 1000 for a in args):
            return Fraction(fn(*(int(a) for a in args)))
    raise ValueError("not plain arithmetic")


def _value(text: str):
    """(value, decimals written) of an arithmetic expression, or None when it is not one."""
    text = text.strip()
    if not text or not re.search(r"\d", text):
        return None
    try:
        value = _exact_value(ast.parse(_python_expression(text), mode="eval"))
    except (SyntaxError, ValueError, TypeError, ZeroDivisionError, OverflowError, RecursionError):
        return None
    decimals = max((len(d) for d in re.findall(r"\.(\d+)", text)), default=0)
    return value, decimals


def check_equations(text: str) -> tuple[int, int]:
    """(true, false) counts of the checkable equations in a worked solution.

    An equation is checked when both sides of an ``=`` are plain arithmetic and
    the left side is a calculation (has an operator) or continues a chain
    (``a = b = c``); ``20% of 50 = 10`` or ``E[X] = 7/2`` are not checked, so a
    correct sentence is never counted as a slip. Decimals are compared to the
    precision written (``1/3 = 0.33`` is true).

    >>> check_equations("P = 4/52 × 4/51 = 16/2652 = 4/663.\\nAnswer: 4/663")
    (2, 0)
    >>> check_equations("There are 6 × 6 = 36 outcomes. P = 4/36 = 1/6.")
    (1, 1)
    >>> check_equations("C(6, 3) (1/6)^3 (5/6)^3 = 2500/46656 = 625/11664; 8 - 1 = 7, so 20% of 50 = 10")
    (3, 0)
    """
    text = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", text)  # 1,000 -> 1000
    text = re.sub(r"[<>!=]=|==", " ", text)
    right = wrong = 0
    positions = [m.start() for m in re.finditer("=", text)][:_MAX_CHECKED]
    for i in positions:
        left_match = _LEFT_EXPR.search(text[:i])
        right_match = _RIGHT_EXPR.match(text[i + 1:])
        if not left_match or not right_match:
            continue
        start = left_match.start()
        if start and not left_match.group(0)[0].isspace() and (text[start - 1].isalpha() or text[start - 1] in "])|"):
            continue  # Φ(-1.96) = ..., sqrt(100 × 0.25) = ...: a function this checker does not know
        left_parts = _top_level_parts(left_match.group(0))
        left = left_parts[-1].split("\n")[-1]
        before = text[:left_match.start()] + ",".join(left_parts[:-1])
        chained = len(left_parts) == 1 and before.rstrip().endswith("=")
        if not (_OPERATOR.search(left.strip().lstrip("-−–")) or chained):
            continue
        right_side = _top_level_parts(right_match.group(0))[0].split("\n")[0].strip().rstrip(".")
        a, b = _value(left), _value(right_side)
        if a is None or b is None:
            continue
        written = [d for d in (a[1], b[1]) if d]
        decimals = min(written) if written else 0  # a rounded side is as precise as it is written
        tolerance = Fraction(1, 2 * 10 ** decimals) if decimals else 0
        if abs(a[0] - b[0]) <= tolerance:
            right += 1
        else:
            wrong += 1
    return right, wrong


def arithmetic(completions, **kwargs) -> list[float | None]:
    """The share of a completion's checkable equations that are true; None when it has none to check.

    >>> arithmetic(["6 × 7 = 42.\\nAnswer: 42", "6 × 7 = 48.\\nAnswer: 48", "6 × 7 = 42, 42 + 1 = 44", "It is 42."])
    [1.0, 0.0, 0.5, None]
    """
    out = []
    for completion in completions:
        right, wrong = check_equations(completion_text(completion))
        out.append(right / (right + wrong) if right + wrong else None)
    return out


def make_length_penalty(max_new_tokens: int, soft_fraction: float = 0.75):
    """A length reward: 0 up to ``soft_fraction`` of the budget, then down to -0.5 at the limit,
    and -1 for a completion cut off at the limit without an ``Answer:`` line.

    >>> pen = make_length_penalty(100)
    >>> pen(["Answer: 1", "x"], completion_ids=[[0] * 10, [0] * 100])
    [0.0, -1.0]
    """
    # Not TRL's get_soft_overlong_punishment(max_new_tokens, max_new_tokens - soft) (trl.rewards, TRL 1.16), on
    # purpose: on the ramp TRL's is exactly twice as steep (0 down to -1 at the limit, ours 0 down to -0.5), and it
    # gives -1 to every completion that reaches the limit, where ours gives -1 only to one cut off without an
    # ``Answer:`` line (a long but finished answer is not punished like rambling). Taking it would change the
    # GRPO reward of the presets (default weights: 0.1 on "length") and so every measured GRPO run.
    soft = int(max_new_tokens * soft_fraction)

    def length(completions, completion_ids=None, **kwargs) -> list[float]:
        out = []
        for i, completion in enumerate(completions):
            n = len(completion_ids[i]) if completion_ids is not None else len(completion_text(completion).split())
            text = completion_text(completion)
            if n >= max_new_tokens and extract_final_answer(text, strict=True) is None:
                out.append(-1.0)
            elif n > soft:
                out.append(-0.5 * (n - soft) / max(1, max_new_tokens - soft))
            else:
                out.append(0.0)
        return out

    return length


def robust(fn):
    """Wrap a reward so an exception scores the failing items as None (missing) instead of stopping training.

    The batch is retried item by item to find the failing ones; failures are
    counted on the wrapper (``.failures``) and logged, and through TRL's
    ``log_metric`` when it is given.
    """

    @functools.wraps(fn)
    def wrapper(completions, **kwargs):
        try:
            return list(fn(completions, **kwargs))
        except Exception as err:  # noqa: BLE001 - one bad completion must not stop a run
            first_error = err
        out = []
        failed = 0
        for i in range(len(completions)):
            item = {k: ([v[i]] if isinstance(v, list) and len(v) == len(completions) else v)
                    for k, v in kwargs.items()}
            try:
                out.append(fn([completions[i]], **item)[0])
            except Exception:  # noqa: BLE001
                out.append(None)
                failed += 1
        wrapper.failures += failed
        log.warning("reward %s raised %s on %d of %d completions; scored them as missing",
                    fn.__name__, type(first_error).__name__, failed, len(completions))
        log_metric = kwargs.get("log_metric")
        if callable(log_metric):
            try:
                log_metric(f"rewards/{fn.__name__}/failures", float(failed))
            except Exception:  # noqa: BLE001
                pass
        return out

    wrapper.failures = 0
    return wrapper


def reward_functions(weights: dict[str, float], max_new_tokens: int) -> tuple[list, list[float]]:
    """The reward functions and weights for TRL, from a ``{name: weight}`` mapping (zero weights dropped)."""
    available = {
        "correctness": correctness,
        "format": format_reward,
        "similarity": similarity,
        "length": make_length_penalty(max_new_tokens),
        "arithmetic": arithmetic,
    }
    unknown = set(weights) - set(available)
    if unknown:
        raise ValueError(f"reward_weights: unknown reward(s) {', '.join(sorted(unknown))}; "
                         f"valid: {', '.join(available)}")
    funcs, ws = [], []
    for name, weight in weights.items():
        if weight == 0:
            continue
        fn = available[name]
        fn.__name__ = name
        funcs.append(robust(fn))
        ws.append(float(weight))
    if not funcs:
        raise ValueError("reward_weights: every weight is zero; GRPO needs at least one reward")
    return funcs, ws


def combined_reward(funcs, weights, completions, **kwargs) -> list[float]:
    """The weighted sum TRL optimises (None counts as 0 here, as TRL's nansum does)."""
    total = [0.0] * len(completions)
    for fn, w in zip(funcs, weights):
        for i, r in enumerate(fn(completions, **kwargs)):
            if r is not None:
                total[i] += w * r
    return total


class RewardsCannotSeparate(RuntimeError):
    """The sanity check found that the rewards do not tell good answers from bad ones."""


def reward_sanity_check(records: list[dict], weights: dict[str, float], max_new_tokens: int,
                        samples: list[list[str]] | None = None, seed: int = 0, margin: float = 0.3) -> dict:
    """Check the rewards before training (the seed's "check reward model is working").

    - reference answers must score high;
    - the same references shuffled across questions must score clearly lower;
    - if ``samples`` (groups of the current model's completions per record) are
      given, the share of groups whose rewards have any spread is reported:
      groups with zero spread teach GRPO nothing.

    Returns a table-ready dict; raises ``RewardsCannotSeparate`` with an
    explanation when reference and shuffled scores are not ``margin`` apart.
    """
    funcs, ws = reward_functions(weights, max_new_tokens)
    cols = {k: [r.get(k) for r in records] for k in ("final_answer", "answer")}
    refs = [r["answer"] for r in records]
    shuffled = refs[:]
    rng = random.Random(seed)
    for _ in range(10):
        rng.shuffle(shuffled)
        if len(refs) < 2 or any(a != b for a, b in zip(refs, shuffled)):
            break
    ids = [[0] * max(1, len(t.split())) for t in refs]
    good = combined_reward(funcs, ws, refs, completion_ids=ids, **cols)
    bad_ids = [[0] * max(1, len(t.split())) for t in shuffled]
    bad = combined_reward(funcs, ws, shuffled, completion_ids=bad_ids, **cols)
    result = {
        "reference_mean": round(statistics.mean(good), 3),
        "shuffled_mean": round(statistics.mean(bad), 3),
        "per_reward": {},
    }
    for fn in funcs:
        g = [x for x in fn(refs, completion_ids=ids, **cols) if x is not None]
        b = [x for x in fn(shuffled, completion_ids=bad_ids, **cols) if x is not None]
        result["per_reward"][fn.__name__] = {
            "reference": round(statistics.mean(g), 3) if g else None,
            "shuffled": round(statistics.mean(b), 3) if b else None,
        }
    if samples is not None:
        spreads = []
        for record, group in zip(records, samples):
            group_cols = {k: [record.get(k)] * len(group) for k in ("final_answer", "answer")}
            gids = [[0] * max(1, len(t.split())) for t in group]
            scores = combined_reward(funcs, ws, group, completion_ids=gids, **group_cols)
            spreads.append(statistics.pstdev(scores) if len(scores) > 1 else 0.0)
        result["groups_with_spread"] = round(sum(s > 1e-6 for s in spreads) / len(spreads), 3) if spreads else None
        result["mean_group_std"] = round(statistics.mean(spreads), 3) if spreads else None
    result["separates"] = result["reference_mean"] - result["shuffled_mean"] >= margin
    if not result["separates"]:
        raise RewardsCannotSeparate(
            f"Reference answers score {result['reference_mean']} and shuffled references {result['shuffled_mean']}: "
            f"less than {margin} apart. GRPO would push the model towards noise. Check that the training file has "
            "final_answer for numeric problems, and that the reward weights give correctness or similarity weight."
        )
    if samples is not None and not result["groups_with_spread"]:
        raise RewardsCannotSeparate(
            "Every group of the current model's samples got the same reward: GRPO's advantages would all be zero. "
            "Raise the temperature, use more samples per prompt, or pick problems the model sometimes solves."
        )
    return result


# answers_equal and is_numeric_record are re-exported for notebooks that grade by hand.
__all__ = ["correctness", "format_reward", "similarity", "arithmetic", "check_equations", "make_length_penalty",
           "robust", "reward_functions",
           "combined_reward", "reward_sanity_check", "RewardsCannotSeparate", "answers_equal", "is_numeric_record"]
