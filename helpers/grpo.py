"""GRPO with LoRA on TRL's GRPOTrainer, from the base model or on purpose from an SFT adapter.

Why this module exists: TRL runs the algorithm; this module makes the choices
that decide whether GRPO teaches anything on a small model:

- ``from_sft`` folds the SFT adapter into the weights first, then trains a new
  LoRA on top. With the GRPO adapter switched off the model *is* the SFT policy,
  so TRL's KL reference (adapter disabled) is the SFT policy, not the raw base.
  At the end both adapters are merged into one adapter of summed rank, which
  loads onto the plain base with ``PeftModel.from_pretrained(base, path)``.
- prompts are the same single user message as in SFT and evaluation, and the
  rewards are the evaluation scorers (helpers.rewards);
- a group of samples per prompt (8 at temperature 0.7 on CPU), truncated
  completions masked out of the loss, samples with a zero advantage skipped
  before the backward pass, and a log that shows how many groups had any
  reward spread (zero spread teaches nothing) next to reward, KL, loss and length;
- sampling on a GPU in bf16 keeps the LM head in float32 and drops invalid
  logits, the fix for the device-side assert seen with TRL's plain recipe.

Used in 04_grpo_train and by ``python -m helpers.grpo``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from helpers import config as cfg
from helpers.answers import chat_messages
from helpers.export import write_model_card
from helpers.runs import RunPaths, TrainingLog, check_output_path, finish_run, latest_run, output_root, start_run

LOG_COLUMNS = ["step", "reward", "reward_std", "correctness", "format", "similarity", "length", "arithmetic",
               "frac_zero_std", "kl", "loss", "completion_length", "clipped_ratio", "entropy", "trained_fraction",
               "step_time", "elapsed_s"]
_METRIC_MAP = {
    "reward": "reward", "reward_std": "reward_std", "frac_zero_std": "frac_reward_zero_std", "kl": "kl",
    "loss": "loss", "completion_length": "completions/mean_length", "clipped_ratio": "completions/clipped_ratio",
    "entropy": "entropy", "trained_fraction": "trained_fraction", "step_time": "step_time",
    "correctness": "rewards/correctness/mean", "format": "rewards/format/mean",
    "similarity": "rewards/similarity/mean", "length": "rewards/length/mean", "arithmetic": "rewards/arithmetic/mean",
}


@dataclass
class GRPOResult:
    status: str
    run: RunPaths | None
    plan: dict
    log_rows: list[dict] = field(default_factory=list)
    samples: list[dict] = field(default_factory=list)
    reason: str | None = None

    @property
    def final_model(self) -> Path | None:
        return self.run.final_model if self.run and self.run.final_model.is_dir() else None


def to_prompt_row(row: dict) -> dict:
    """A QA row as a GRPO prompt; ``final_answer`` and ``answer`` travel along for the rewards."""
    return {"prompt": chat_messages(row["question"]), "final_answer": row.get("final_answer") or None,
            "answer": row["answer"], "family": row.get("family") or row.get("topic") or "other"}


def resolve_sft_model(sft_model: str | None) -> Path:
    """An SFT adapter folder: the one given, or the newest completed SFT run's final_model."""
    if sft_model:
        path = Path(sft_model)
        if path.is_dir() and (path / "final_model").is_dir():
            path = path / "final_model"
        if not (path / "adapter_config.json").is_file():
            raise FileNotFoundError(f"sft_model: {sft_model} is not an SFT final_model folder (no adapter_config.json)")
        return path
    return latest_run("sft") / "final_model"


