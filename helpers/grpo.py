"""GRPO with LoRA on TRL's GRPOTrainer, from the base model or on purpose from an SFT adapter.

Why this module exists: TRL runs the algorithm; this module makes the choices
that decide whether GRPO teaches anything on a small model:

- ``from_sft`` folds the SFT adapter into the weights first, then trains a new
  LoRA on top. With the GRPO adapter switched off the model *is* the SFT policy,
  so TRL's KL reference (adapter disabled) is the SFT policy, not the raw base.
  At the end both adapters become one adapter of summed rank (PEFT's
  ``add_weighted_adapter``, ``combination_type="cat"``: exact), which loads onto
  the plain base with ``PeftModel.from_pretrained(base, path)``.
- prompts are the same single user message as in SFT and evaluation, and the
  rewards are the evaluation scorers (helpers.rewards);
- a group of samples per prompt (8 at temperature 0.7 on CPU), truncated
  completions masked out of the loss, samples with a zero advantage skipped
  before the backward pass, and a log that shows how many groups had any
  reward spread (zero spread teaches nothing) next to reward, KL, loss and length;
- sampling on a GPU in bf16 keeps the LM head in float32 and drops invalid
  logits, the fix for the device-side assert seen with TRL's plain recipe;
  on a GPU the fastest generation path TRL offers there (vLLM colocate,
  continuous batching, or plain generate; helpers.config.resolve_generation)
  samples, and the plan and run.json say which one ran.

What every trainer shares (run folder, resume, dry run, OOM retry, NaN guard,
``final_model/``) is helpers.training; the TRL subclass is helpers.grpo_trainer.

Used in 04_grpo_train and by ``python -m helpers.grpo``.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import sys
import time
import warnings
from pathlib import Path

from helpers import config as cfg
from helpers.answers import chat_messages
from helpers.distributed import effective_batch, launch_notes, prompt_id
from helpers.memory import apply_memory_savers
from helpers.runs import TrainingLog, final_adapter, pick_run, write_json_atomic
from helpers.training import (RunSetupError, Stage, TrainingResult, cli_main, load_rows, lora_config, run_training,
                              select_rows, trainer_arguments)

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


def to_prompt_row(row: dict) -> dict:
    """A QA row as a GRPO prompt; ``final_answer`` and ``answer`` travel along for the rewards."""
    return {"prompt": chat_messages(row["question"]), "final_answer": row.get("final_answer") or None,
            "answer": row["answer"], "family": row.get("family") or row.get("topic") or "other"}


def resolve_sft_model(sft_model: str | None) -> Path:
    """An SFT adapter folder: the one given (an adapter folder, or a run folder with ``final_model/``), or the
    newest completed SFT run's final_model, found the one way the workbook finds runs (runs.pick_run)."""
    if sft_model and (Path(sft_model) / "adapter_config.json").is_file():
        return Path(sft_model)  # a bare adapter folder (no run.json needed)
    try:
        return final_adapter(pick_run("sft", sft_model or "", adapter=True, required=True))
    except FileNotFoundError as err:
        raise FileNotFoundError(f"sft_model: {err}") from None


def load_policy(settings: cfg.GRPOSettings, sft_adapter: Path | None):
    """The model GRPO starts from: the base, or the base with the SFT adapter folded in.

    Returns (model, tokenizer, sft_lora) where ``sft_lora`` holds the SFT
    adapter's config and the modules it adapts, which the GRPO adapter then
    adapts too (None from the base).
    """
    from helpers.models import load_adapter, load_base_model, load_tokenizer

    model = load_base_model(settings.model_name, dtype=settings.dtype, load_in_4bit=settings.load_in_4bit,
                            device=settings.device, attn_implementation=settings.attn_implementation)
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
    """The active adapter's config and the names of the modules it adapts (``layers``)."""
    adapter = peft_model.active_adapter
    layers = [name.replace("base_model.model.", "", 1) for name, module in peft_model.named_modules()
              if adapter in getattr(module, "lora_A", {})]
    return {"config": peft_model.peft_config[adapter], "layers": layers}


