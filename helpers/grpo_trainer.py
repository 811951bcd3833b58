"""The workbook's GRPO trainer: TRL's GRPOTrainer with savings for a small CPU, written against TRL 1.16.0.

Why this module exists: on a 2-core CPU a GRPO step is mostly sampling and the training passes over
the samples, and most samples of a small model's groups teach nothing (every sample of the group got
the same reward). The subclass below skips that work without changing the policy gradient. It
depends on TRL internals, so each one is named here, and tests/test_grpo_trainer.py pins the TRL
version: an upgrade fails there, loudly, instead of changing training silently.

TRL methods overridden or called, and why:

- ``GRPOTrainer._generate_single_turn`` (overridden): the LoRA adapter is merged into the weights
  while sampling (``merge_adapter`` / ``unmerge_adapter``). Unmerged, every forward pass during
  generation runs seven extra low-rank matmuls per layer; merged, the model is a plain dense model
  (sampling ~1.2x faster on CPU). Only in float32 (a bf16 merge and unmerge rounds the base weights),
  not with 4/8-bit weights, vLLM or several processes. With continuous batching
  (``use_transformers_continuous_batching``) TRL casts the model to bf16 for sampling; the adapter's
  float32 tensors are put back afterwards.
- ``GRPOTrainer._generate_and_score_completions`` also checks that this process's rows are whole
  groups (TRL's ``RepeatSampler`` repeats each prompt ``num_generations`` times in a row), and under
  ``accelerate launch`` gathers what it counts (``self.accelerator.gather``) so that the zero-spread
  share, ``trained_fraction`` and the down-sampled loss normaliser cover every process, as TRL's own do,
  and keeps as many rows on every process (``GRPOTrainer._compute_loss`` gathers per-row clip ratios).
- ``GRPOTrainer._generate_and_score_completions`` (overridden, calls TRL's first): with ``beta``
  set to 0 for the call, TRL skips its reference pass; afterwards this trainer
  1. corrects TRL's ``frac_reward_zero_std`` metric (TRL's ``isclose(std, 0)`` misses groups whose
     weighted rewards differ only by rounding; counted by their advantages instead),
  2. keeps, with ``train_samples_per_group``, only the samples of each group whose rewards vary most
     (``keep_max_variance_samples``),
  3. drops the samples whose advantage is 0 (``drop_uninformative_rows``; the training passes are most
     of a CPU step), and
  4. computes the KL reference log-probs for the kept samples only (``_reference_log_probs``).
- ``GRPOTrainer._get_per_token_logps_and_entropies`` (called) for those reference log-probs, with
  ``trl.trainer.utils.use_adapter`` (the reference is the model with the GRPO adapter off) and
  ``trl.models.utils.disable_gradient_checkpointing``, exactly as TRL computes its own.
- ``self._metrics["train"]`` (written): the corrected zero-spread share and ``trained_fraction``.

Used by helpers.grpo (04_grpo_train, ``python -m helpers.grpo``).
"""

from __future__ import annotations

from trl import GRPOTrainer
from trl.models.utils import disable_gradient_checkpointing

#: The TRL version this trainer was written and tested against (tests/test_grpo_trainer.py checks it).
TRL_VERSION = "1.16.0"

#: Advantages smaller than this are float rounding, not signal: TRL scales a group's rewards by (std + 1e-4),
#: so a group whose weighted rewards differ only in the last bits (std ~1e-8) gets advantages of ~1e-4, while
#: any real difference (0.1 of the smallest reward weight) gives advantages of ~0.3 or more.
ADVANTAGE_TOLERANCE = 1e-2


def informative_rows(batch: dict):
    """Which samples can change the policy: a non-zero advantage and at least one unmasked completion token."""
    advantages, completion_mask = batch["advantages"], batch["completion_mask"]
    informative = completion_mask.sum(dim=1) > 0
    return informative & (advantages.abs() >= ADVANTAGE_TOLERANCE).reshape(len(advantages), -1).any(dim=1)


