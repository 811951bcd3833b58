"""Supervised fine-tuning with LoRA, on TRL's SFTTrainer, set up for the device at hand.

Why this module exists: TRL already does the training; this module decides the
few things that make it fast and honest on this workbook's data:

- prompt/completion conversations, so the loss is on the worked solution only
  and the prompt is exactly what evaluation sends (one plain user message
  through the tokenizer's chat template);
- padding-free batches (no pad tokens are computed; SDPA gets a block-diagonal
  mask from the position ids, so examples never see each other);
- rows longer than ``max_length`` are dropped and counted, never cut, because the
  final answer sits at the end;
- float32 and no gradient checkpointing on CPU (TRL's GPU defaults are 14x slower
  there), bf16 and QLoRA options on CUDA (helpers.config);
- a run folder with run.json, a tail-able training log, checkpoints, an atomic
  ``final_model/`` and loss curves.

The same function runs from 02_sft_train and from the command line
(``python -m helpers.sft --config default ...``), also under ``accelerate launch``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from helpers import config as cfg
from helpers.answers import chat_messages
from helpers.export import write_model_card
from helpers.runs import (RunPaths, TrainingLog, check_output_path, checkpoint_step, finish_run, new_run_dir,
                          output_root, start_run, truncate_training_log, update_run)

LOG_COLUMNS = ["step", "loss", "val_loss", "lr", "grad_norm", "tokens_per_s", "elapsed_s"]


@dataclass
class SFTResult:
    """What a training call returns to the notebook."""

    status: str  # completed | failed | interrupted | dry_run
    run: RunPaths | None
    plan: dict
    log_rows: list[dict] = field(default_factory=list)
    reason: str | None = None

    @property
    def final_model(self) -> Path | None:
        return self.run.final_model if self.run and self.run.final_model.is_dir() else None


def to_conversation(row: dict) -> dict:
    """A QA row as TRL's conversational prompt/completion pair (loss on the completion only)."""
    return {
        "prompt": chat_messages(row["question"]),
        "completion": [{"role": "assistant", "content": row["answer"]}],
    }


