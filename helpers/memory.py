"""Keeping LoRA training on a CPU within a laptop's memory, with the same loss and gradient.

Why this module exists: on the 2-core CPU this workbook is tested on, an SFT
step of the ``default`` preset peaked at 8.6 GB for a 135M-parameter model
(float32 weights: 0.54 GB). ``benchmarks/memory_breakdown.py`` measured where
it goes; two things dominate, and both can be cut without changing what is
trained:

- TRL's fused LM head scores *every* position on devices without Triton (it
  keeps tile shapes fixed for compilers), prompt and padding included, in tiles
  of up to 4,096 tokens x 32,768 vocabulary entries of float32 (512 MB each,
  plus temporaries of the same size). ``score_labelled_tokens_only`` scores
  only the positions that have a label, in small tiles: the same log-probs,
  entropy and top-1 flags, the same loss.
- The activations kept for the backward pass grow with the tokens of one
  forward pass (about 2 MB per token here). LoRA's dropout keeps its random
  mask as float32 noise for the backward pass, eight per layer;
  ``keep_dropout_masks_as_bits`` keeps them as booleans (a quarter of the
  bytes), with the same random draws, outputs and gradients. ``train_in_token_chunks`` runs the
  forward and backward pass of a batch in row chunks of at most ``max_tokens``
  tokens. The loss is normalised by the token count of the whole batch, so the
  summed gradient is the batch's gradient (up to float rounding and dropout's
  random draws); the logged loss and metrics are the batch's, token-weighted.

Used by helpers.sft (``build_sft_trainer``) and helpers.grpo
(``build_grpo_trainer``), both with one call; measured in
``benchmarks/memory_breakdown.py``.
"""

from __future__ import annotations

import ctypes
import types

#: Tile of the CPU LM head: tokens x vocabulary entries (float32: 1024 x 8192 x 4 B = 32 MB per temporary).
TOKEN_CHUNK = 1024
VOCAB_CHUNK = 8192


def token_log_probs(hidden, weight, bias, targets, temperature=1.0, outputs=("log_probs",),
                    token_chunk=TOKEN_CHUNK, vocab_chunk=VOCAB_CHUNK):
    """Per-token log-probs (and the optional fields of TRL's fused head) of ``hidden @ weight.T``, in small tiles.

    ``hidden`` is (N, H) for the N scored tokens only. Returns the five fields
    of ``trl.kernels.ChunkedLogProbFunction`` (log_probs, entropy,
    log_sum_sq_probs, mean_logits, is_top1), None where not asked for.
    """
    import torch
    from trl.kernels import ChunkedLogProbFunction

    parts = []
    for start in range(0, max(hidden.shape[0], 1), token_chunk):
        end = min(start + token_chunk, hidden.shape[0])
        parts.append(ChunkedLogProbFunction.apply(hidden[start:end], weight, bias, targets[start:end], temperature,
                                                  vocab_chunk, None, 1.0, tuple(outputs)))
    return tuple(None if p[0] is None else (p[0] if len(parts) == 1 else torch.cat(p)) for p in zip(*parts))


