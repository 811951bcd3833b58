"""Turning training faults into advice a person can act on.

Why this module exists: a CUDA out-of-memory error is a wall of allocator text;
what a learner needs is the seed's troubleshooting advice for the stage they are
in, with the numbers of their own run.

Used by helpers.sft and helpers.grpo.
"""

from __future__ import annotations


def oom_advice(stage: str, settings, err: Exception | None = None) -> str:
    """The seed's out-of-memory advice for ``stage``, with this run's values."""
    tips = [
        f"halve batch_size ({settings.batch_size} -> {max(1, settings.batch_size // 2)}) and double grad_accum "
        f"({settings.grad_accum} -> {settings.grad_accum * 2}) to keep the same effective batch "
        "(halve_batch_on_oom=True does this for you)",
    ]
    if stage == "sft":
        tips.append(f"shorten max_length ({settings.max_length})")
    else:
        tips.append(f"use fewer samples per prompt (num_generations={settings.num_generations}) "
                    f"or fewer new tokens (max_new_tokens={settings.max_new_tokens})")
    if not settings.load_in_4bit:
        tips.append("use the low_memory preset (4-bit weights, gradient checkpointing, paged 8-bit optimizer)")
    if not settings.gradient_checkpointing:
        tips.append("turn on gradient_checkpointing")
    first = str(err).splitlines()[0] if err else "out of memory"
    return f"Out of memory during {stage} ({first}). Try: " + "; ".join(tips) + "."


def halved_batch(settings):
    """The same settings with half the per-device batch and twice the accumulation (same effective batch).

    None when that is impossible: a batch of 1, an odd batch (the effective batch
    would change), or for GRPO a half that no longer holds whole groups of
    ``num_generations`` samples. The change is recorded in ``notes`` (run.json).
    """
    import dataclasses

    half = settings.batch_size // 2
    if settings.batch_size < 2 or settings.batch_size % 2 or half % getattr(settings, "num_generations", 1):
        return None
    note = (f"out of memory at batch_size={settings.batch_size}, grad_accum={settings.grad_accum}: retried with "
            f"batch_size={half}, grad_accum={settings.grad_accum * 2} (the same effective batch)")
    return dataclasses.replace(settings, batch_size=half, grad_accum=settings.grad_accum * 2,
                               notes=tuple(settings.notes) + (note,))