def save_sft_plus_grpo(peft_model, sft_adapter: Path, folder: Path) -> None:
    """The SFT adapter and the trained GRPO adapter as ONE adapter, written into ``folder``; it loads onto the
    plain base with ``PeftModel.from_pretrained(base, folder)`` and gives the stacked policy.

    PEFT's ``add_weighted_adapter(..., combination_type="cat")`` does it exactly: the A matrices stacked
    (each times its adapter's alpha/r and weight 1), the B matrices side by side, scaling 1 and rank
    r_sft + r_grpo, so W + s1·B1A1 + s2·B2A2 = W + [B1 | B2]·[s1·A1; s2·A2] (no SVD, no approximation).
    The SFT adapter is loaded next to the GRPO one for this; both extra adapters are deleted afterwards.
    """
    import tempfile

    grpo_name = peft_model.active_adapter
    peft_model.load_adapter(str(sft_adapter), adapter_name="sft")
    try:
        peft_model.add_weighted_adapter(["sft", grpo_name], [1.0, 1.0], "sft_grpo", combination_type="cat")
        config = peft_model.peft_config["sft_grpo"]
        config.target_modules = sorted(config.target_modules)  # a set, which PEFT writes in hash order
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            # "auto" would ask the hub whether the vocabulary changed (a warning offline); the workbook never
            # changes it, so embeddings are saved only when the adapter itself targets them
            embeddings = "auto" if any("embed" in m for m in config.target_modules) else False
            peft_model.save_pretrained(tmp, selected_adapters=["sft_grpo"],  # PEFT writes it to tmp/sft_grpo/
                                       save_embedding_layers=embeddings)
            for file in (Path(tmp) / "sft_grpo").iterdir():
                file.replace(folder / file.name)
    finally:
        for name in ("sft_grpo", "sft"):
            if name in peft_model.peft_config:
                peft_model.delete_adapter(name)
        if peft_model.active_adapter != grpo_name:
            peft_model.set_adapter(grpo_name)


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


@contextlib.contextmanager
def tied_head_visible_to_trl(model, cast_lm_head_to_fp32: bool):
    """Let TRL 1.16 cast a tied LM head to float32 on a model it wraps in PEFT.

    With ``cast_lm_head_to_fp32`` and tied embeddings (SmolLM2, Qwen2.5), GRPOTrainer hooks the input
    embedding of ``peft_model.model.embed_tokens``; on a PeftModel ``.model`` is the causal LM itself,
    whose embedding sits one level lower, so TRL raises ``AttributeError: 'LlamaForCausalLM' object has
    no attribute 'embed_tokens'`` (measured with the tiny test model on CPU). For the trainer's
    construction only, the causal LM answers ``embed_tokens`` with its input embedding (a plain attribute,
    not a registered submodule, so no weights are duplicated or saved twice).
    """
    alias = cast_lm_head_to_fp32 and getattr(model.config, "tie_word_embeddings", False) and \
        not hasattr(model, "embed_tokens")
    if alias:
        object.__setattr__(model, "embed_tokens", model.get_input_embeddings())
    try:
        yield
    finally:
        if alias:
            model.__dict__.pop("embed_tokens", None)


def generation_path(trainer) -> str:
    """Which of TRL's generation paths a GRPO trainer runs (what TRL set up, for the plan and run.json)."""
    if getattr(trainer, "use_vllm", False):
        return f"vllm_{trainer.vllm_mode}"
    return "continuous_batching" if getattr(trainer, "use_transformers_continuous_batching", False) else "generate"


