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

Used in 04_grpo_train (helpers.grpo) and 05_compare.
"""

from __future__ import annotations

import functools
import logging
import random
import statistics

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


def _column(kwargs: dict, name: str, n: int) -> list:
    values = kwargs.get(name)
    return list(values) if values is not None else [None] * n


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


def make_length_penalty(max_new_tokens: int, soft_fraction: float = 0.75):
    """A length reward: 0 up to ``soft_fraction`` of the budget, then down to -0.5 at the limit,
    and -1 for a completion cut off at the limit without an ``Answer:`` line.

    >>> pen = make_length_penalty(100)
    >>> pen(["Answer: 1", "x"], completion_ids=[[0] * 10, [0] * 100])
    [0.0, -1.0]
    """
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
__all__ = ["correctness", "format_reward", "similarity", "make_length_penalty", "robust", "reward_functions",
           "combined_reward", "reward_sanity_check", "RewardsCannotSeparate", "answers_equal", "is_numeric_record"]
