"""The plots a person wants to see: loss and reward curves, accuracy bars.

Why this module exists: notebooks show figures, helpers draw them. Every
function returns a matplotlib ``Figure`` that pyplot no longer holds (the notebook
shows it once and saves it as PNG next to the run; a figure left open in pyplot
would be drawn a second time at the end of the cell). ``LivePlot`` redraws one figure in place while training
runs, in JupyterLab and under papermill alike (the last frame is kept in the
executed notebook).

Used in 02_sft_train, 03_sft_eval, 04_grpo_train and 05_compare.
"""

from __future__ import annotations

import matplotlib.pyplot as plt


def subplots(*args, **kwargs):
    """``plt.subplots`` for a figure that is returned, not shown: closed in pyplot at once, so the inline
    backend does not draw it again at the end of the cell (it can still be drawn on, saved and displayed)."""
    fig, axes = plt.subplots(*args, **kwargs)
    plt.close(fig)
    return fig, axes


def _series(rows: list[dict], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for row in rows:
        if row.get(key) is not None and row.get("step") is not None:
            xs.append(row["step"])
            ys.append(row[key])
    return xs, ys


def smooth(values: list[float], window: int = 5) -> list[float]:
    """Trailing moving average, so a noisy loss still shows its trend."""
    out = []
    for i in range(len(values)):
        chunk = values[max(0, i - window + 1): i + 1]
        out.append(sum(chunk) / len(chunk))
    return out


def plot_sft_losses(rows: list[dict], title: str = "SFT loss"):
    """Training loss (raw and smoothed) and validation loss against the step."""
    fig, ax = subplots(figsize=(7, 3.6))
    xs, ys = _series(rows, "loss")
    if xs:
        ax.plot(xs, ys, color="tab:blue", alpha=0.3, label="train (per log step)")
        ax.plot(xs, smooth(ys), color="tab:blue", label="train (smoothed)")
    vx, vy = _series(rows, "val_loss")
    if vx:
        ax.plot(vx, vy, "o-", color="tab:orange", label="validation")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy on the solution tokens")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if xs or vx:
        ax.legend()
    fig.tight_layout()
    return fig


def plot_grpo_curves(rows: list[dict], title: str = "GRPO"):
    """Reward (mean with its spread), KL, loss and completion length against the step."""
    fig, axes = subplots(2, 2, figsize=(10, 6))
    (ax_r, ax_kl), (ax_loss, ax_len) = axes
    xs, ys = _series(rows, "reward")
    if xs:
        _, std = _series(rows, "reward_std")
        ax_r.plot(xs, ys, color="tab:green", alpha=0.35, label="mean reward")
        ax_r.plot(xs, smooth(ys), color="tab:green", label="smoothed")
        if len(std) == len(ys):
            lo = [m - s for m, s in zip(ys, std)]
            hi = [m + s for m, s in zip(ys, std)]
            ax_r.fill_between(xs, lo, hi, color="tab:green", alpha=0.1, label="± std within groups")
        ax_r.legend(fontsize=8)
    for key, color in (("correctness", "tab:purple"), ("arithmetic", "tab:orange")):
        cx, cy = _series(rows, key)
        if cx:
            ax_r.plot(cx, smooth(cy), color=color, linestyle="--", label=key)
            ax_r.legend(fontsize=8)
    ax_r.set_title("reward")
    kx, ky = _series(rows, "kl")
    if kx:
        ax_kl.plot(kx, ky, color="tab:red")
        ax_kl.axhline(0.5, color="grey", linestyle=":", label="health limit 0.5")
        ax_kl.legend(fontsize=8)
    ax_kl.set_title("KL to the reference policy")
    lx, ly = _series(rows, "loss")
    if lx:
        ax_loss.plot(lx, ly, color="tab:blue")
    ax_loss.set_title("loss")
    cx, cy = _series(rows, "completion_length")
    if cx:
        ax_len.plot(cx, cy, color="tab:brown", label="mean")
        _, clip = _series(rows, "clipped_ratio")
        if len(clip) == len(cy):
            ax2 = ax_len.twinx()
            ax2.plot(cx, clip, color="grey", alpha=0.5, label="truncated fraction")
            ax2.set_ylim(0, 1)
            ax2.set_ylabel("truncated fraction")
    ax_len.set_title("completion length (tokens)")
    for ax in axes.flat:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_probe(probe: dict, title: str = "probe accuracy"):
    """Greedy probe accuracy against the step (run.json ``probe``), the step final_model/ holds marked."""
    history = probe["history"]
    fig, ax = subplots(figsize=(6, 3.2))
    ax.plot([h["step"] for h in history], [h["accuracy"] for h in history], marker="o")
    best = next(h for h in history if h["step"] == probe["best_step"])
    ax.plot([best["step"]], [best["accuracy"]], marker="*", markersize=14, linestyle="none",
            label=f"final_model/: step {best['step']}")
    ax.set_xlabel("step")
    ax.set_ylabel(f"strict accuracy, {probe['n']} held-out prompts")
    ax.set_ylim(0, max(0.05, 1.15 * max(h["accuracy"] for h in history)))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_accuracy_bars(table: dict[str, dict[str, float]], title: str = "accuracy by family", ylabel="accuracy"):
    """Grouped bars: ``table[model][group] = value`` (e.g. base/SFT/GRPO by problem family)."""
    models = list(table)
    groups = sorted({g for scores in table.values() for g in scores})
    width = 0.8 / max(1, len(models))
    fig, ax = subplots(figsize=(max(6, 0.6 * len(groups) * max(1, len(models)) / 1.5), 3.8))
    for i, model in enumerate(models):
        xs = [j + i * width for j in range(len(groups))]
        ax.bar(xs, [table[model].get(g, 0.0) for g in groups], width=width, label=model)
    ax.set_xticks([j + width * (len(models) - 1) / 2 for j in range(len(groups))])
    ax.set_xticklabels(groups, rotation=40, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


class LivePlot:
    """A figure that redraws in place as log rows arrive (JupyterLab and papermill alike).

    ``LivePlot(plot_sft_losses)`` gives a callable for ``on_log_row``; it
    redraws at most every ``every`` rows so plotting never slows training.
    """

    def __init__(self, draw, every: int = 1):
        self.draw = draw
        self.every = every
        self.handle = None
        self.count = 0

    def __call__(self, row: dict, rows: list[dict]) -> None:
        self.count += 1
        if self.count % self.every:
            return
        from IPython.display import display

        fig = self.draw(rows)
        if self.handle is None:
            self.handle = display(fig, display_id=True)
        else:
            self.handle.update(fig)
        plt.close(fig)


def plot_token_lengths(prompt_tokens: list[int], total_tokens: list[int], max_length: int):
    """Histograms of prompt and prompt+solution token counts, with the max_length cut-off marked."""
    fig, ax = subplots(figsize=(7, 3.4))
    bins = range(0, max(max(total_tokens, default=0), max_length) + 16, 8)
    ax.hist(prompt_tokens, bins=bins, alpha=0.6, label="prompt (chat template + question)")
    ax.hist(total_tokens, bins=bins, alpha=0.6, label="prompt + worked solution")
    ax.axvline(max_length, color="red", linestyle="--", label=f"max_length = {max_length}")
    ax.set_xlabel("tokens")
    ax.set_ylabel("rows")
    ax.set_title("Token lengths: rows to the right of the red line would be dropped")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_counts(counts: dict[str, int], title: str = "rows per family / topic"):
    """Horizontal bars of how many rows each family or topic has."""
    items = sorted(counts.items(), key=lambda kv: kv[1])
    fig, ax = subplots(figsize=(7, max(2.5, 0.22 * len(items))))
    ax.barh([k for k, _ in items], [v for _, v in items], color="tab:blue")
    ax.set_xlabel("rows")
    ax.set_title(title)
    ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    return fig