def score_labelled_tokens_only(trainer, outputs=None, token_chunk=TOKEN_CHUNK, vocab_chunk=VOCAB_CHUNK):
    """Make the trainer's fused LM head score only labelled positions, in small tiles (CPU only).

    TRL (SFTTrainer, GRPOTrainer) calls ``model(..., labels=..., fused_lm_head=True)``
    and reads ``log_probs``, ``entropy``, ``is_top1`` and ``label_mask``. This
    wraps TRL's forward: on a device with Triton, or for models with logit
    soft-capping or scaling, TRL's own path runs; on a CPU only the positions
    whose label is not -100 are projected through the LM head. ``outputs``: the
    fields to compute (default: what the trainer reads). Returns the trainer.
    """
    from trl.trainer.utils import FusedCausalLMOutput

    model = trainer.model.get_base_model() if hasattr(trainer.model, "get_base_model") else trainer.model
    text_config = model.config.get_text_config()
    if any(getattr(text_config, k, None) not in (None, 1.0) for k in
           ("final_logit_softcapping", "logit_scale", "output_multiplier", "lm_head_multiplier", "logits_scaling")):
        return trainer  # TRL's path handles those; the workbook's models have none
    is_grpo = hasattr(trainer, "num_generations")
    temperature = float(getattr(trainer, "temperature", 1.0)) if is_grpo else 1.0
    if outputs is None:
        outputs = ("log_probs", "entropy") if is_grpo else ("log_probs", "entropy", "is_top1")
    trl_forward = model.forward

    def forward(self, *args, fused_lm_head=False, labels=None, shift_labels=None, num_items_in_batch=None, **kwargs):
        if not fused_lm_head or self.device.type != "cpu" or kwargs.get("output_router_logits"):
            return trl_forward(*args, fused_lm_head=fused_lm_head, labels=labels, shift_labels=shift_labels,
                               num_items_in_batch=num_items_in_batch, **kwargs)
        kwargs["use_cache"] = False
        hidden = self.base_model(*args, **kwargs).last_hidden_state
        if shift_labels is None:
            hidden, labels = hidden[:, :-1], labels[:, 1:]
        else:
            labels = shift_labels
        mask = labels != -100
        head = self.get_output_embeddings()
        fields = token_log_probs(hidden[mask], head.weight, head.bias, labels[mask], temperature, outputs,
                                 token_chunk, vocab_chunk)
        log_probs, entropy, log_sum_sq_probs, mean_logits, is_top1 = (
            None if x is None else x.new_zeros(mask.shape).masked_scatter(mask, x) for x in fields)
        count = mask.sum().clamp(min=1) if num_items_in_batch is None else num_items_in_batch
        return FusedCausalLMOutput(loss=-log_probs.sum() / count, log_probs=log_probs, entropy=entropy,
                                   log_sum_sq_probs=log_sum_sq_probs, mean_logits=mean_logits, is_top1=is_top1,
                                   label_mask=mask)

    forward.trl_forward = trl_forward  # what it wraps (benchmarks/memory_breakdown.py measures both)
    model.forward = types.MethodType(forward, model)
    return trainer


def _mask_dropout_function():
    import torch

    class DropoutKeepingBits(torch.autograd.Function):
        """torch's CPU dropout (``input * noise``, noise = bernoulli(1 - p) / (1 - p)) keeping the mask as bool."""

        @staticmethod
        def forward(ctx, x, p):
            noise = torch.empty_like(x).bernoulli_(1 - p)  # the same draws as torch.nn.functional.dropout
            ctx.save_for_backward(noise.bool())
            ctx.p = p
            return x * noise.div_(1 - p)

        @staticmethod
        def backward(ctx, grad):
            (mask,) = ctx.saved_tensors
            return grad * mask.to(grad.dtype).div_(1 - ctx.p), None

    return DropoutKeepingBits


def keep_dropout_masks_as_bits(model) -> int:
    """Replace the LoRA dropout modules by ones that keep their masks as booleans; returns how many.

    The new modules are ``torch.nn.Dropout`` subclasses with the same ``p``, so
    checks for dropout still see them. On CPU, torch's dropout draws
    ``bernoulli(1 - p)`` into a float tensor and keeps it for the backward
    pass; these draw the same numbers from the same generator and keep one
    byte per element instead of four. Outputs and gradients are bit-identical
    (tests/test_memory.py). On other devices torch's own (fused) dropout runs.
    """
    import torch

    function = _mask_dropout_function()

    class DropoutKeepingBits(torch.nn.Dropout):
        def forward(self, x):
            if not self.training or self.p == 0 or x.device.type != "cpu" or not torch.is_grad_enabled():
                return super().forward(x)
            return function.apply(x, self.p)

    count = 0
    for module in model.modules():
        dropouts = getattr(module, "lora_dropout", None)
        if isinstance(dropouts, torch.nn.ModuleDict):
            for name, drop in dropouts.items():
                if type(drop) is torch.nn.Dropout and drop.p > 0 and not drop.inplace:
                    new = DropoutKeepingBits(drop.p)
                    new.train(drop.training)
                    dropouts[name] = new
                    count += 1
    return count


