"""Headroom: how much a reward stage could add, measured before it trains (pass@k at a temperature).

Why this module exists: reward training on a small model mostly *sharpens* what
the policy already samples: it turns pass@k into pass@1 and does not widen what
the model can solve (Yue et al. 2025, ../shared/RL-NOTES.md). So the most it can
add to greedy accuracy is bounded by the share of prompts where the greedy answer
is wrong and at least one of k samples is right. This module samples n
completions per prompt with the evaluation's generation code
(helpers.evaluate.cached_generate), grades them with the reward stage's verifier
(helpers.rewards.correctness, 1.0 = exact answer in the workbook's format, the
same rule as evaluation's strict accuracy), and reports

* pass@k for k = 1, 2, 4, 8, 16 with the unbiased estimator of Chen et al. 2021
  (``1 - C(n-c, k) / C(n, k)`` per prompt, averaged), which uses all n samples
  for every k instead of the first k only;
* greedy accuracy, when greedy completions are given or generated;
* "greedy wrong, at least one of k right": the same estimator restricted to the
  prompts whose greedy answer is wrong (a share of *all* prompts), the ceiling on
  what sharpening can add at that k.

``as_dict()`` is JSON-ready for ``run.json``; ``plot_pass_at_k`` draws pass@k
against k. Used by 04_grpo_train (``reward_stage_headroom``, before training) and helpers.rejection_sft
(each round's pass@k).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

KS = (1, 2, 4, 8, 16)

#: How much 04 measures before training: prompts per set and samples per prompt. The issue-sized plan (300
#: prompts x 16 samples per set, k up to 16) is ``default``'s and every other preset's but fast_test's. On the
#: 2-core CPU a sixth of it, 100 prompts x 8 samples per set at 128 tokens (three sets: reward-stage prompts at
#: T 1.0 and 0.7, transfer at 1.0), took 21.0 min (2026-12-04, Intel Xeon; about 3 of those minutes shared
#: the cores with a test run), so the full plan would take about 2 hours there: pass ``HEADROOM_PROMPTS`` /
#: ``--prompts`` smaller on CPU (0 in 04 skips it).
HEADROOM_PRESETS = {"fast_test": dict(prompts=4, samples=4), "default": dict(prompts=300, samples=16)}


def pass_at_k(n: int, c: int, k: int) -> float:
    """The chance that at least one of k samples drawn without replacement from n (c of them right) is right.

    Unbiased estimator of Chen et al. 2021 (HumanEval): ``1 - C(n-c, k) / C(n, k)``.

    >>> pass_at_k(4, 2, 1), round(pass_at_k(4, 2, 2), 4), pass_at_k(4, 0, 4), pass_at_k(4, 3, 2)
    (0.5, 0.8333, 0.0, 1.0)
    """
    if not 0 <= c <= n:
        raise ValueError(f"c: must be between 0 and n={n}, got {c}")
    if not 1 <= k <= n:
        raise ValueError(f"k: must be between 1 and n={n} (samples per prompt), got {k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


@dataclass
class Headroom:
    """pass@k of a policy on a set of prompts, and what sharpening could add to its greedy accuracy."""

    n_prompts: int
    samples_per_prompt: int
    temperature: float | None
    pass_at_k: dict[int, float]  # k -> mean unbiased pass@k
    greedy_accuracy: float | None = None  # None when no greedy completions were given
    greedy_wrong_some_right: dict[int, float] = field(default_factory=dict)  # k -> share of all prompts
    right_counts: list[int] = field(default_factory=list)  # right samples per prompt, in prompt order

    def as_dict(self) -> dict:
        """JSON-ready (keys of the per-k maps as text, ``pass@4``), for ``run.json``."""
        out = asdict(self)
        out["pass_at_k"] = {f"pass@{k}": v for k, v in self.pass_at_k.items()}
        out["greedy_wrong_some_right"] = {f"pass@{k}": v for k, v in self.greedy_wrong_some_right.items()}
        return out


def headroom_from_grades(grades: list[list[bool]], greedy: list[bool] | None = None, ks=KS,
                         temperature: float | None = None) -> Headroom:
    """pass@k (and the greedy-wrong share) from per-prompt sample grades; ks larger than n are left out.

    ``grades[i]`` holds one bool per sample of prompt i (every prompt the same n);
    ``greedy[i]`` whether prompt i's greedy answer is right.

    >>> h = headroom_from_grades([[True, True, False, False], [False] * 4], greedy=[False, False])
    >>> h.pass_at_k[1], round(h.pass_at_k[2], 4), h.greedy_accuracy, round(h.greedy_wrong_some_right[2], 4)
    (0.25, 0.4167, 0.0, 0.4167)
    """
    if not grades:
        raise ValueError("grades: no prompt to measure")
    n = len(grades[0])
    if n == 0 or any(len(g) != n for g in grades):
        raise ValueError("grades: every prompt needs the same number (> 0) of samples")
    if greedy is not None and len(greedy) != len(grades):
        raise ValueError(f"greedy: {len(greedy)} answers for {len(grades)} prompts")
    counts = [sum(map(bool, g)) for g in grades]
    used = [k for k in ks if k <= n]
    mean = lambda xs: round(sum(xs) / len(xs), 4)  # noqa: E731
    report = Headroom(len(grades), n, temperature, {k: mean([pass_at_k(n, c, k) for c in counts]) for k in used},
                      right_counts=counts)
    if greedy is not None:
        report.greedy_accuracy = mean([float(bool(g)) for g in greedy])
        report.greedy_wrong_some_right = {
            k: mean([0.0 if g else pass_at_k(n, c, k) for c, g in zip(counts, greedy)]) for k in used}
    return report


def is_right(text: str, final_answer: str) -> bool:
    """The reward stage's verifier: ``rewards.correctness`` gives 1.0 (exact answer, workbook format)."""
    from helpers.rewards import correctness

    return correctness([text], final_answer=[final_answer])[0] == 1.0