def load_policy(settings: cfg.GRPOSettings, sft_adapter: Path | None):
    """The model GRPO starts from: the base, or the base with the SFT adapter folded in.

    Returns (model, tokenizer, sft_lora) where ``sft_lora`` holds the SFT
    adapter's weights and config for the final merge (None from the base).
    """
    from helpers.models import load_adapter, load_base_model, load_tokenizer

    model = load_base_model(settings.model_name, dtype=settings.dtype, load_in_4bit=settings.load_in_4bit,
                            attn_implementation=settings.attn_implementation)
    tokenizer = load_tokenizer(str(sft_adapter) if sft_adapter else settings.model_name)
    if sft_adapter is None:
        return model, tokenizer, None
    if settings.load_in_4bit:
        raise ValueError("from_sft with 4-bit weights: merging the SFT adapter into 4-bit weights is lossy; "
                         "use dtype bfloat16 without load_in_4bit, or train GRPO from the base")
    peft_model = load_adapter(model, sft_adapter)
    sft_lora = read_lora(peft_model)
    merged = peft_model.merge_and_unload()
    return merged, tokenizer, sft_lora


def read_lora(peft_model) -> dict:
    """The LoRA A/B matrices and scalings of a PEFT model's active adapter, keyed by module name."""
    adapter = peft_model.active_adapter
    config = peft_model.peft_config[adapter]
    layers = {}
    for name, module in peft_model.named_modules():
        if hasattr(module, "lora_A") and adapter in getattr(module, "lora_A", {}):
            key = name.replace("base_model.model.", "", 1)
            layers[key] = {
                "A": module.lora_A[adapter].weight.detach().float().cpu().clone(),
                "B": module.lora_B[adapter].weight.detach().float().cpu().clone(),
                "scaling": float(module.scaling[adapter]),
            }
    return {"config": config, "layers": layers}


def merge_lora_adapters(first: dict, second: dict) -> dict:
    """One LoRA equal to the sum of two: A stacked, B side by side, each B pre-scaled.

    W + s1·B1A1 + s2·B2A2 = W + [s1·B1 | s2·B2]·[A1; A2] with scaling 1 (alpha = rank).
    A module adapted by only one of the two gets zeros for the other's part.
    """
    import torch

    merged = {}
    for key in sorted(set(first["layers"]) | set(second["layers"])):
        parts_a, parts_b = [], []
        for lora in (first, second):
            layer = lora["layers"].get(key)
            other = (first if lora is second else second)["layers"][key]
            if layer is None:
                r = lora["config"].r
                parts_a.append(torch.zeros(r, other["A"].shape[1]))
                parts_b.append(torch.zeros(other["B"].shape[0], r))
            else:
                parts_a.append(layer["A"])
                parts_b.append(layer["B"] * layer["scaling"])
        merged[key] = {"A": torch.cat(parts_a, dim=0), "B": torch.cat(parts_b, dim=1)}
    return merged


