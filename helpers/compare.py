"""Comparing base, SFT and GRPO on the same held-out questions, and saying what changed.

Why this module exists: the seed's "expected results" are claims; this module
measures them. It finds the runs from their ``run.json``, evaluates every model
with the same records, prompt, decoding and scorer (helpers.evaluate), scores
their completions with the GRPO rewards too, and turns the per-family
differences into sentences, with an interval so noise is not read as progress.

Used in 05_compare.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from helpers.evaluate import EvalReport, GenerationSettings, accuracy_interval, evaluate_model
from helpers.runs import find_runs, read_run, read_training_log, repo_path


def pick_run(stage: str, run: str = "") -> Path | None:
    """A run folder: the one named, else the newest completed run of the stage, else None."""
    if run:
        path = repo_path(run)
        if not (path / "run.json").is_file():
            raise FileNotFoundError(f"{stage}_run: {run} has no run.json")
        return path
    runs = find_runs(stage)
    return runs[0] if runs else None


def models_to_compare(sft_run: Path | None, grpo_run: Path | None) -> dict[str, Path | None]:
    """``{"base": None, "sft": adapter, "grpo": adapter}`` for the runs that exist."""
    models: dict[str, Path | None] = {"base": None}
    for name, run in (("sft", sft_run), ("grpo", grpo_run)):
        if run is not None and (run / "final_model" / "adapter_config.json").is_file():
            models[name] = run / "final_model"
    return models


def base_model_name(*runs: Path | None) -> str:
    """The base model the runs were trained from (they must agree); "embedded" when no run says."""
    names = {read_run(r)["settings"].get("model_name", "embedded") for r in runs if r is not None}
    if len(names) > 1:
        raise ValueError(f"the runs were trained from different base models: {sorted(names)}")
    return names.pop() if names else "embedded"


def evaluate_all(models: dict[str, Path | None], records: list[dict], settings: GenerationSettings,
                 base_name: str = "embedded") -> list[EvalReport]:
    """Evaluate each model (base, or base + adapter loaded the seed's way) on the same records."""
    from helpers.models import load_adapter, load_base_model, load_tokenizer

    reports = []
    for name, adapter in models.items():
        base = load_base_model(base_name)
        model = load_adapter(base, adapter) if adapter else base
        tokenizer = load_tokenizer(str(adapter) if adapter else base_name)
        reports.append(evaluate_model(model, tokenizer, records, name, settings))
        del model, base
    return reports


def reward_means(report: EvalReport, records: list[dict], weights: dict[str, float], max_new_tokens: int) -> dict:
    """Mean of each GRPO reward over a model's greedy completions (None-valued items skipped)."""
    from helpers.rewards import reward_functions

    funcs, _ = reward_functions(weights, max_new_tokens)
    completions = [r["completion"] for r in report.rows]
    ids = [[0] * (r.get("answer_tokens") or 0) for r in report.rows]
    cols = {k: [rec.get(k) for rec in records] for k in ("final_answer", "answer")}
    out = {}
    for fn in funcs:
        values = [v for v in fn(completions, completion_ids=ids, **cols) if v is not None]
        out[fn.__name__] = round(statistics.mean(values), 4) if values else None
    return out


SCORECARD_KEYS = ("accuracy_strict", "accuracy_lenient", "format_rate", "truncation_rate", "mean_answer_tokens",
                  "token_f1", "embedding_cosine")


def scorecard(reports: list[EvalReport], rewards_by_model: dict[str, dict] | None = None) -> list[dict]:
    """One row per model: accuracies with a 95% interval, format, truncation, length, similarity, rewards."""
    rows = []
    for rep in reports:
        numeric = [r for r in rep.rows if r["kind"] == "numeric"]
        correct = sum(r["correct_strict"] for r in numeric)
        row = {"model": rep.name, **{k: rep.summary.get(k) for k in SCORECARD_KEYS},
               "strict_95": accuracy_interval(correct, len(numeric))}
        for key in rep.summary:
            if key.startswith(("pass@", "maj@")):
                row[key] = rep.summary[key]
        for name, value in (rewards_by_model or {}).get(rep.name, {}).items():
            row[f"reward_{name}"] = value
        rows.append(row)
    return rows


def _accuracy_by_group(rep: EvalReport) -> dict[str, tuple[int, int]]:
    out: dict[str, list[int]] = {}
    for r in rep.rows:
        if r["kind"] == "numeric":
            hits = out.setdefault(r["group"], [0, 0])
            hits[0] += int(r["correct_strict"])
            hits[1] += 1
    return {k: (c, n) for k, (c, n) in out.items()}


def describe_changes(reports: list[EvalReport], min_gap: float = 0.1) -> list[str]:
    """Sentences on where each stage helped, hurt, or did neither, by family.

    A change counts when it is at least ``min_gap`` and the two 95% intervals do
    not overlap (otherwise it is called noise), so small samples are not over-read.
    """
    by_name = {r.name: r for r in reports}
    lines = []
    for before, after in (("base", "sft"), ("sft", "grpo")):
        if before not in by_name or after not in by_name:
            continue
        a, b = _accuracy_by_group(by_name[before]), _accuracy_by_group(by_name[after])
        helped, hurt, flat = [], [], []
        for group in sorted(set(a) & set(b)):
            (ca, na), (cb, nb) = a[group], b[group]
            gap = cb / nb - ca / na
            lo_a, hi_a = accuracy_interval(ca, na)
            lo_b, hi_b = accuracy_interval(cb, nb)
            clear = lo_b > hi_a or hi_b < lo_a
            label = f"{group} ({ca}/{na} -> {cb}/{nb})"
            if gap >= min_gap and clear:
                helped.append(label)
            elif gap <= -min_gap and clear:
                hurt.append(label)
            else:
                flat.append(label)
        total_a = sum(c for c, _ in a.values()), sum(n for _, n in a.values())
        total_b = sum(c for c, _ in b.values()), sum(n for _, n in b.values())
        if total_a[1] and total_b[1]:
            lines.append(f"{after.upper()} vs {before}: strict accuracy {total_a[0] / total_a[1]:.0%} -> "
                         f"{total_b[0] / total_b[1]:.0%} on {total_b[1]} held-out problems.")
        lines.append(f"  clearly helped: {', '.join(helped) or 'no family'}")
        lines.append(f"  clearly hurt: {', '.join(hurt) or 'no family'}")
        lines.append(f"  within noise: {', '.join(flat) or 'no family'}")
    return lines


def plot_training_side_by_side(sft_run: Path | None, grpo_run: Path | None):
    """SFT loss and GRPO reward curves next to each other."""
    import matplotlib.pyplot as plt

    from helpers.plots import smooth

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.6))
    if sft_run is not None and (sft_run / "training_log.txt").is_file():
        rows = read_training_log(sft_run / "training_log.txt")
        xs = [r["step"] for r in rows if "loss" in r]
        ax1.plot(xs, smooth([r["loss"] for r in rows if "loss" in r]), label="train (smoothed)")
        vx = [r["step"] for r in rows if "val_loss" in r]
        ax1.plot(vx, [r["val_loss"] for r in rows if "val_loss" in r], "o-", label="validation")
        ax1.legend()
    ax1.set_title(f"SFT loss ({sft_run.name if sft_run else 'no run'})")
    ax1.set_xlabel("step")
    if grpo_run is not None and (grpo_run / "training_log.txt").is_file():
        rows = read_training_log(grpo_run / "training_log.txt")
        xs = [r["step"] for r in rows if "reward" in r]
        ax2.plot(xs, smooth([r["reward"] for r in rows if "reward" in r]), color="tab:green", label="mean reward")
        cx = [r["step"] for r in rows if "correctness" in r]
        if cx:
            ax2.plot(cx, smooth([r["correctness"] for r in rows if "correctness" in r]), "--", color="tab:purple",
                     label="correctness")
        ax2.legend()
    ax2.set_title(f"GRPO reward ({grpo_run.name if grpo_run else 'no run'})")
    ax2.set_xlabel("step")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