def count_tokens(tokenizer, row: dict) -> tuple[int, int]:
    """(prompt tokens, prompt + solution tokens) exactly as the chat template lays them out."""
    conv = to_conversation(row)
    prompt = tokenizer.apply_chat_template(conv["prompt"], tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(conv["prompt"] + conv["completion"], tokenize=False)
    n_prompt = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    n_full = len(tokenizer(full, add_special_tokens=False)["input_ids"])
    return n_prompt, n_full


def load_rows(path: str | Path, what: str) -> tuple[list[dict], list]:
    """Rows of a QA file, validated by helpers.data; bad rows are dropped and returned for the report."""
    from helpers.data import load_qa_file

    result = load_qa_file(path, on_bad_rows="drop")
    return result.rows, result.bad_rows


def select_rows(rows: list[dict], limit: int, seed: int) -> list[dict]:
    """A seeded random subset of ``limit`` rows (all rows when limit is 0)."""
    if not limit or limit >= len(rows):
        return list(rows)
    rng = random.Random(seed)
    return rng.sample(rows, limit)


def fit_rows(rows: list[dict], tokenizer, max_length: int) -> tuple[list[dict], list[dict], list[int]]:
    """Split rows into those that fit ``max_length`` tokens and those that would be cut."""
    kept, too_long, lengths = [], [], []
    for i, row in enumerate(rows):
        _, n = count_tokens(tokenizer, row)
        if n > max_length:
            too_long.append({"row": i + 1, "tokens": n, "question": row["question"][:80]})
        else:
            kept.append(row)
            lengths.append(n)
    return kept, too_long, lengths


def lora_config(settings: cfg.CommonSettings):
    """PEFT LoRA settings from a preset."""
    from peft import LoraConfig

    return LoraConfig(
        r=settings.lora_r,
        lora_alpha=settings.lora_alpha,
        lora_dropout=settings.lora_dropout,
        target_modules=list(settings.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )


def trainer_arguments(settings: cfg.CommonSettings) -> dict:
    """TrainingArguments both trainers share, set explicitly per device (never TRL's GPU defaults)."""
    return dict(
        per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.grad_accum,
        learning_rate=settings.lr,
        lr_scheduler_type=settings.lr_scheduler,
        warmup_steps=settings.warmup_ratio,
        weight_decay=settings.weight_decay,
        max_grad_norm=settings.max_grad_norm,
        max_steps=settings.max_steps,
        num_train_epochs=settings.epochs,
        logging_steps=settings.logging_steps,
        save_strategy="steps",
        save_steps=settings.save_steps,
        save_total_limit=settings.save_total_limit,
        seed=settings.seed,
        data_seed=settings.seed,
        bf16=settings.dtype == "bfloat16",
        fp16=settings.dtype == "float16",
        gradient_checkpointing=settings.gradient_checkpointing,
        optim=settings.optim,
        use_cpu=settings.device == "cpu",
        report_to=[] if settings.report_to == "none" else [settings.report_to],  # tensorboard: <run>/runs/
        project="mathqa-workbook",  # trackio's project name (local unless a Space is configured)
        logging_nan_inf_filter=False,  # the default logs an average instead of a NaN loss, hiding it from the guard
        dataloader_num_workers=0,
        disable_tqdm=False,
    )


def build_sft_trainer(settings: cfg.SFTSettings, model, tokenizer, train_rows, val_rows, output_dir,
                      callbacks=()):
    """TRL's SFTTrainer with LoRA, completion-only loss and padding-free batches."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(
        output_dir=str(output_dir),
        per_device_eval_batch_size=settings.batch_size,
        eval_strategy="steps" if val_rows else "no",
        eval_steps=settings.eval_steps,
        max_length=None,  # rows were already fitted to max_length; nothing is truncated
        padding_free=settings.padding_free,
        train_sampling_strategy="group_by_length" if settings.group_by_length else "random",
        completion_only_loss=True,
        include_num_input_tokens_seen="non_padding",
        dataset_num_proc=None,
        **trainer_arguments(settings),
    )
    train_ds = Dataset.from_list([to_conversation(r) for r in train_rows])
    val_ds = Dataset.from_list([to_conversation(r) for r in val_rows]) if val_rows else None
    return SFTTrainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=val_ds,
        processing_class=tokenizer,
        peft_config=lora_config(settings),
        callbacks=list(callbacks),
    )


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _free_memory() -> None:
    """Give back what a failed attempt held (before an out-of-memory retry)."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def peak_memory_gb(device: str) -> float:
    """Peak memory so far: GPU memory on CUDA, the process's peak RSS on CPU."""
    if device == "cuda":
        import torch

        return round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)


def measure_one_step(trainer) -> float:
    """Seconds for one forward+backward on a real batch, without an optimizer step (trains nothing)."""
    import torch

    model = trainer.model
    batch = next(iter(trainer.get_train_dataloader()))
    batch = {k: v.to(model.device) if hasattr(v, "to") else v for k, v in batch.items()}
    model.train()
    start = time.perf_counter()
    loss = trainer.compute_loss(model, batch)
    loss.backward()
    elapsed = time.perf_counter() - start
    model.zero_grad(set_to_none=True)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return elapsed


def save_final_model(trainer, tokenizer, run: RunPaths) -> Path:
    """Write ``final_model/`` (adapter in safetensors + tokenizer) to a temp folder, then rename it."""
    tmp = run.root / f".final_model.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        trainer.model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # no half-written model left behind
        raise
    if run.final_model.exists():
        shutil.rmtree(run.final_model)
    os.replace(tmp, run.final_model)
    return run.final_model


def find_resume_checkpoint(run_root: Path, resume: str | bool | None) -> str | None:
    """``latest`` (or True): the newest complete checkpoint in this run's folder; a path: that checkpoint."""
    if not resume:
        return None
    from helpers.checkpoints import latest_complete_checkpoint

    if resume is True or resume == "latest":
        found = latest_complete_checkpoint(run_root)
        if found is None:
            import warnings

            warnings.warn(f"resume: no complete checkpoint in {run_root}; training from the start", stacklevel=2)
        return str(found) if found else None
    path = Path(resume).resolve()
    if run_root.resolve() not in path.parents:
        raise ValueError(f"resume: {resume} is not a checkpoint of this run ({run_root})")
    return str(path)


def open_run_dir(stage: str, output_dir, allow_outside_output: bool, dry_run: bool) -> RunPaths | None:
    """The run folder: a new ``output/<stage>_<date>`` or the given one (checked to be under output/).

    Only the main process creates it; a dry run creates nothing.
    """
    if dry_run or not _is_main_process():
        return None if output_dir is None or dry_run else RunPaths(check_output_path(output_dir, allow_outside_output))
    if output_dir is None:
        return new_run_dir(stage)
    root = check_output_path(output_dir, allow_outside_output)
    root.mkdir(parents=True, exist_ok=True)
    return RunPaths(root)


def train_sft(
    settings: cfg.SFTSettings,
    train_data: str | Path,
    val_data: str | Path | None = None,
    output_dir: str | Path | None = None,
    resume: str | bool | None = None,
    dry_run: bool = False,
    on_log_row=None,
    allow_outside_output: bool = False,
    callbacks=(),
    halve_batch_on_oom: bool = False,
) -> SFTResult:
    """Train a LoRA adapter on worked solutions; return the run and its log.

    ``output_dir`` is a run folder to create or to resume in (default: a new
    ``output/sft_<date>``). ``dry_run`` builds everything, measures one step and
    returns the plan without training. ``on_log_row(row, rows)`` is called for
    every line written to the training log (the notebook's live plot).
    ``resume`` ("latest" or a checkpoint folder of ``output_dir``) continues a
    stopped run. ``callbacks`` are extra TrainerCallbacks, run after the
    workbook's. ``halve_batch_on_oom`` retries once after a CUDA out-of-memory
    error with half the batch and twice the accumulation (same effective batch).
    """
    import torch
    from transformers import set_seed

    from helpers.models import load_base_model, load_tokenizer

    if output_dir is not None:
        check_output_path(output_dir, allow_outside_output)  # before any work: a bad path fails at once
    elif resume and not dry_run:
        raise ValueError("resume: give output_dir, the run folder to resume in")
    set_seed(settings.seed)
    train_rows, bad_train = load_rows(train_data, "train_data")
    val_rows, bad_val = load_rows(val_data, "val_data") if val_data else ([], [])
    train_rows = select_rows(train_rows, settings.max_train_examples, settings.seed)
    val_rows = select_rows(val_rows, settings.max_val_examples, settings.seed)

    tokenizer = load_tokenizer(settings.model_name, padding_side="right")
    train_rows, too_long, lengths = fit_rows(train_rows, tokenizer, settings.max_length)
    val_rows, val_too_long, _ = fit_rows(val_rows, tokenizer, settings.max_length)
    if not train_rows:
        raise ValueError(f"train_data: no row of {train_data} fits max_length={settings.max_length} tokens")

    world = int(os.environ.get("WORLD_SIZE", "1"))
    per_step = settings.batch_size * settings.grad_accum * world
    steps_per_epoch = math.ceil(len(train_rows) / per_step)
    total_steps = settings.max_steps if settings.max_steps > 0 else math.ceil(steps_per_epoch * settings.epochs)
    plan = {
        "preset": settings.preset,
        "device": settings.device,
        "train_examples": len(train_rows),
        "val_examples": len(val_rows),
        "train_tokens": sum(lengths),
        "mean_tokens_per_example": round(sum(lengths) / len(lengths), 1),
        "dropped_too_long": len(too_long) + len(val_too_long),
        "too_long_examples": too_long[:10],
        "bad_rows_dropped": len(bad_train) + len(bad_val),
        "effective_batch": per_step,
        "steps": total_steps,
        "notes": list(settings.notes),
    }

    run = open_run_dir("sft", output_dir, allow_outside_output, dry_run)
    checkpoint = find_resume_checkpoint(run.root, resume) if (resume and run) else None

    model = load_base_model(settings.model_name, dtype=settings.dtype, load_in_4bit=settings.load_in_4bit,
                            attn_implementation=settings.attn_implementation)
    from helpers.callbacks import NonFiniteLossCallback, StepTimer, TrainingLogCallback

    nan_guard, timer = NonFiniteLossCallback(), StepTimer()
    user_callbacks, callbacks = list(callbacks), [nan_guard, timer]
    log_cb = None
    if run is not None and _is_main_process():
        log = TrainingLog(run.training_log, LOG_COLUMNS)
        log_cb = TrainingLogCallback(log, {"loss": "loss", "lr": "learning_rate", "grad_norm": "grad_norm"},
                                     on_row=on_log_row)
        if resume:  # drop the rows the stopped run logged after its checkpoint; keep (and re-plot) the rest
            start_step = checkpoint_step(checkpoint) if checkpoint else 0
            log_cb.rows.extend(truncate_training_log(run.training_log, start_step))
        callbacks.append(log_cb)
    callbacks.extend(user_callbacks)
    out_dir = run.root if run else Path(output_root()) / ".dry_run"
    trainer = build_sft_trainer(settings, model, tokenizer, train_rows, val_rows, out_dir, callbacks)
    trainable, total = trainer.model.get_nb_trainable_parameters()
    plan["trainable_parameters"] = trainable
    plan["total_parameters"] = total

    if dry_run:
        step_s = measure_one_step(trainer)
        plan["seconds_per_step_measured"] = round(step_s * settings.grad_accum, 2)
        plan["estimated_minutes"] = round(step_s * settings.grad_accum * total_steps / 60, 1)
        plan["peak_memory_gb"] = peak_memory_gb(settings.device)
        shutil.rmtree(Path(output_root()) / ".dry_run", ignore_errors=True)
        return SFTResult("dry_run", None, plan)

    if _is_main_process():
        data_files = {"train": train_data} | ({"val": val_data} if val_data else {})
        start_run(run, "sft", settings.preset, cfg.as_dict(settings), data_files, settings.seed,
                  extra={"plan": plan, "resumed_from": checkpoint})
    status, reason, smaller = "completed", None, None
    try:
        trainer.train(resume_from_checkpoint=checkpoint)
    except KeyboardInterrupt:
        status, reason = "interrupted", "stopped by the user (KeyboardInterrupt); resume with resume='latest'"
    except torch.OutOfMemoryError as err:
        from helpers.faults import halved_batch, oom_advice

        status, reason = "failed", oom_advice("sft", settings, err)
        smaller = halved_batch(settings) if halve_batch_on_oom else None
    except Exception as err:  # noqa: BLE001 - recorded in run.json, then re-raised
        if _is_main_process():
            finish_run(run, "failed", f"{type(err).__name__}: {err}")
        raise
    if nan_guard.failure:
        status, reason = "failed", nan_guard.failure

    if smaller is not None:  # out of memory: once more from the same start, half the batch, twice the accumulation
        del trainer, model
        _free_memory()
        if log_cb is not None:
            truncate_training_log(run.training_log, checkpoint_step(checkpoint) if checkpoint else 0)
        return train_sft(smaller, train_data, val_data, run.root if run else output_dir, checkpoint, dry_run,
                         on_log_row, allow_outside_output, user_callbacks, halve_batch_on_oom=False)
    rows = log_cb.rows if log_cb else []
    if status == "completed" and _is_main_process():
        try:
            save_final_model(trainer, tokenizer, run)
        except BaseException as err:
            finish_run(run, "failed", f"saving final_model failed ({type(err).__name__}: {err}); "
                       "the checkpoints are intact: resume with resume='latest'", global_step=trainer.state.global_step)
            raise
    if _is_main_process():
        from helpers.plots import plot_sft_losses

        if rows:
            plot_sft_losses(rows).savefig(run.figure("loss_curves"), dpi=110, bbox_inches="tight")
        finish_run(run, status, reason, global_step=trainer.state.global_step,
                   train_seconds=round(sum(timer.times), 1), peak_memory_gb=peak_memory_gb(settings.device))
        write_model_card(run.root)  # final_model/README.md and a portable base in adapter_config.json
    if status == "interrupted":
        raise KeyboardInterrupt(reason)
    return SFTResult(status, run, plan, rows, reason)


# ---------------------------------------------------------------- command line
def build_parser(stage: str = "sft") -> argparse.ArgumentParser:
    """Flags for every preset field (``--batch-size 4``), plus data, output and run control."""
    parser = argparse.ArgumentParser(prog=f"python -m helpers.{stage}", description=f"{stage.upper()} with LoRA.")
    parser.add_argument("--config", default="default", choices=cfg.preset_names(stage), help="preset name")
    parser.add_argument("--train-data", required=True, help="QA file (JSON list or JSONL)")
    parser.add_argument("--val-data", default=None, help="validation QA file")
    parser.add_argument("--output-dir", default=None, help="run folder (default: output/<stage>_<date>)")
    parser.add_argument("--resume", default=None, help="'latest' or a checkpoint folder of --output-dir")
    parser.add_argument("--dry-run", action="store_true", help="build everything, measure one step, train nothing")
    parser.add_argument("--allow-outside-output", action="store_true", help="allow --output-dir outside output/")
    parser.add_argument("--halve-batch-on-oom", action="store_true",
                        help="after a CUDA out-of-memory error, retry once with half the batch, twice the accumulation")
    cfg.add_settings_arguments(parser, stage)
    return parser


def check_cli_paths(args) -> None:
    """Output folder and resume checked before anything loads (ValueError naming the flag's parameter)."""
    if args.output_dir is not None:
        check_output_path(args.output_dir, args.allow_outside_output)
    if args.resume and args.output_dir is None:
        raise ValueError("resume: give --output-dir, the run folder to resume in")
    if args.resume and args.resume != "latest":
        root = Path(args.output_dir).resolve()
        if root not in Path(args.resume).resolve().parents:
            raise ValueError(f"resume: {args.resume} is not a checkpoint of this run ({root})")


def main(argv=None) -> int:
    parser = build_parser("sft")
    args = parser.parse_args(argv)
    try:
        settings = cfg.resolve(args.config, "sft", **cfg.overrides_from_args(args, "sft"))
        check_cli_paths(args)
    except (TypeError, ValueError) as err:
        parser.error(str(err))
    result = train_sft(settings, args.train_data, args.val_data, args.output_dir, args.resume, args.dry_run,
                       allow_outside_output=args.allow_outside_output, halve_batch_on_oom=args.halve_batch_on_oom)
    if _is_main_process():
        print(json.dumps({"status": result.status, "run": str(result.run.root) if result.run else None,
                          "reason": result.reason, "plan": result.plan}, indent=1, default=str))
    return 0 if result.status in ("completed", "dry_run") else 1


if __name__ == "__main__":
    sys.exit(main())