def drop_uninformative_rows(batch: dict, min_rows: int = 1) -> dict:
    """The generation batch without the samples that cannot change the policy, and with less padding.

    A sample whose advantage is 0 (every sample of its group got the same reward;
    below ``ADVANTAGE_TOLERANCE``) adds nothing to the clipped policy-gradient term, and a truncated
    sample whose tokens are all masked adds nothing at all; on a 2-core CPU each
    still costs two forward and backward passes. They are dropped before
    training, and the columns that are padding in every kept row are cut.
    ``num_items_in_batch`` (the DAPO loss normaliser) keeps its value, so the
    policy-gradient part of the loss is exactly what it was; what is lost is
    only the KL penalty on the dropped samples. At least ``min_rows`` rows are kept
    (uninformative ones fill up, in order): under several processes every process
    keeps as many rows as the one with the most, because TRL gathers per-row metrics
    in its loss and a gather of unequal sizes aborts gloo and NCCL.

    >>> import torch
    >>> b = {"prompt_ids": torch.tensor([[0, 5], [6, 7]]), "prompt_mask": torch.tensor([[0, 1], [1, 1]]),
    ...      "completion_ids": torch.tensor([[8, 0], [9, 9]]), "completion_mask": torch.tensor([[1, 0], [1, 1]]),
    ...      "advantages": torch.tensor([0.5, 0.0]), "num_items_in_batch": torch.tensor(3)}
    >>> out = drop_uninformative_rows(b)
    >>> out["prompt_ids"].tolist(), out["completion_ids"].tolist(), int(out["num_items_in_batch"])
    ([[5]], [[8]], 3)
    """
    import torch

    advantages = batch["advantages"]
    informative = informative_rows(batch)
    missing = min(min_rows, len(advantages)) - int(informative.sum())
    if missing > 0:
        informative[(~informative).nonzero().squeeze(1)[:missing]] = True
    rows = informative.nonzero().squeeze(1)
    size = len(advantages)
    out = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor) and value.ndim >= 1 and value.shape[0] == size:
            out[key] = value[rows]
        elif isinstance(value, list) and len(value) == size:
            out[key] = [value[i] for i in rows.tolist()]
        else:
            out[key] = value
    used = out["completion_mask"].sum(dim=0).nonzero()
    keep_completion = int(used.max()) + 1 if len(used) else 1
    first_prompt = int(out["prompt_mask"].sum(dim=0).nonzero().min())
    prompt_len, completion_len = out["prompt_ids"].shape[1], out["completion_ids"].shape[1]
    for key, value in out.items():
        if not isinstance(value, torch.Tensor) or value.ndim < 2:
            continue
        if key.startswith("prompt_") and value.shape[1] == prompt_len:
            out[key] = value[:, first_prompt:]
        elif value.shape[1] == completion_len and not key.startswith("prompt_"):
            out[key] = value[:, :keep_completion]
    return out