def build_grpo_trainer(settings: cfg.GRPOSettings, model, tokenizer, train_rows, output_dir, callbacks=(),
                       recorder: SampleRecorder | None = None, lora_target_modules=None):
    """TRL's GRPOTrainer with LoRA, the workbook's rewards and device-aware numerics."""
    from datasets import Dataset
    from trl import GRPOConfig

    from helpers.grpo_trainer import WorkbookGRPOTrainer
    from helpers.rewards import reward_functions

    weights = dict(settings.reward_weights)
    funcs, ws = reward_functions(weights, settings.max_new_tokens)
    if recorder is not None:
        funcs = [recorder.wrap(f) for f in funcs]
    if settings.batch_size % settings.num_generations:
        raise ValueError(f"batch_size: must be a multiple of num_generations ({settings.num_generations}), "
                         f"got {settings.batch_size}")
    gpu_bf16 = settings.device == "cuda" and settings.dtype != "float32"
    vllm = settings.generation == "vllm_colocate"
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
        # transformers' logits processor; vLLM's SamplingParams has no such argument
        generation_kwargs={"remove_invalid_values": True} if gpu_bf16 and not vllm else None,
        use_vllm=vllm,  # settings.generation, chosen per device by config.resolve_generation
        vllm_mode="colocate",
        use_transformers_continuous_batching=settings.generation == "continuous_batching",
        log_completions=False,
        **trainer_arguments(settings),
    )
    peft = lora_config(settings)
    if lora_target_modules:
        peft.target_modules = set(lora_target_modules)
    dataset = Dataset.from_list([to_prompt_row(r) for r in train_rows])
    with tied_head_visible_to_trl(model, args.cast_lm_head_to_fp32):
        trainer = WorkbookGRPOTrainer(model=model, reward_funcs=funcs, args=args, train_dataset=dataset,
                                      processing_class=tokenizer, peft_config=peft, callbacks=list(callbacks))
    trainer.skip_uninformative_rows = settings.skip_uninformative
    trainer.train_samples_per_group = settings.train_samples_per_group
    return apply_memory_savers(trainer, settings.max_tokens_per_pass)  # same loss and gradient, less memory


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