def measure_headroom(model, tokenizer, records: list[dict], n: int = 16, temperature: float = 1.0,
                     max_new_tokens: int = 160, batch_size: int = 4, greedy: list[str] | bool = True,
                     ks=KS, seed: int = 0, fingerprint: str | None = None, progress: bool = True) -> Headroom:
    """Sample ``n`` completions per numeric record at ``temperature``, grade them, and report the headroom.

    ``greedy``: True generates greedy completions too, a list gives them (one text per record, e.g. from an
    evaluation already run), False skips greedy accuracy. ``batch_size`` counts prompts (each brings n
    sequences). With ``fingerprint`` (helpers.evaluate.model_fingerprint) the completions are cached.
    Records without ``final_answer`` (concept questions) are left out.
    """
    from helpers.evaluate import GenerationSettings, cached_generate, is_numeric_record

    records = [r for r in records if is_numeric_record(r)]
    if not records:
        raise ValueError("records: no numeric record (with final_answer) to measure")
    questions = [r["question"] for r in records]
    sampling = GenerationSettings(max_new_tokens=max_new_tokens, batch_size=batch_size, do_sample=True,
                                  temperature=temperature, top_p=1.0, num_samples=n, seed=seed)
    samples = cached_generate(model, tokenizer, questions, sampling, fingerprint, progress=progress)
    grades = [[is_right(s["text"], r["final_answer"]) for s in group] for r, group in zip(records, samples)]
    greedy_texts = greedy if isinstance(greedy, list) else None
    if greedy is True:
        plain = GenerationSettings(max_new_tokens=max_new_tokens, batch_size=batch_size * n)
        greedy_texts = [g[0]["text"] for g in cached_generate(model, tokenizer, questions, plain, fingerprint,
                                                              progress=progress)]
    greedy_right = None if greedy_texts is None else [
        is_right(t, r["final_answer"]) for t, r in zip(greedy_texts, records)]
    return headroom_from_grades(grades, greedy_right, ks, temperature)


def headroom_sentence(report: Headroom, name: str = "this policy") -> str:
    """One sentence a notebook prints under the plot: what sharpening could add, at the largest k measured."""
    k = max(report.pass_at_k)
    text = (f"{name}: pass@1 {report.pass_at_k[1]:.1%}, pass@{k} {report.pass_at_k[k]:.1%} "
            f"at temperature {report.temperature} on {report.n_prompts} prompts")
    if report.greedy_accuracy is None:
        return text + "."
    gain = report.greedy_wrong_some_right[k]
    return (text + f"; greedy {report.greedy_accuracy:.1%}, and on {gain:.1%} of the prompts greedy is wrong while "
            f"one of {k} samples is right: sharpening can add at most about {100 * gain:.1f} points to greedy "
            "accuracy here.")


def plot_pass_at_k(reports, title: str = "Headroom: pass@k against k"):
    """pass@k against k (log2 axis) for one report or ``{name: report}``, greedy accuracy dashed."""
    from helpers.plots import subplots

    if isinstance(reports, Headroom):
        reports = {"policy": reports}
    fig, ax = subplots(figsize=(6.5, 3.8))
    for i, (name, rep) in enumerate(reports.items()):
        color = f"C{i}"
        ks = sorted(rep.pass_at_k)
        ax.plot(ks, [rep.pass_at_k[k] for k in ks], "o-", color=color, label=f"{name} (T {rep.temperature})")
        if rep.greedy_accuracy is not None:
            ax.axhline(rep.greedy_accuracy, color=color, ls="--", alpha=0.7, label=f"{name}: greedy")
    ax.set_xscale("log", base=2)
    all_ks = sorted({k for rep in reports.values() for k in rep.pass_at_k})
    ax.set_xticks(all_ks, [str(k) for k in all_ks])
    ax.set_xlabel("k (samples per prompt)")
    ax.set_ylabel("share of prompts solved")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def reward_stage_headroom(model, tokenizer, reward_rows: list[dict], preset: str, training_temperature: float,
                          max_new_tokens: int, prompts: int | None = None, samples: int | None = None,
                          fingerprint: str | None = None, seed: int = 1) -> dict[str, Headroom]:
    """The headroom section of 04: pass@k of the starting policy on the reward stage's own prompts (at
    temperature 1.0 and at the training temperature) and on the transfer set (at 1.0).

    ``prompts`` / ``samples`` left at None take ``HEADROOM_PRESETS[preset]``; ``prompts == 0`` measures nothing
    and returns ``{}``. The reward-stage prompts are a seeded sample of ``reward_rows`` (numeric rows only);
    the transfer prompts are the first ones of helpers.transfer's balanced order.
    """
    import random

    from helpers.evaluate import is_numeric_record, transfer_records

    plan = HEADROOM_PRESETS.get(preset, HEADROOM_PRESETS["default"])
    prompts = plan["prompts"] if prompts is None else prompts
    samples = plan["samples"] if samples is None else samples
    if prompts == 0:
        return {}
    numeric = [r for r in reward_rows if is_numeric_record(r)]
    own = random.Random(seed).sample(numeric, prompts) if prompts < len(numeric) else numeric
    runs = [("reward-stage prompts", own, t) for t in sorted({1.0, float(training_temperature)})]
    runs.append(("transfer", transfer_records(prompts), 1.0))
    return {f"{name}, T {t:g}": measure_headroom(model, tokenizer, records, n=samples, temperature=t,
                                                max_new_tokens=max_new_tokens, fingerprint=fingerprint, seed=seed)
            for name, records, t in runs}