def keep_max_variance_samples(batch: dict, group_size: int, keep: int) -> dict:
    """Per group, only the ``keep`` samples whose rewards vary most are trained on; the rest get advantage 0.

    Sampling is cheap on a CPU and the training passes are not, so a group is
    sampled wide (``group_size``) and trained narrow (``keep``): the highest- and
    lowest-scored samples, split where their variance is largest (the rule of
    Xu et al. 2025, "Not All Rollouts are Useful", PODS). Their advantages are
    re-centred on the kept samples' mean, and ``num_items_in_batch`` becomes the
    kept samples' token count, as if only they had been drawn. The zeroed rows
    are then dropped by ``drop_uninformative_rows``.

    >>> import torch
    >>> b = {"advantages": torch.tensor([1.0, 0.25, -0.25, -1.0]), "completion_mask": torch.ones(4, 3),
    ...      "num_items_in_batch": torch.tensor(12)}
    >>> out = keep_max_variance_samples(b, group_size=4, keep=2)
    >>> out["advantages"].tolist(), int(out["num_items_in_batch"])
    ([1.0, 0.0, 0.0, -1.0], 6)
    """
    import torch

    advantages = batch["advantages"]
    if keep >= group_size or advantages.ndim != 1 or len(advantages) % group_size:
        return batch
    groups = advantages.reshape(-1, group_size)
    order = groups.argsort(dim=1, descending=True)
    new = torch.zeros_like(groups)
    kept = torch.zeros_like(groups, dtype=torch.bool)
    for g in range(len(groups)):
        values = groups[g, order[g]]
        best, best_var = 0, -1.0
        for top in range(keep + 1):  # the top `top` samples and the bottom `keep - top`
            chosen = torch.cat([values[:top], values[group_size - (keep - top):]])
            var = float(chosen.var(unbiased=False))
            if var > best_var + 1e-12:
                best, best_var = top, var
        idx = torch.cat([order[g, :best], order[g, group_size - (keep - best):]])
        kept[g, idx] = True
        new[g, idx] = groups[g, idx] - groups[g, idx].mean()
    out = dict(batch)
    out["advantages"] = new.reshape(-1)
    if "num_items_in_batch" in batch:
        tokens = batch["completion_mask"][kept.reshape(-1)].sum()
        out["num_items_in_batch"] = torch.as_tensor(tokens, dtype=torch.as_tensor(batch["num_items_in_batch"]).dtype)
    return out