def _windows(steps: list[dict]) -> tuple[int, tuple[int, int], tuple[int, int]]:
    """The sharpening rule's windows over the logged steps: (size, (first step, last step) of the early window,
    and of the late one), 10 logged steps each, fewer when the run has under 20."""
    window = min(10, max(1, len(steps) // 2))
    before_late = steps[-window - 1]["step"] if len(steps) > window else 0
    return window, (1, steps[window - 1]["step"]), (before_late + 1, steps[-1]["step"])


def health_report(rows: list[dict], kl_limit: float = 0.5, sharpening: float = 0.10,
                  start_scores: dict[int, float] | None = None) -> list[dict]:
    """The seed's GRPO health rules, checked on the training log and explained when broken.

    KL below the limit (the policy has not run away from its reference), the mean
    reward rising (first third vs last third of the steps), groups with reward
    spread (a group whose samples all score the same teaches nothing), and the
    sharpening a reward stage is for: the mean correctness reward of its samples
    (1 right, 0.5 right without the format, 0 wrong; on fresh prompts at the
    training temperature, so about the share of right samples once the format is
    learned) up by ``sharpening`` (0.10, ten points) from the first 10 steps to
    the last 10 (fewer when the run has under 20 steps).

    The prompts are fresh every step, so that figure moves with how hard each
    step's draw was as much as with training. ``start_scores`` (step -> the
    starting policy's greedy accuracy on that step's prompts,
    ``start_policy_step_scores``) takes the draw out: the rule then asks the
    samples to gain ``sharpening`` more than the starting policy does between
    the same two windows.
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
    scored = [r for r in steps if r.get("correctness") is not None]
    right = [r["correctness"] for r in scored]
    window, early_steps, late_steps = _windows(scored) if scored else (1, (0, 0), (0, 0))
    early, late = (sum(right[:window]) / window, sum(right[-window:]) / window) if right else (0.0, 0.0)
    value, gain = (f"{early:.3f} -> {late:.3f}" if right else None), late - early
    draw = [[v for s, v in (start_scores or {}).items() if lo <= s <= hi] for lo, hi in (early_steps, late_steps)]
    if right and all(draw):
        start_early, start_late = (sum(d) / len(d) for d in draw)
        gain -= start_late - start_early
        value += (f"; the starting policy on the same prompts {start_early:.3f} -> {start_late:.3f}"
                  f"; gain beyond the draw {gain:+.3f}")
    sharpened = bool(right) and gain >= sharpening - 1e-9
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
        {"rule": f"correctness of the samples rises by {sharpening:g} (first {window} vs last {window} steps)",
         "value": value, "ok": sharpened,
         "explanation": "fine" if sharpened else
         "no correctness reward was logged" if not right else
         "the policy did not sharpen: right samples are no more likely than at the start. The headroom above "
         "(pass@k) bounds what sharpening can add; 05's budget table says whether more SFT does better"},
    ]


def start_policy_step_scores(settings: cfg.GRPOSettings, sft_adapter: Path | None, run_root: str | Path,
                             train_path: str | Path, log_rows: list[dict]) -> dict[int, float] | None:
    """How hard each step's draw of fresh prompts was: the starting policy's greedy strict accuracy on the
    prompts (from run.json) of the steps the sharpening rule compares: ``health_report``'s two windows over
    ``log_rows``, the training log, so a log written every few steps covers the same steps.

    Why: read alone, the samples' correctness from the first steps to the last mixes training with the draw.
    Measured 2026-12-07 (a 2-core AMD EPYC, 26 steps of 8 prompts from SFT ``default``): the starting policy
    itself answered 38.8% of the first 10 steps' prompts and 28.8% of the last 10's, so samples falling from
    0.309 to 0.222 were the draw, not GRPO unlearning. Greedy answers are cached by the weights' fingerprint.
    None when run.json lists no prompts per step (rejection sampling, an older run).
    """
    from helpers.compare import evaluate_all
    from helpers.evaluate import GenerationSettings, load_eval_records
    from helpers.runs import read_run

    per_rank = [p["prompts"] for p in read_run(Path(run_root)).get("processes") or [] if p.get("prompts")]
    if not per_rank:
        return None
    steps = [[pid for rank in per_rank if i < len(rank) for pid, _ in rank[i]] for i in range(len(per_rank[0]))]
    scored = [r for r in log_rows if r.get("correctness") is not None]
    if not scored:
        return None
    _, early, late = _windows(scored)
    wanted = {i: ids for i, ids in enumerate(steps, 1) if early[0] <= i <= early[1] or late[0] <= i <= late[1]}
    by_id = {prompt_id(r["question"]): r for r in load_eval_records(train_path, numeric_only=True)}
    records = list({pid: by_id[pid] for ids in wanted.values() for pid in ids if pid in by_id}.values())
    if not records:
        return None
    gen = GenerationSettings(max_new_tokens=settings.max_new_tokens, batch_size=32)
    (report,) = evaluate_all({"start": sft_adapter}, {"steps": records}, gen, settings.model_name)["reports"]["steps"]
    right = {prompt_id(row["question"]): bool(row.get("correct_strict")) for row in report.rows}
    found = {i: [right[p] for p in ids if p in right] for i, ids in wanted.items()}
    return {i: sum(hits) / len(hits) for i, hits in found.items() if hits}


class GRPOStage(Stage):
    """What GRPO adds to the training skeleton: prompts, the starting policy, rewards, the sample table."""

    name, log_columns, metric_map, figure = "grpo", LOG_COLUMNS, _METRIC_MAP, "grpo_curves"

    def __init__(self, train_data, zero_spread_patience: int = 5, on_samples=None):
        self.train_data, self.zero_spread_patience, self.on_samples = train_data, zero_spread_patience, on_samples

    def load_data(self, settings) -> dict:
        rows, bad = load_rows(self.train_data)
        if settings.difficulties:  # checked in config.resolve; rows without a difficulty (concept questions) stay
            rows = [r for r in rows if r.get("difficulty") in settings.difficulties or not r.get("difficulty")]
        self.rows = select_rows(rows, settings.max_train_examples, settings.seed)
        if not self.rows:
            raise RunSetupError(f"train_data: {self.train_data} has no valid row")
        from_sft = settings.preset == "from_sft" or bool(settings.sft_model)
        self.sft_adapter = resolve_sft_model(settings.sft_model) if from_sft else None
        self.recorder, self.samples, self.zero_warnings = SampleRecorder(), [], []
        batch = effective_batch(settings)  # samples: per-device batch x processes x accumulation
        per_step = batch["effective_batch"] // settings.num_generations
        steps = settings.max_steps if settings.max_steps > 0 else math.ceil(len(self.rows) / per_step * settings.epochs)
        self.plan = {
            "preset": settings.preset, "device": settings.device,
            "start": str(self.sft_adapter) if self.sft_adapter else "base",
            "kl_reference": "the SFT policy (GRPO adapter disabled)" if self.sft_adapter else "the base model",
            "train_prompts": len(self.rows), "bad_rows_dropped": len(bad),
            "numeric_prompts": sum(1 for r in self.rows if r.get("final_answer")),
            "prompts_per_step": per_step, "samples_per_step": per_step * settings.num_generations, **batch,
            "steps": steps, "reward_weights": dict(settings.reward_weights),
            "notes": list(settings.notes) + launch_notes(),
        }
        return self.plan

    def load_model(self, settings) -> None:
        self.model, self.tokenizer, self.sft_lora = load_policy(settings, self.sft_adapter)

    def callbacks(self, settings, log) -> list:
        return [_zero_spread_callback(log, self.zero_spread_patience, self.zero_warnings),
                _sample_callback(self.recorder, settings.sample_table_every, self.samples, self.on_samples)]

    def build(self, settings, output_dir, callbacks):
        targets = sorted({k.rsplit(".", 1)[-1] for k in self.sft_lora["layers"]}) if self.sft_lora else None
        trainer = build_grpo_trainer(settings, self.model, self.tokenizer, self.rows, output_dir, callbacks,
                                     self.recorder, targets)
        self.plan["generation"] = generation_path(trainer)  # what runs: the plan table and run.json
        return trainer

    def dry_run(self, trainer, settings, plan, out_dir) -> None:
        """One real GRPO step, timed, on a throwaway copy of the adapter (restored afterwards)."""
        import torch

        start = time.perf_counter()
        trainer.args.max_steps = 1
        shutil.rmtree(out_dir, ignore_errors=True)
        plan["note"] = "dry run: one real GRPO step was timed on a throwaway copy of the adapter; nothing is saved"
        before = {k: v.detach().clone() for k, v in trainer.model.named_parameters() if v.requires_grad}
        trainer.train()
        plan["seconds_per_step_measured"] = round(time.perf_counter() - start, 2)
        plan["estimated_minutes"] = round(plan["seconds_per_step_measured"] * plan["steps"] / 60, 1)
        with torch.no_grad():
            for k, v in trainer.model.named_parameters():
                if k in before:
                    v.copy_(before[k])

    def run_record(self) -> dict:
        return {"data_files": {"train": self.train_data},
                "sft_model": str(self.sft_adapter) if self.sft_adapter else None}

    def save_weights(self, trainer, folder) -> None:
        """The GRPO adapter, or SFT+GRPO as one adapter of summed rank that loads on the plain base."""
        if self.sft_adapter is None:
            return super().save_weights(trainer, folder)
        save_sft_plus_grpo(trainer.model, self.sft_adapter, folder)

    def plot(self, rows):
        from helpers.plots import plot_grpo_curves

        return plot_grpo_curves(rows)

    def finish(self, trainer, run) -> dict:
        write_json_atomic(run.root / "samples.json", self.samples)
        failures = {f.__name__: getattr(f, "failures", 0) for f in trainer.reward_funcs if callable(f)}
        return {"zero_spread_warnings": self.zero_warnings, "reward_failures": failures}


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
) -> TrainingResult:
    """Run GRPO and return the run, its log and the sampled completions.

    ``settings.preset == "from_sft"`` (or a non-empty ``settings.sft_model``)
    starts from an SFT adapter; the KL reference is then the SFT policy.
    ``on_samples(rows)`` gets each new sample table; ``zero_spread_patience`` logged steps in a row
    without reward spread in any group give a warning. The other arguments are those of
    ``helpers.sft.train_sft`` (helpers.training.run_training). ``settings.method`` ``rejection_sft`` runs the
    reward stage's other method instead, and ``more_sft`` its control (helpers.rejection_sft, the same arguments).
    """
    if settings.method in ("rejection_sft", "more_sft"):
        from helpers.rejection_sft import train_rejection_sft

        return train_rejection_sft(settings, train_data, output_dir, resume, dry_run, on_log_row,
                                   allow_outside_output, callbacks, halve_batch_on_oom)
    return run_training(GRPOStage(train_data, zero_spread_patience, on_samples), settings, output_dir, resume,
                        dry_run, on_log_row, allow_outside_output, callbacks, halve_batch_on_oom)


def main(argv=None) -> int:
    """``python -m helpers.grpo --config from_sft --train-data ...`` (flags: ``--help``)."""
    return cli_main("grpo", lambda settings, args: train_grpo(
        settings, args.train_data, args.output_dir, args.resume, args.dry_run,
        allow_outside_output=args.allow_outside_output, halve_batch_on_oom=args.halve_batch_on_oom), argv)


if __name__ == "__main__":
    sys.exit(main())