def split_rows(inputs: dict, max_tokens: int) -> list[tuple[dict, int]]:
    """A right-padded batch as consecutive row chunks of at most ``max_tokens`` tokens (rows x longest row).

    Each chunk keeps only the columns its own rows use. Returns (chunk, rows)
    pairs; a single row longer than ``max_tokens`` is a chunk of its own.

    >>> import torch
    >>> batch = {"input_ids": torch.tensor([[1, 2, 3], [4, 5, 0], [6, 0, 0]]),
    ...          "attention_mask": torch.tensor([[1, 1, 1], [1, 1, 0], [1, 0, 0]])}
    >>> [c["input_ids"].tolist() for c, _ in split_rows(batch, 4)]
    [[[1, 2, 3]], [[4, 5], [6, 0]]]
    """
    import torch

    lengths = inputs["attention_mask"].sum(dim=1).tolist()
    size = len(lengths)
    chunks, start = [], 0
    while start < size:
        end, longest = start + 1, lengths[start]
        while end < size and max(longest, lengths[end]) * (end + 1 - start) <= max_tokens:
            longest = max(longest, lengths[end])
            end += 1
        chunk = {}
        for key, value in inputs.items():
            if isinstance(value, torch.Tensor) and value.ndim >= 1 and value.shape[0] == size:
                value = value[start:end]
                if value.ndim >= 2 and value.shape[1] == inputs["attention_mask"].shape[1]:
                    value = value[:, :max(longest, 1)]
            chunk[key] = value
        chunks.append((chunk, end - start))
        start = end
    return chunks


def _merge_metrics(metrics: dict, before: dict, weights: list[float]) -> None:
    """Replace the per-chunk values appended to each metric list with one mean weighted by ``weights``."""
    for key, values in metrics.items():
        new = len(values) - before.get(key, 0)
        if new == len(weights) > 1 and all(isinstance(v, (int, float)) for v in values[-new:]):
            total = sum(weights) or 1.0
            merged = sum(v * w for v, w in zip(values[-new:], weights)) / total
            del values[-new:]
            values.append(merged)


def train_in_token_chunks(trainer, max_tokens: int):
    """Forward and backward each SFT batch in row chunks of at most ``max_tokens`` tokens (0: the whole batch).

    The batch's label count (``num_items_in_batch``, which TRL divides the summed
    token losses by) is passed to every chunk, so the chunks' gradients add up
    to the batch's. Padding-free batches (one flat row) are left whole. Returns the trainer.
    """
    if max_tokens <= 0:
        return trainer
    import torch

    whole_batch_step = trainer.training_step

    def training_step(self, model, inputs, num_items_in_batch=None):
        mask = inputs.get("attention_mask")
        if mask is None or mask.shape[0] < 2 or mask.shape[0] * mask.shape[1] <= max_tokens:
            return whole_batch_step(model, inputs, num_items_in_batch)
        if num_items_in_batch is None:  # TRL would divide each chunk by its own count: give it the batch's
            num_items_in_batch = (inputs["labels"][:, 1:] != -100).sum()
        metrics = self._metrics["train"]
        before = {k: len(v) for k, v in metrics.items()}
        losses, weights = [], []
        for chunk, _ in split_rows(inputs, max_tokens):
            losses.append(whole_batch_step(model, chunk, num_items_in_batch))
            weights.append(float((chunk["labels"][:, 1:] != -100).sum()))
        _merge_metrics(metrics, before, weights)
        return torch.stack(losses).sum()

    trainer.training_step = types.MethodType(training_step, trainer)
    return trainer


#: How each GRPO loss type scales with the rows of a chunk, so that the chunks' losses add up to the batch's:
#: "tokens" losses are divided by a count of the whole generation batch already; "rows" losses are a mean over
#: rows (weight: chunk rows / rows); "mask" losses a mean over the batch's completion tokens (weight: their share).
_GRPO_CHUNK_SCALE = {"dapo": "tokens", "cispo": "tokens", "vespo": "tokens", "grpo": "rows", "sapo": "rows",
                     "luspo": "rows", "dr_grpo": "rows", "bnpo": "mask"}


def _merge_grpo_metrics(metrics: dict, before: dict, weights: list[float]) -> None:
    """As ``_merge_metrics``, but the per-chunk minima and maxima of the clip ratios stay minima and maxima."""
    for key in [k for k in metrics if k.endswith(("_min", "_max"))]:
        values = metrics[key]
        new = len(values) - before.get(key, 0)
        if new == len(weights) > 1:
            merged = (min if key.endswith("_min") else max)(values[-new:])
            del values[-new:]
            values.append(merged)
    _merge_metrics(metrics, before, weights)