def save_merged_adapter(first: dict, second: dict, base_name: str, tokenizer, out_dir: Path) -> Path:
    """Write the summed-rank adapter as a normal PEFT ``final_model/`` (safetensors + config + tokenizer)."""
    from safetensors.torch import save_file

    merged = merge_lora_adapters(first, second)
    rank = first["config"].r + second["config"].r
    modules = sorted({k.rsplit(".", 1)[-1] for k in merged})
    tensors = {}
    for key, ab in merged.items():
        tensors[f"base_model.model.{key}.lora_A.weight"] = ab["A"].contiguous()
        tensors[f"base_model.model.{key}.lora_B.weight"] = ab["B"].contiguous()
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        save_file(tensors, str(tmp / "adapter_model.safetensors"), metadata={"format": "pt"})
        config = second["config"].to_dict()
        config.update(r=rank, lora_alpha=rank, lora_dropout=0.0, target_modules=modules,
                      base_model_name_or_path=base_name, rank_pattern={}, alpha_pattern={})
        for key, value in list(config.items()):
            if isinstance(value, set):
                config[key] = sorted(value)
        (tmp / "adapter_config.json").write_text(json.dumps(config, indent=1, default=str))
        tokenizer.save_pretrained(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # no half-written model left behind
        raise
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    return out_dir


class SampleRecorder:
    """Keeps the latest prompts, completions and per-reward scores, for the sample table."""

    def __init__(self):
        self.latest: dict = {}

    def wrap(self, fn):
        def recorded(completions, prompts=None, **kwargs):
            scores = fn(completions, prompts=prompts, **kwargs)
            self.latest[fn.__name__] = scores
            self.latest["completions"] = completions
            self.latest["prompts"] = prompts
            return scores

        recorded.__name__ = fn.__name__
        return recorded

    def table(self, step: int, limit: int = 8) -> list[dict]:
        from helpers.rewards import completion_text

        completions = self.latest.get("completions") or []
        prompts = self.latest.get("prompts") or [None] * len(completions)
        names = [k for k in self.latest if k not in ("completions", "prompts")]
        rows = []
        for i, completion in enumerate(completions[:limit]):
            prompt = prompts[i]
            question = prompt[-1]["content"] if isinstance(prompt, list) else str(prompt)
            row = {"step": step, "question": question[:120], "completion": completion_text(completion)[:400]}
            for name in names:
                value = self.latest[name][i]
                row[name] = None if value is None else round(float(value), 3)
            rows.append(row)
        return rows


def reuses_first_pass_log_probs(trainer) -> bool:
    """Whether the old-policy log-probs can come from the first training pass instead of an extra forward pass.

    With ``num_iterations`` > 1, TRL runs one more no-grad forward pass over every
    generation batch to record the policy's log-probs before any update (the
    "old" policy of the clipped ratio). When each batch is first trained on
    inside the optimizer step that follows its generation (``steps_per_generation
    == gradient_accumulation_steps``, TRL's default) and nothing is random in the
    forward pass (no dropout), the first training pass computes exactly those
    log-probs. Keeping them saves a forward pass per generation batch.
    """
    import torch

    if trainer.num_iterations <= 1 or getattr(trainer, "use_vllm", False):
        return False
    if trainer.args.steps_per_generation != trainer.args.gradient_accumulation_steps:
        return False
    return not any(isinstance(m, torch.nn.Dropout) and m.p > 0 for m in trainer.model.modules())


#: Advantages smaller than this are float rounding, not signal: TRL scales a group's rewards by (std + 1e-4),
#: so a group whose weighted rewards differ only in the last bits (std ~1e-8) gets advantages of ~1e-4, while
#: any real difference (0.1 of the smallest reward weight) gives advantages of ~0.3 or more.
ADVANTAGE_TOLERANCE = 1e-2


def drop_uninformative_rows(batch: dict) -> dict:
    """The generation batch without the samples that cannot change the policy, and with less padding.

    A sample whose advantage is 0 (every sample of its group got the same reward;
    below ``ADVANTAGE_TOLERANCE``) adds nothing to the clipped policy-gradient term, and a truncated
    sample whose tokens are all masked adds nothing at all; on a 2-core CPU each
    still costs two forward and backward passes. They are dropped before
    training, and the columns that are padding in every kept row are cut.
    ``num_items_in_batch`` (the DAPO loss normaliser) keeps its value, so the
    policy-gradient part of the loss is exactly what it was; what is lost is
    only the KL penalty on the dropped samples. At least one row is kept.

    >>> import torch
    >>> b = {"prompt_ids": torch.tensor([[0, 5], [6, 7]]), "prompt_mask": torch.tensor([[0, 1], [1, 1]]),
    ...      "completion_ids": torch.tensor([[8, 0], [9, 9]]), "completion_mask": torch.tensor([[1, 0], [1, 1]]),
    ...      "advantages": torch.tensor([0.5, 0.0]), "num_items_in_batch": torch.tensor(3)}
    >>> out = drop_uninformative_rows(b)
    >>> out["prompt_ids"].tolist(), out["completion_ids"].tolist(), int(out["num_items_in_batch"])
    ([[5]], [[8]], 3)
    """
    import torch

    advantages, completion_mask = batch["advantages"], batch["completion_mask"]
    informative = completion_mask.sum(dim=1) > 0
    informative &= (advantages.abs() >= ADVANTAGE_TOLERANCE).reshape(len(advantages), -1).any(dim=1)
    if not informative.any():
        informative[0] = True
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


def _grpo_trainer_class():
    """TRL's GRPOTrainer with four savings that leave the policy gradient as it was, and one that trains less.

    - The LoRA adapter is merged into the weights while sampling. Unmerged,
      every forward pass during generation runs seven extra low-rank matmuls
      per layer; merged, the model is a plain dense model again (sampling
      ~1.2x faster on CPU). The adapter is unmerged right after.
    - With ``num_iterations`` > 1 the old-policy log-probs are kept from the
      first training pass over a batch instead of an extra forward pass
      (see ``reuses_first_pass_log_probs``).
    - Samples with a zero advantage are dropped before the training passes,
      which are most of a CPU step (see ``drop_uninformative_rows``).
    - The KL reference log-probs are computed after that, for the kept samples
      only, instead of by TRL for every sample before the advantages are known.
    - With ``train_samples_per_group`` set, only that many samples of each group
      are trained on, those whose rewards vary most (``keep_max_variance_samples``).
    It also corrects TRL's count of all-equal groups (``frac_reward_zero_std``).
    """
    from trl import GRPOTrainer
    from trl.models.utils import disable_gradient_checkpointing

    class WorkbookGRPOTrainer(GRPOTrainer):
        def _generate_single_turn(self, *args, **kwargs):
            model = self.model
            can_merge = hasattr(model, "merge_adapter") and not getattr(model, "is_loaded_in_4bit", False) \
                and not getattr(model, "is_loaded_in_8bit", False) and self.accelerator.num_processes == 1
            if not can_merge:
                return super()._generate_single_turn(*args, **kwargs)
            model.merge_adapter()
            try:
                return super()._generate_single_turn(*args, **kwargs)
            finally:
                model.unmerge_adapter()

        skip_uninformative_rows = True
        reference_after_dropping = True
        train_samples_per_group = 0  # 0: every sample; else max-variance down-sampling (keep_max_variance_samples)

        def _generate_and_score_completions(self, inputs):
            # The reference log-probs (for the KL term) are computed here after the uninformative samples are
            # dropped, not by TRL before it knows the advantages: one forward pass over the kept rows only.
            late_reference = self.reference_after_dropping and self.beta != 0.0 and self.model.training
            beta, iterations = self.beta, self.num_iterations
            if late_reference:
                self.beta = 0.0  # TRL then skips its reference pass
            if reuses_first_pass_log_probs(self):
                self.num_iterations = 1  # TRL then skips the old-log-prob pass
            try:
                batch = super()._generate_and_score_completions(inputs)
            finally:
                self.beta, self.num_iterations = beta, iterations
            if self.model.training:
                # TRL counts a group as all-equal with isclose(std, 0, atol=1e-8), which misses groups whose
                # weighted rewards differ only by rounding; count them by their advantages instead.
                adv = batch["advantages"].reshape(len(batch["advantages"]), -1).abs().amax(dim=1)
                zero = self._metrics["train"].get("frac_reward_zero_std")
                if zero and len(adv) % self.num_generations == 0:
                    groups = adv.reshape(-1, self.num_generations).amax(dim=1) < ADVANTAGE_TOLERANCE
                    zero[-1] = groups.float().mean().item()
            if self.model.training and 0 < self.train_samples_per_group < self.num_generations:
                # Zeroes the advantages of the samples not chosen; valid however the batch is sliced later.
                batch = keep_max_variance_samples(batch, self.num_generations, self.train_samples_per_group)
            # Only when the whole generation batch is one training batch (one slice per generation).
            if self.skip_uninformative_rows and self.model.training and self.args.steps_per_generation == 1:
                before = len(batch["advantages"])
                batch = drop_uninformative_rows(batch)
                self._metrics["train"]["trained_fraction"].append(len(batch["advantages"]) / before)
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

        def _compute_loss(self, model, inputs):
            if inputs.get("old_per_token_logps") is not None or not reuses_first_pass_log_probs(self):
                return super()._compute_loss(model, inputs)
            kept = []
            compute = self._get_per_token_logps_and_entropies

            def keep_first(*args, **kwargs):
                out = compute(*args, **kwargs)
                if not kept:
                    kept.append(out[0].detach())
                return out

            self._get_per_token_logps_and_entropies = keep_first
            try:
                loss = super()._compute_loss(model, inputs)
            finally:
                del self._get_per_token_logps_and_entropies
            inputs["old_per_token_logps"] = kept[0]  # the buffered batch: later passes read it from here
            return loss

    return WorkbookGRPOTrainer


def build_grpo_trainer(settings: cfg.GRPOSettings, model, tokenizer, train_rows, output_dir, callbacks=(),
                       recorder: SampleRecorder | None = None, lora_target_modules=None):
    """TRL's GRPOTrainer with LoRA, the workbook's rewards and device-aware numerics."""
    from datasets import Dataset
    from trl import GRPOConfig

    from helpers.rewards import reward_functions
    from helpers.sft import lora_config, trainer_arguments

    weights = dict(settings.reward_weights)
    funcs, ws = reward_functions(weights, settings.max_new_tokens)
    if recorder is not None:
        funcs = [recorder.wrap(f) for f in funcs]
    if settings.batch_size % settings.num_generations:
        raise ValueError(f"batch_size: must be a multiple of num_generations ({settings.num_generations}), "
                         f"got {settings.batch_size}")
    gpu_bf16 = settings.device == "cuda" and settings.dtype != "float32"
    args = GRPOConfig(
        output_dir=str(output_dir),
        num_generations=settings.num_generations,
        max_completion_length=settings.max_new_tokens,
        temperature=settings.temperature,
        top_p=settings.top_p,
        beta=settings.beta,
        epsilon=settings.epsilon,
        num_iterations=settings.num_iterations,
        loss_type=settings.loss_type,
        scale_rewards=settings.scale_rewards,
        mask_truncated_completions=settings.mask_truncated_completions,
        reward_weights=ws,
        cast_lm_head_to_fp32=gpu_bf16,
        generation_kwargs={"remove_invalid_values": True} if gpu_bf16 else None,
        log_completions=False,
        **trainer_arguments(settings),
    )
    peft = lora_config(settings)
    if lora_target_modules:
        peft.target_modules = set(lora_target_modules)
    dataset = Dataset.from_list([to_prompt_row(r) for r in train_rows])
    trainer_class = _grpo_trainer_class() if settings.merge_for_sampling else __import__("trl").GRPOTrainer
    trainer = trainer_class(model=model, reward_funcs=funcs, args=args, train_dataset=dataset,
                            processing_class=tokenizer, peft_config=peft, callbacks=list(callbacks))
    trainer.skip_uninformative_rows = settings.skip_uninformative
    if hasattr(trainer, "train_samples_per_group"):
        trainer.train_samples_per_group = settings.train_samples_per_group
    return trainer


def _zero_spread_callback(log: TrainingLog | None, patience: int, warnings_out: list):
    from transformers import TrainerCallback

    class ZeroSpreadWarning(TrainerCallback):
        """Warns when every group had the same reward for ``patience`` logged steps in a row."""

        streak = 0

        def on_log(self, args, state, control, logs=None, **kwargs):
            frac = (logs or {}).get("frac_reward_zero_std")
            if frac is None:
                return
            self.streak = self.streak + 1 if frac >= 0.999 else 0
            if self.streak == patience:
                msg = (f"step {state.global_step}: for {patience} steps every group's samples got the same reward, "
                       "so GRPO had nothing to learn from. Raise the temperature, use more samples per prompt, "
                       "or train on problems the model sometimes solves.")
                warnings_out.append(msg)
                warnings.warn(msg, stacklevel=1)
                if log:
                    log.note("WARNING " + msg)

    return ZeroSpreadWarning()


def _sample_callback(recorder: SampleRecorder, every: int, samples_out: list, on_samples=None):
    from transformers import TrainerCallback

    class SampleTable(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step % every == 0 or state.global_step == 1:
                table = recorder.table(state.global_step)
                samples_out.extend(table)
                if on_samples:
                    on_samples(table)

    return SampleTable()


def train_grpo(
    settings: cfg.GRPOSettings,
    train_data: str | Path,
    output_dir: str | Path | None = None,
    resume: str | bool | None = None,
    dry_run: bool = False,
    on_log_row=None,
    on_samples=None,
    allow_outside_output: bool = False,
    zero_spread_patience: int = 5,
    callbacks=(),
    halve_batch_on_oom: bool = False,
) -> GRPOResult:
    """Run GRPO and return the run, its log and the sampled completions.

    ``settings.preset == "from_sft"`` (or a non-empty ``settings.sft_model``)
    starts from an SFT adapter; the KL reference is then the SFT policy.
    ``resume``, ``callbacks`` and ``halve_batch_on_oom`` work as in ``helpers.sft.train_sft``.
    """
    import torch
    from transformers import set_seed

    from helpers.callbacks import NonFiniteLossCallback, StepTimer, TrainingLogCallback
    from helpers.runs import checkpoint_step, truncate_training_log
    from helpers.sft import (_is_main_process, find_resume_checkpoint, load_rows, open_run_dir, peak_memory_gb,
                             select_rows)

    if output_dir is not None:
        check_output_path(output_dir, allow_outside_output)  # before any work: a bad path fails at once
    elif resume and not dry_run:
        raise ValueError("resume: give output_dir, the run folder to resume in")
    set_seed(settings.seed)
    rows, bad = load_rows(train_data, "train_data")
    if settings.difficulties:  # checked in config.resolve; rows without a difficulty (concept questions) stay
        rows = [r for r in rows if r.get("difficulty") in settings.difficulties or not r.get("difficulty")]
    rows = select_rows(rows, settings.max_train_examples, settings.seed)
    if not rows:
        raise ValueError(f"train_data: {train_data} has no valid row")
    from_sft = settings.preset == "from_sft" or bool(settings.sft_model)
    sft_adapter = resolve_sft_model(settings.sft_model) if from_sft else None

    model, tokenizer, sft_lora = load_policy(settings, sft_adapter)
    sft_targets = sorted({k.rsplit(".", 1)[-1] for k in sft_lora["layers"]}) if sft_lora else None

    prompts_per_step = settings.batch_size * settings.grad_accum // settings.num_generations
    steps = settings.max_steps if settings.max_steps > 0 else math.ceil(len(rows) / prompts_per_step * settings.epochs)
    plan = {
        "preset": settings.preset, "device": settings.device, "start": str(sft_adapter) if sft_adapter else "base",
        "kl_reference": "the SFT policy (GRPO adapter disabled)" if sft_adapter else "the base model",
        "train_prompts": len(rows), "bad_rows_dropped": len(bad),
        "numeric_prompts": sum(1 for r in rows if r.get("final_answer")),
        "prompts_per_step": prompts_per_step, "samples_per_step": prompts_per_step * settings.num_generations,
        "steps": steps, "reward_weights": dict(settings.reward_weights), "notes": list(settings.notes),
    }

    run = open_run_dir("grpo", output_dir, allow_outside_output, dry_run)
    checkpoint = find_resume_checkpoint(run.root, resume) if (resume and run) else None

    recorder = SampleRecorder()
    nan_guard, timer = NonFiniteLossCallback(), StepTimer()
    zero_warnings: list[str] = []
    samples: list[dict] = []
    log = TrainingLog(run.training_log, LOG_COLUMNS) if run is not None and _is_main_process() else None
    user_callbacks = list(callbacks)
    callbacks = [nan_guard, timer, _zero_spread_callback(log, zero_spread_patience, zero_warnings),
                 _sample_callback(recorder, settings.sample_table_every, samples, on_samples)]
    log_cb = None
    if log is not None:
        log_cb = TrainingLogCallback(log, _METRIC_MAP, on_row=on_log_row)
        if resume:  # drop the rows the stopped run logged after its checkpoint; keep (and re-plot) the rest
            start_step = checkpoint_step(checkpoint) if checkpoint else 0
            log_cb.rows.extend(truncate_training_log(run.training_log, start_step))
        callbacks.append(log_cb)
    callbacks.extend(user_callbacks)
    out_dir = run.root if run else Path(output_root()) / ".dry_run"
    trainer = build_grpo_trainer(settings, model, tokenizer, rows, out_dir, callbacks, recorder, sft_targets)
    trainable, total = trainer.model.get_nb_trainable_parameters()
    plan["trainable_parameters"] = trainable
    plan["total_parameters"] = total
    if trainable <= 0:
        raise RuntimeError("GRPO would train nothing: the model has no trainable parameters (check the LoRA setup)")

    if dry_run:
        start = time.perf_counter()
        trainer.args.max_steps = 1
        shutil.rmtree(out_dir, ignore_errors=True)
        plan["note"] = "dry run: one real GRPO step was timed on a throwaway copy of the adapter; nothing is saved"
        before = {k: v.detach().clone() for k, v in trainer.model.named_parameters() if v.requires_grad}
        trainer.train()
        plan["seconds_per_step_measured"] = round(time.perf_counter() - start, 2)
        plan["estimated_minutes"] = round(plan["seconds_per_step_measured"] * steps / 60, 1)
        plan["peak_memory_gb"] = peak_memory_gb(settings.device)
        with torch.no_grad():
            for k, v in trainer.model.named_parameters():
                if k in before:
                    v.copy_(before[k])
        shutil.rmtree(out_dir, ignore_errors=True)
        return GRPOResult("dry_run", None, plan, samples=samples)

    if _is_main_process():
        start_run(run, "grpo", settings.preset, cfg.as_dict(settings), {"train": train_data}, settings.seed,
                  extra={"plan": plan, "resumed_from": checkpoint,
                         "sft_model": str(sft_adapter) if sft_adapter else None})
    status, reason, smaller = "completed", None, None
    try:
        trainer.train(resume_from_checkpoint=checkpoint)
    except KeyboardInterrupt:
        status, reason = "interrupted", "stopped by the user (KeyboardInterrupt); resume with resume='latest'"
    except torch.OutOfMemoryError as err:
        from helpers.faults import halved_batch, oom_advice

        status, reason = "failed", oom_advice("grpo", settings, err)
        smaller = halved_batch(settings) if halve_batch_on_oom else None
    except Exception as err:  # noqa: BLE001 - recorded, then re-raised
        if _is_main_process():
            finish_run(run, "failed", f"{type(err).__name__}: {err}")
        raise
    if nan_guard.failure:
        status, reason = "failed", nan_guard.failure

    if smaller is not None:  # out of memory: once more from the same start, half the batch, twice the accumulation
        from helpers.sft import _free_memory

        del trainer, model
        _free_memory()
        if log_cb is not None:
            truncate_training_log(run.training_log, checkpoint_step(checkpoint) if checkpoint else 0)
        return train_grpo(smaller, train_data, run.root if run else output_dir, checkpoint, dry_run, on_log_row,
                          on_samples, allow_outside_output, zero_spread_patience, user_callbacks,
                          halve_batch_on_oom=False)
    rows_logged = log_cb.rows if log_cb else []
    if _is_main_process():
        if status == "completed":
            try:
                save_grpo_final_model(trainer, tokenizer, run, sft_lora)
            except BaseException as err:
                finish_run(run, "failed", f"saving final_model failed ({type(err).__name__}: {err}); the "
                           "checkpoints are intact: resume with resume='latest'", global_step=trainer.state.global_step)
                raise
        from helpers.plots import plot_grpo_curves
        from helpers.runs import write_json_atomic

        if rows_logged:
            plot_grpo_curves(rows_logged).savefig(run.figure("grpo_curves"), dpi=110, bbox_inches="tight")
        write_json_atomic(run.root / "samples.json", samples)
        failures = {f.__name__: getattr(f, "failures", 0) for f in trainer.reward_funcs if callable(f)}
        finish_run(run, status, reason, global_step=trainer.state.global_step,
                   train_seconds=round(sum(timer.times), 1), peak_memory_gb=peak_memory_gb(settings.device),
                   zero_spread_warnings=zero_warnings, reward_failures=failures)
        write_model_card(run.root)  # final_model/README.md and a portable base in adapter_config.json
    if status == "interrupted":
        raise KeyboardInterrupt(reason)
    return GRPOResult(status, run, plan, rows_logged, samples, reason)


def save_grpo_final_model(trainer, tokenizer, run: RunPaths, sft_lora: dict | None) -> Path:
    """``final_model/``: the GRPO adapter, or SFT+GRPO merged into one adapter that loads on the plain base."""
    from helpers.sft import save_final_model

    if sft_lora is None:
        return save_final_model(trainer, tokenizer, run)
    grpo_lora = read_lora(trainer.model)
    base_name = sft_lora["config"].base_model_name_or_path
    return save_merged_adapter(sft_lora, grpo_lora, base_name, tokenizer, run.final_model)


def main(argv=None) -> int:
    from helpers.sft import _is_main_process, build_parser, check_cli_paths

    parser = build_parser("grpo")
    parser.set_defaults(config="default")
    args = parser.parse_args(argv)
    try:
        settings = cfg.resolve(args.config, "grpo", **cfg.overrides_from_args(args, "grpo"))
        check_cli_paths(args)
    except (TypeError, ValueError) as err:
        parser.error(str(err))
    result = train_grpo(settings, args.train_data, args.output_dir, args.resume, args.dry_run,
                        allow_outside_output=args.allow_outside_output, halve_batch_on_oom=args.halve_batch_on_oom)
    if _is_main_process():
        print(json.dumps({"status": result.status, "run": str(result.run.root) if result.run else None,
                          "reason": result.reason, "plan": result.plan}, indent=1, default=str))
    return 0 if result.status in ("completed", "dry_run") else 1


if __name__ == "__main__":
    sys.exit(main())


def health_report(rows: list[dict], kl_limit: float = 0.5) -> list[dict]:
    """The seed's GRPO health rules, checked on the training log and explained when broken.

    KL below the limit (the policy has not run away from its reference), the mean
    reward rising (first third vs last third of the steps), and groups with
    reward spread (a group whose samples all score the same teaches nothing).
    """
    steps = [r for r in rows if r.get("reward") is not None]
    if not steps:
        return [{"rule": "training logged rewards", "ok": False, "value": None,
                 "explanation": "no reward was logged: the run did not reach its first logging step"}]
    third = max(1, len(steps) // 3)
    first = sum(r["reward"] for r in steps[:third]) / third
    last = sum(r["reward"] for r in steps[-third:]) / third
    kls = [r["kl"] for r in steps if r.get("kl") is not None]
    zero = [r["frac_zero_std"] for r in steps if r.get("frac_zero_std") is not None]
    max_kl = max(kls) if kls else 0.0
    mean_zero = sum(zero) / len(zero) if zero else 0.0
    return [
        {"rule": f"KL stays below {kl_limit}", "value": round(max_kl, 4), "ok": max_kl < kl_limit,
         "explanation": "fine" if max_kl < kl_limit else
         "the policy drifted far from its reference: lower the learning rate or raise the KL coefficient (beta)"},
        {"rule": "mean reward rises", "value": f"{first:.3f} -> {last:.3f}", "ok": last > first,
         "explanation": "fine" if last > first else
         "no progress: check the sample table (are the answers truncated? always right? always wrong?), "
         "try a higher learning rate or more steps"},
        {"rule": "groups have reward spread", "value": f"{1 - mean_zero:.0%} of groups", "ok": mean_zero < 0.9,
         "explanation": "fine" if mean_zero < 0.9 else
         "most groups scored all-equal, so their advantages are zero: use more samples, a higher temperature, "
         "or problems the model solves only sometimes"},
    ]