class WorkbookGRPOTrainer(GRPOTrainer):
    """TRL's GRPOTrainer with the savings listed in the module docstring; the policy gradient is TRL's."""

    skip_uninformative_rows = True
    reference_after_dropping = True
    train_samples_per_group = 0  # 0: every sample; else max-variance down-sampling (keep_max_variance_samples)

    def _generate_single_turn(self, *args, **kwargs):
        model = self.model
        if self.use_transformers_continuous_batching:
            # TRL casts the whole model to bf16 for continuous batching (``unwrapped_model.to(torch.bfloat16)``),
            # the float32 LoRA weights included, and never back (measured on CPU with TRL 1.16): the adapter
            # would then train in bf16. Their float32 tensors are kept here and put back afterwards.
            kept = [(p, p.data) for p in model.parameters() if p.requires_grad]
            try:
                return super()._generate_single_turn(*args, **kwargs)
            finally:
                for param, data in kept:
                    param.data = data
        if not self._can_merge_for_sampling():
            return super()._generate_single_turn(*args, **kwargs)
        model.merge_adapter()
        try:
            return super()._generate_single_turn(*args, **kwargs)
        finally:
            model.unmerge_adapter()

    def _can_merge_for_sampling(self) -> bool:
        """Merging the adapter for sampling is exact only in float32: W + BA - BA rounds in bf16, and over
        hundreds of steps the base weights (the KL reference too) drift (huggingface/trl#6688). Not with
        4/8-bit weights, with vLLM (which syncs its own copy) or with several processes."""
        import torch

        model = self.model
        if not hasattr(model, "merge_adapter") or getattr(model, "is_loaded_in_4bit", False) \
                or getattr(model, "is_loaded_in_8bit", False) or self.use_vllm or self.accelerator.num_processes > 1:
            return False
        base = next((p for n, p in model.named_parameters() if "base_layer" in n), None)
        return base is not None and base.dtype == torch.float32

    def _check_whole_groups(self, inputs) -> None:
        """This process's rows must be whole groups: each prompt ``num_generations`` times in a row.

        TRL's RepeatSampler yields every prompt ``num_generations`` times in a row and each process takes
        whole per-device batches, so with ``per_device_train_batch_size`` a multiple of ``num_generations``
        (helpers.grpo checks it) no group is split across processes. The workbook's group-wise steps below
        (zero-spread count, max-variance down-sampling) read groups from this process's rows, so a split
        group would be wrong silently; it stops here instead.
        """
        size = self.num_generations
        keys = [str(row.get("prompt")) if isinstance(row, dict) else str(row) for row in inputs]
        if len(keys) % size or any(len(set(keys[i:i + size])) != 1 for i in range(0, len(keys), size)):
            raise RuntimeError(f"process {self.accelerator.process_index} got {len(keys)} rows that are not whole "
                               f"groups of {size} samples of one prompt; keep batch_size a multiple of "
                               "num_generations")

    def _generate_and_score_completions(self, inputs):
        # The reference log-probs (for the KL term) are computed here after the uninformative samples are
        # dropped, not by TRL before it knows the advantages: one forward pass over the kept rows only.
        late_reference = self.reference_after_dropping and self.beta != 0.0 and self.model.training
        if self.model.training:
            self._check_whole_groups(inputs)
        beta = self.beta
        if late_reference:
            self.beta = 0.0  # TRL then skips its reference pass
        try:
            batch = super()._generate_and_score_completions(inputs)
        finally:
            self.beta = beta
        if self.model.training:
            # TRL counts a group as all-equal with isclose(std, 0, atol=1e-8), which misses groups whose
            # weighted rewards differ only by rounding; count them by their advantages instead.
            adv = batch["advantages"].reshape(len(batch["advantages"]), -1).abs().amax(dim=1)
            adv = self.accelerator.gather(adv)  # every process's groups, as TRL's own count
            zero = self._metrics["train"].get("frac_reward_zero_std")
            if zero and len(adv) % self.num_generations == 0:
                groups = adv.reshape(-1, self.num_generations).amax(dim=1) < ADVANTAGE_TOLERANCE
                zero[-1] = groups.float().mean().item()
        if self.model.training and 0 < self.train_samples_per_group < self.num_generations:
            # Zeroes the advantages of the samples not chosen; valid however the batch is sliced later.
            batch = keep_max_variance_samples(batch, self.num_generations, self.train_samples_per_group)
            if self.accelerator.num_processes > 1:  # TRL's normaliser counts the tokens of every process
                batch["num_items_in_batch"] = self.accelerator.gather(
                    batch["num_items_in_batch"].reshape(1).to(self.accelerator.device)).sum()
        # Only when the whole generation batch is one training batch (one slice per generation).
        if self.skip_uninformative_rows and self.model.training and self.args.steps_per_generation == 1:
            import torch

            before, min_rows = len(batch["advantages"]), 1
            if self.accelerator.num_processes > 1:  # as many rows on every process (see drop_uninformative_rows)
                kept = informative_rows(batch).sum().reshape(1).to(self.accelerator.device)
                min_rows = max(1, int(self.accelerator.gather(kept).max()))
            batch = drop_uninformative_rows(batch, min_rows)
            counts = self.accelerator.gather(torch.tensor([[len(batch["advantages"]), before]],
                                                          device=self.accelerator.device)).sum(dim=0)
            self._metrics["train"]["trained_fraction"].append(float(counts[0] / counts[1]))
        if late_reference:
            batch["ref_per_token_logps"] = self._reference_log_probs(batch)
        return batch

    def _reference_log_probs(self, batch):
        """The reference policy's per-token log-probs of the batch's completions, as TRL computes them."""
        import torch
        from trl.trainer.utils import use_adapter

        ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
        mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
        keep = batch["completion_ids"].size(1)
        size = self.args.per_device_train_batch_size
        with torch.no_grad(), disable_gradient_checkpointing(self.model, self.args.gradient_checkpointing_kwargs):
            if self.ref_model is not None:
                return self._get_per_token_logps_and_entropies(self.ref_model, ids, mask, keep, batch_size=size)[0]
            model = self.accelerator.unwrap_model(self.model)
            with use_adapter(model, adapter_name="ref" if "ref" in model.peft_config else None):
                return self._get_per_token_logps_and_entropies(self.model, ids, mask, keep, batch_size=size)[0]