def grpo_loss_in_token_chunks(trainer, max_tokens: int):
    """Compute the GRPO loss and its backward pass in row chunks of at most ``max_tokens`` tokens (0: whole batch).

    Every chunk but the last is backpropagated at once; the last chunk's loss is
    returned, plus the others' values (detached), so the Trainer's backward pass
    and its logged loss see the batch. Each chunk's loss is weighted so that they
    add up to the batch's loss for every loss type in ``_GRPO_CHUNK_SCALE``; any
    other setting (an entropy bonus, MoE auxiliary losses) is left whole.
    Tensors that the loss stores on its input (the workbook keeps the first
    pass's log-probs there) are put back together on the batch. Returns the trainer.
    """
    if max_tokens <= 0:
        return trainer
    import torch

    whole_batch_loss = trainer._compute_loss

    def _compute_loss(self, model, inputs):
        rows = inputs["completion_ids"].shape[0]
        width = inputs["prompt_ids"].shape[1] + inputs["completion_ids"].shape[1]
        scale = _GRPO_CHUNK_SCALE.get(self.loss_type)
        if (not self.model.training or rows < 2 or rows * width <= max_tokens or scale is None
                or getattr(self, "_entropy_bonus_enabled", False) or getattr(self, "aux_loss_enabled", False)):
            return whole_batch_loss(model, inputs)
        per_chunk = max(1, max_tokens // width)
        metrics = self._metrics["train"]
        before = {k: len(v) for k, v in metrics.items()}
        tokens = float(inputs["completion_mask"].sum().clamp(min=1))
        done, weights, chunks, loss = None, [], [], None
        for start in range(0, rows, per_chunk):
            chunk = {k: v[start:start + per_chunk] if isinstance(v, torch.Tensor) and v.ndim >= 1 and v.shape[0] == rows
                     else v for k, v in inputs.items()}
            chunk_rows, chunk_tokens = chunk["completion_ids"].shape[0], float(chunk["completion_mask"].sum())
            weight = {"tokens": 1.0, "rows": chunk_rows / rows, "mask": chunk_tokens / tokens}[scale]
            loss = whole_batch_loss(model, chunk) * weight
            chunks.append(chunk)
            weights.append(chunk_tokens)
            if start + per_chunk < rows:
                self.accelerator.backward(loss)
                done = loss.detach() if done is None else done + loss.detach()
        for key in set(chunks[0]) - set(inputs):  # e.g. old_per_token_logps kept from the first pass
            inputs[key] = torch.cat([c[key] for c in chunks])
        _merge_grpo_metrics(metrics, before, weights)
        return loss + done

    trainer._compute_loss = types.MethodType(_compute_loss, trainer)
    return trainer


def apply_memory_savers(trainer, max_tokens_per_pass: int):
    """All savers on a TRL SFTTrainer or GRPOTrainer: the one call helpers.sft and helpers.grpo make."""
    score_labelled_tokens_only(trainer)
    keep_dropout_masks_as_bits(trainer.model)
    if hasattr(trainer, "num_generations"):
        return grpo_loss_in_token_chunks(trainer, max_tokens_per_pass)
    return train_in_token_chunks(trainer, max_tokens_per_pass)


#: glibc's ``mallopt`` parameter for the mmap threshold (``M_MMAP_THRESHOLD`` in malloc.h).
_M_MMAP_THRESHOLD = -3


def fix_mmap_threshold(kib: int) -> bool:
    """Have glibc give every block of ``kib`` KiB or more its own mmap, which goes back to the system when freed.

    Why: glibc raises its mmap threshold each time such a block is freed (up to 32 MB), so after the first
    steps most of a step's tensors come from the heap, and pages freed there stay with the process: RSS creeps
    up over a run. Fixed at 128 KiB, GRPO ``low_memory`` on the 2-core CPU peaked at 1.49 GB instead of 1.89 GB
    over a 12-minute run of the same samples, about 18% slower (more page faults; 2026-12-03,
    benchmarks/RESULTS.md), which is why only that preset sets it. The arithmetic is untouched. Process-wide and for the rest of the process
    (a notebook's kernel too). Returns whether it was applied: glibc only (0 asks for nothing).
    Called by helpers.training.run_training with ``settings.mmap_threshold_kib``.
    """
    if not kib:
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, musl): nothing to set
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, int(kib) * 1024))
