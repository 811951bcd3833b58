"""Supervised fine-tuning with LoRA, on TRL's SFTTrainer, set up for the device at hand.

Why this module exists: TRL already does the training; this module decides the
few things that make it fast and honest on this workbook's data:

- prompt/completion conversations, so the loss is on the worked solution only
  and the prompt is exactly what evaluation sends (one plain user message
  through the tokenizer's chat template);
- batches of similar lengths (little padding, attention per example);
- rows longer than ``max_length`` are dropped and counted, never cut, because the
  final answer sits at the end;
- float32 weights and no gradient checkpointing on CPU (TRL's GPU defaults are 14x
  slower there), with bf16 matmuls under autocast where the CPU has AVX512-BF16 or
  AMX (1.9x the tokens/s with dropout off); bf16 and QLoRA options on CUDA
  (helpers.config);
- loss curves next to the run; the run folder, resume, dry run and the rest of
  what every trainer shares are helpers.training.

The same function runs from 02_sft_train and from the command line
(``python -m helpers.sft --config default ...``), also under ``accelerate launch``.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

from helpers import config as cfg
from helpers.answers import chat_messages
from helpers.distributed import effective_batch, launch_notes
from helpers.memory import apply_memory_savers
from helpers.training import (RunSetupError, Stage, TrainingResult, cli_main, load_rows, lora_config, run_training,
                              select_rows, trainer_arguments)

LOG_COLUMNS = ["step", "loss", "val_loss", "lr", "grad_norm", "tokens_per_s", "elapsed_s"]


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


def build_sft_trainer(settings: cfg.SFTSettings, model, tokenizer, train_rows, val_rows, output_dir,
                      callbacks=()):
    """TRL's SFTTrainer with LoRA, completion-only loss and length-grouped batches."""
    from datasets import Dataset
    from peft import PeftModel
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
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=val_ds,
        processing_class=tokenizer,
        # a model that already carries its LoRA (helpers.rejection_sft's rounds) trains that one
        peft_config=None if isinstance(model, PeftModel) else lora_config(settings),
        callbacks=list(callbacks),
    )
    return apply_memory_savers(trainer, settings.max_tokens_per_pass)  # same loss and gradient, less memory


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


class SFTStage(Stage):
    """What SFT adds to the training skeleton: rows fitted to max_length, SFTTrainer, one timed step."""

    name, log_columns, figure = "sft", LOG_COLUMNS, "loss_curves"
    metric_map = {"loss": "loss", "lr": "learning_rate", "grad_norm": "grad_norm"}

    def __init__(self, train_data, val_data=None):
        self.train_data, self.val_data = train_data, val_data

    def load_data(self, settings) -> dict:
        from helpers.models import load_tokenizer

        train_rows, bad_train = load_rows(self.train_data)
        val_rows, bad_val = load_rows(self.val_data) if self.val_data else ([], [])
        train_rows = select_rows(train_rows, settings.max_train_examples, settings.seed)
        val_rows = select_rows(val_rows, settings.max_val_examples, settings.seed)
        self.tokenizer = load_tokenizer(settings.model_name, padding_side="right")
        self.train_rows, too_long, lengths = fit_rows(train_rows, self.tokenizer, settings.max_length)
        self.val_rows, val_too_long, _ = fit_rows(val_rows, self.tokenizer, settings.max_length)
        if not self.train_rows:
            raise RunSetupError(f"train_data: no row of {self.train_data} fits max_length={settings.max_length} tokens")
        batch = effective_batch(settings)  # per-device batch x processes x accumulation
        steps_per_epoch = math.ceil(len(self.train_rows) / batch["effective_batch"])
        return {
            "preset": settings.preset, "device": settings.device,
            "train_examples": len(self.train_rows), "val_examples": len(self.val_rows),
            "train_tokens": sum(lengths), "mean_tokens_per_example": round(sum(lengths) / len(lengths), 1),
            "dropped_too_long": len(too_long) + len(val_too_long), "too_long_examples": too_long[:10],
            "bad_rows_dropped": len(bad_train) + len(bad_val), **batch,
            "steps": settings.max_steps if settings.max_steps > 0 else math.ceil(steps_per_epoch * settings.epochs),
            "notes": list(settings.notes) + launch_notes(),
        }

    def load_model(self, settings) -> None:
        from helpers.models import load_base_model

        self.model = load_base_model(settings.model_name, dtype=settings.dtype, load_in_4bit=settings.load_in_4bit,
                                     device=settings.device, attn_implementation=settings.attn_implementation)

    def build(self, settings, output_dir, callbacks):
        return build_sft_trainer(settings, self.model, self.tokenizer, self.train_rows, self.val_rows, output_dir,
                                 callbacks)

    def dry_run(self, trainer, settings, plan, out_dir) -> None:
        step_s = measure_one_step(trainer) * settings.grad_accum
        plan["seconds_per_step_measured"] = round(step_s, 2)
        plan["estimated_minutes"] = round(step_s * plan["steps"] / 60, 1)

    def run_record(self) -> dict:
        return {"data_files": {"train": self.train_data} | ({"val": self.val_data} if self.val_data else {})}

    def plot(self, rows):
        from helpers.plots import plot_sft_losses

        return plot_sft_losses(rows)


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
) -> TrainingResult:
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
    return run_training(SFTStage(train_data, val_data), settings, output_dir, resume, dry_run, on_log_row,
                        allow_outside_output, callbacks, halve_batch_on_oom)


def main(argv=None) -> int:
    """``python -m helpers.sft --config default --train-data ...`` (flags: ``--help``)."""
    return cli_main("sft", lambda settings, args: train_sft(
        settings, args.train_data, args.val_data, args.output_dir, args.resume, args.dry_run,
        allow_outside_output=args.allow_outside_output, halve_batch_on_oom=args.halve_batch_on_oom), argv)


if __name__ == "__main__":
    sys.exit(main())
