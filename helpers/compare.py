"""Comparing base, SFT and the reward stage on the same held-out questions, and saying what changed.

Why this module exists: the seed's "expected results" are claims; this module
measures them. It finds the runs from their ``run.json``, evaluates every model
with the same records, prompt, decoding and scorer (helpers.evaluate), scores
their completions with the GRPO rewards too, and turns the per-family
differences into sentences, with an interval so noise is not read as progress.
For the reward stage it sets each method (GRPO, rejection-sampling fine-tuning)
beside the control, more SFT on the teacher's worked solutions, at the minutes
each took: a reward earns its place only where it beats the control.

Used in 05_compare.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from helpers.evaluate import (EvalReport, GenerationSettings, accuracy_interval, evaluate_model, evaluate_sets,
                              model_fingerprint, paired_comparison, retention)
# pick_run (05_compare's SFT_RUN / GRPO_RUN) is helpers.runs', the one way notebooks find runs; named here too.
from helpers.runs import (final_adapter, find_runs, pick_run, read_run, read_training_log, repo_path,  # noqa: F401
                          run_method)

REWARD_METHODS = ("grpo", "rejection_sft", "more_sft")  # 04's METHOD; more_sft is the control


def _start_adapter(record: dict) -> Path | None:
    """The SFT adapter a reward-stage run started from (its final_model folder, resolved), or None."""
    start = record.get("settings", {}).get("sft_model") or record.get("sft_model") or ""
    if not start:
        return None
    path = repo_path(start)
    return (path / "final_model" if (path / "final_model").is_dir() else path).resolve()


def reward_stage_runs(sft_run: Path | None, given: str = "", root: str | Path | None = None) -> dict[str, Path]:
    """The reward-stage runs to set beside ``sft_run``: the newest completed one of each method (in
    ``REWARD_METHODS`` order) that started from its ``final_model``, so 05 compares methods from the same policy.

    ``given`` (05's ``GRPO_RUN``) names a run that replaces the one of its method. When no run started from this
    SFT run, the newest reward-stage run of any start stands in, as it did before methods existed.
    """
    found: dict[str, Path] = {}
    target = (Path(sft_run) / "final_model").resolve() if sft_run is not None else None
    for run in find_runs("grpo", root):
        method = run_method(run)
        if final_adapter(run) is not None and method not in found and _start_adapter(read_run(run)) == target:
            found[method] = run
    if given:
        run = pick_run("grpo", given, adapter=True, root=root)
        found[run_method(run)] = run
    elif not found:
        newest = pick_run("grpo", adapter=True, root=root)
        if newest is not None:
            found[run_method(newest)] = newest
    return {m: found[m] for m in REWARD_METHODS if m in found}


def _by_method(reward_runs: dict[str, Path] | str | Path | None) -> dict[str, Path]:
    """``{method: run}`` (``reward_stage_runs``) as it is, one run as ``{"grpo": run}``, None as ``{}``."""
    if reward_runs is None or isinstance(reward_runs, (str, Path)):
        return {"grpo": Path(reward_runs)} if reward_runs else {}
    return dict(reward_runs)


def models_to_compare(sft_run: Path | None, reward_runs: dict[str, Path] | Path | None) -> dict[str, Path | None]:
    """``{"base": None, "sft": adapter, <method>: adapter, ...}`` for the runs that exist.

    ``reward_runs``: ``{method: run}`` (``reward_stage_runs``), or one GRPO run.
    """
    models: dict[str, Path | None] = {"base": None}
    for name, run in (("sft", sft_run), *_by_method(reward_runs).items()):
        if run is not None and final_adapter(run) is not None:
            models[name] = final_adapter(run)
    return models


def comparison_pairs(names: list[str]) -> list[tuple[str, str]]:
    """(before, after) pairs 05 reports: SFT against the base, each reward-stage method against the SFT policy it
    started from, and each reward-based method against the control (more_sft), which it must beat to earn its
    place.

    >>> comparison_pairs(["base", "sft", "grpo", "rejection_sft", "more_sft"])[1:]
    [('sft', 'grpo'), ('sft', 'rejection_sft'), ('sft', 'more_sft'), ('more_sft', 'grpo'), ('more_sft', 'rejection_sft')]
    """
    methods = [n for n in names if n in REWARD_METHODS]
    pairs = [("base", "sft")] if {"base", "sft"} <= set(names) else []
    pairs += [("sft", m) for m in methods if "sft" in names]
    if "more_sft" in methods:
        pairs += [("more_sft", m) for m in methods if m != "more_sft"]
    return pairs


def base_model_name(*runs: Path | None) -> str:
    """The base model the runs were trained from (they must agree); "embedded" when no run says."""
    names = {read_run(r)["settings"].get("model_name", "embedded") for r in runs if r is not None}
    if len(names) > 1:
        raise ValueError(f"the runs were trained from different base models: {sorted(names)}")
    return names.pop() if names else "embedded"


def evaluate_all(models: dict[str, Path | None], sets: dict[str, list[dict]], settings: GenerationSettings,
                 base_name: str = "embedded", retention_records: list[dict] | None = None) -> dict:
    """Evaluate each model (base, or base + adapter loaded the seed's way) on every set, the same way.

    Returns ``{"reports": {set: [one EvalReport per model]}, "retention": [...]}``;
    retention (when records are given) is graded for every model but the base,
    whose right answers define the set. Completions are cached by the weights'
    fingerprint, so a model graded by 03 is not generated again in 05.
    Used in 03_sft_eval, 05_compare and ``python -m helpers evaluate``.
    """
    from helpers.models import load_adapter, load_base_model, load_tokenizer

    reports: dict[str, list[EvalReport]] = {name: [] for name in sets}
    kept = []
    for name, adapter in models.items():
        base = load_base_model(base_name)
        model = load_adapter(base, adapter) if adapter else base
        tokenizer = load_tokenizer(str(adapter) if adapter else base_name)
        fingerprint = model_fingerprint(base_name, adapter)
        for set_name, rep in evaluate_sets(model, tokenizer, sets, name, settings, fingerprint).items():
            reports[set_name].append(rep)
        if retention_records and adapter:
            kept.append(retention(evaluate_model(model, tokenizer, retention_records, name, settings,
                                                 fingerprint=fingerprint)))
        del model, base
    return {"reports": reports, "retention": kept}


def evaluate_runs(runs: list[Path], preset: str = "default", eval_data: str | Path = "data/training_data/sft_val.json",
                  seed: int = 0, **plan_overrides) -> dict:
    """The whole evaluation of 03/05 in one call: base and each run's final_model on both sets, retention,
    paired statistics against the base, the scorecard and its headline. Used by ``python -m helpers evaluate``.
    """
    from helpers.evaluate import (evaluation_plan, evaluation_sets, headline, load_retention_set, scorecard)

    plan = evaluation_plan(preset, **plan_overrides)
    base_name = base_model_name(*runs)
    models: dict[str, Path | None] = {"base": None}
    for run in runs:
        adapter = run / "final_model"
        if not (adapter / "adapter_config.json").is_file():
            raise FileNotFoundError(f"run: {run} has no final_model/adapter_config.json (did the run complete?)")
        models[run.name] = adapter
    sets = evaluation_sets(repo_path(eval_data), plan, seed)
    kept = load_retention_set(base_name, plan["n_retention"])
    gen = GenerationSettings(max_new_tokens=plan["max_new_tokens"], batch_size=plan["batch_size"])
    result = evaluate_all(models, sets, gen, base_name, kept)
    card = scorecard(result["reports"], result["retention"])
    paired = paired_against(result["reports"], [("base", name) for name in list(models)[1:]])
    lines = [headline(card, "base", name, paired[f"{name} vs base"].get("transfer")) for name in list(models)[1:]]
    return {**result, "scorecard": card, "paired": paired, "headlines": lines, "plan": plan,
            "eval_data": str(eval_data), "eval_seed": seed}


def paired_against(reports: dict[str, list[EvalReport]], pairs: list[tuple[str, str]] | None = None) -> dict:
    """Paired statistics for each ``(before, after)`` pair of models on every set (default: each model against
    the one listed before it, e.g. sft vs base, grpo vs sft): ``{"sft vs base": {"transfer": {...}, ...}}``."""
    names = [r.name for r in next(iter(reports.values()))]
    pairs = pairs if pairs is not None else list(zip(names, names[1:]))
    out = {}
    for before, after in pairs:
        for set_name, reps in reports.items():
            by_name = {r.name: r for r in reps}
            if before in by_name and after in by_name:
                out.setdefault(f"{after} vs {before}", {})[set_name] = paired_comparison(by_name[before],
                                                                                         by_name[after])
    return out


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


def _accuracy_by_group(rep: EvalReport) -> dict[str, tuple[int, int]]:
    out: dict[str, list[int]] = {}
    for r in rep.rows:
        if r["kind"] == "numeric":
            hits = out.setdefault(r["group"], [0, 0])
            hits[0] += int(r["correct_strict"])
            hits[1] += 1
    return {k: (c, n) for k, (c, n) in out.items()}


def describe_changes(reports: list[EvalReport], min_gap: float = 0.1,
                     pairs: list[tuple[str, str]] | None = None) -> list[str]:
    """Sentences on where each stage helped, hurt, or did neither, by family.

    A change counts when it is at least ``min_gap`` and the two 95% intervals do
    not overlap (otherwise it is called noise), so small samples are not over-read.
    ``pairs``: (before, after) models; default SFT against the base and each reward-stage method against SFT.
    """
    by_name = {r.name: r for r in reports}
    lines = []
    names = [r.name for r in reports]
    for before, after in pairs or [p for p in comparison_pairs(names) if p[0] != "more_sft"]:
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


def training_notes(sft_run: Path | None, reward_runs: dict[str, Path] | Path | None,
                   min_steps: int = 20) -> list[str]:
    """Plain words on runs too short to change a model, so an unchanged score is not read as a finding."""
    notes, reward_runs = [], _by_method(reward_runs) or {"grpo": None}  # no run at all: say the GRPO row is missing
    for stage, run in (("SFT", sft_run), *((m.upper(), r) for m, r in reward_runs.items())):
        if run is None:
            notes.append(f"No completed {stage} run was found: its row is missing.")
            continue
        record = read_run(run)
        steps = record.get("global_step") or 0
        if steps < min_steps:
            notes.append(f"{stage} run {run.name} trained {steps} steps (preset {record.get('preset')}): too few to "
                         f"change the model much, so its row differs from the one before it by little or nothing. "
                         f"The measured `default` runs are in the README.")
    return notes


def budget_table(reward_runs: dict[str, Path], card: list[dict], paired: dict) -> list[dict]:
    """05's budget-matched table: per reward-stage method, what it cost (wall minutes, its budget, steps, rows or
    samples) and what it did to transfer and in-distribution accuracy against the SFT policy (paired)."""
    rows, by_model = [], {r["model"]: r for r in card}
    for method, run in reward_runs.items():
        record, score = read_run(run), by_model.get(method, {})
        vs_sft = paired.get(f"{method} vs sft", {})
        rounds = record.get("rounds") or []
        row = {"method": method, "run": run.name, "minutes": record.get("wall_minutes"),
               "budget_minutes": record.get("settings", {}).get("max_minutes") or None,
               "stopped_by_budget": record.get("stopped_by_budget"), "steps": record.get("global_step"),
               "samples": sum(r.get("samples", 0) for r in rounds) if rounds else None,
               "training_rows": sum(r.get("training_rows", 0) for r in rounds) if rounds else None}
        for set_name in ("transfer", "in_distribution"):
            pair = vs_sft.get(set_name) or {}
            row[f"{set_name}_strict"] = score.get(f"{set_name}_strict")
            row[f"{set_name}_95"] = score.get(f"{set_name}_95")
            row[f"{set_name}_vs_sft"] = pair.get("difference")
            row[f"{set_name}_p"] = pair.get("mcnemar_p")
        rows.append(row)
    return rows


def transfer_headroom(reward_runs: dict[str, Path]) -> dict | None:
    """The transfer-set headroom 04 measured before training (run.json ``headroom``), from the first run with one."""
    for run in reward_runs.values():
        for name, room in (read_run(run).get("headroom") or {}).items():
            if name.startswith("transfer"):
                return room
    return None


def budget_verdict(rows: list[dict], paired: dict, room: dict | None = None, alpha: float = 0.05,
                   tolerance: float = 0.15) -> list[str]:
    """What the budget-matched table says, in sentences built from its numbers only.

    A method "earns its place" only where it beats the control (more SFT on the teacher's worked solutions) on
    transfer with McNemar p < ``alpha``; runs whose wall minutes differ by more than ``tolerance`` are said not
    to be budget-matched, so a cheaper run's lower score is not read as a worse method.
    """
    if not rows:
        return ["No reward-stage run started from this SFT run: run 04 with METHOD grpo, rejection_sft and more_sft "
                "and the same MAX_MINUTES to fill this table."]
    lines = []
    minutes = {r["method"]: r["minutes"] for r in rows if r["minutes"]}
    missing = [m for m in REWARD_METHODS if m not in {r["method"] for r in rows}]
    if missing:
        lines.append(f"Not run from this SFT policy yet: {', '.join(missing)} (04 with that METHOD and the same "
                     "MAX_MINUTES).")
    if minutes and max(minutes.values()) > (1 + tolerance) * min(minutes.values()):
        lines.append("Not budget-matched: the runs took " + ", ".join(f"{m} {v:.1f} min" for m, v in minutes.items())
                     + "; give each the same MAX_MINUTES before reading a winner from this table.")
    elif minutes:
        lines.append(f"Budget-matched: each run took {min(minutes.values()):.1f}-{max(minutes.values()):.1f} min.")
    scored = [r for r in rows if r["transfer_vs_sft"] is not None]
    for r in scored:
        p = r["transfer_p"]
        verdict = "a real change" if p is not None and p < alpha else "within noise"
        lines.append(f"{r['method']} vs the SFT policy: transfer {r['transfer_vs_sft']:+.1%} (McNemar p {p:.2g}, "
                     f"{verdict}), in distribution {r['in_distribution_vs_sft'] or 0:+.1%}.")
    for r in scored:
        if r["method"] == "more_sft":
            continue
        pair = paired.get(f"{r['method']} vs more_sft", {}).get("transfer")
        if not pair or not pair.get("n"):
            continue
        wins = pair["difference"] > 0 and pair["mcnemar_p"] < alpha
        lines.append(f"{r['method']} vs the control (more SFT, same minutes): transfer {pair['difference']:+.1%} "
                     f"(p {pair['mcnemar_p']:.2g}): " + ("the reward earns its place here." if wins else
                                                        "it does not beat more of the teacher's data here."))
    if scored:
        best = max(scored, key=lambda r: r["transfer_vs_sft"])
        real = best["transfer_p"] is not None and best["transfer_p"] < alpha and best["transfer_vs_sft"] > 0
        lines.append(f"Best on transfer: {best['method']} ({best['transfer_vs_sft']:+.1%})" +
                     ("." if real else ", but no method moved transfer accuracy beyond noise at this size."))
    if room and room.get("greedy_wrong_some_right"):
        k = max(int(key.split("@")[1]) for key in room["greedy_wrong_some_right"])
        gain = room["greedy_wrong_some_right"][f"pass@{k}"]
        lines.append(f"Headroom (04, before training): on {gain:.1%} of {room['n_prompts']} transfer prompts greedy is "
                     f"wrong while one of {k} samples is right, so sharpening alone could add at most about "
                     f"{100 * gain:.0f} points there.")
    return lines


def plot_training_side_by_side(sft_run: Path | None, grpo_run: Path | None):
    """SFT loss and GRPO reward curves next to each other."""
    from helpers.plots import subplots  # closed in pyplot, so the figure is shown once

    from helpers.plots import smooth

    fig, (ax1, ax2) = subplots(1, 2, figsize=(11, 3.6))
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


def grade_base_answers(model_name: str, records: list[dict], max_new_tokens: int) -> tuple[EvalReport, dict]:
    """The base model's greedy answers to ``records``, graded, and the header a stored file of them carries.

    The header (model, date, decoding) is what ``evaluate.read_base_model_file`` checks. Used by
    ``build_retention_file`` and ``helpers.replay.build_replay_file``.
    """
    import datetime as dt

    from helpers.models import load_base_model, load_tokenizer

    gen = GenerationSettings(max_new_tokens=max_new_tokens, batch_size=32)
    model, tokenizer = load_base_model(model_name), load_tokenizer(model_name)
    report = evaluate_model(model, tokenizer, records, "base", gen, fingerprint=model_fingerprint(model_name))
    return report, {"model": model_name, "built": dt.date.today().isoformat(), "generation": gen.__dict__}


def build_retention_file(model_name: str = "embedded", max_new_tokens: int = 256) -> dict:
    """Grade the base model on the retention candidates and store the ones it answers right.

    The file records which model and decoding built it; ``evaluate.load_retention_set``
    refuses it for another base model. Used by ``python -m helpers retention``.
    """
    from helpers.evaluate import RETENTION_FILE, build_retention_set, retention_candidates, retention_family
    from helpers.runs import write_json_atomic

    candidates = retention_candidates()
    report, header = grade_base_answers(model_name, candidates, max_new_tokens)
    records = build_retention_set(report, candidates)
    by_family: dict[str, list[int]] = {}
    for rec in candidates:
        by_family.setdefault(retention_family(rec), [0, 0])[1] += 1
    for rec in records:
        by_family[rec["family"]][0] += 1
    summary = {**header, "candidates": len(candidates), "kept": len(records),
               "by_family": {f: {"right": c, "of": n} for f, (c, n) in sorted(by_family.items())}}
    write_json_atomic(RETENTION_FILE, {**summary, "records": records})
    return summary
