"""Trainer callbacks shared by SFT and GRPO: the training log, fault checks, live plots.

Why this module exists: transformers' Trainer already logs metrics, saves
checkpoints and resumes; what it does not do is write a plain-text log a person
can ``tail -f``, stop a run whose loss became NaN before it writes a final
model, or hand each new log line to a plot in the notebook. These small
callbacks add exactly that and nothing else.

Used in 02_sft_train and 04_grpo_train (through helpers.sft / helpers.grpo).
"""

from __future__ import annotations

import math
import time

from transformers import TrainerCallback

from helpers.runs import TrainingLog


class TrainingLogCallback(TrainerCallback):
    """Writes one line per logging step to ``training_log.txt`` (main process only).

    ``column_map`` maps log columns to the Trainer's metric names; tokens/s is
    computed from the Trainer's count of non-padding input tokens.
    """

    def __init__(self, log: TrainingLog, column_map: dict[str, str], on_row=None):
        self.log = log
        self.column_map = column_map
        self.on_row = on_row
        self.start = time.time()
        self.last_time = self.start
        self.last_tokens = 0
        self.last_eval: dict = {}
        self.rows: list[dict] = []

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.time() - (self.rows[-1]["elapsed_s"] if self.rows else 0.0)
        self.last_time = time.time()
        self.last_tokens = state.num_input_tokens_seen or 0

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if not state.is_world_process_zero:
            return
        if any(k.startswith("eval_") for k in logs) and "loss" not in logs:
            self.last_eval = {k: v for k, v in logs.items()}
            row = {"step": state.global_step, "val_loss": logs.get("eval_loss"),
                   "elapsed_s": round(time.time() - self.start, 1)}
            self.log.write(row)
            self.rows.append(row)
            if self.on_row:
                self.on_row(row, self.rows)
            return
        if "loss" not in logs and "reward" not in logs:
            return
        now = time.time()
        tokens = state.num_input_tokens_seen or 0
        row = {"step": state.global_step}
        for column, metric in self.column_map.items():
            if metric in logs:
                row[column] = logs[metric]
        if tokens and now > self.last_time:
            row["tokens_per_s"] = round((tokens - self.last_tokens) / (now - self.last_time), 1)
        row["elapsed_s"] = round(now - self.start, 1)
        self.last_time, self.last_tokens = now, tokens
        self.log.write(row)
        self.rows.append(row)
        if self.on_row:
            self.on_row(row, self.rows)


class NonFiniteLossCallback(TrainerCallback):
    """Stops training at the first NaN or infinite loss and remembers why."""

    def __init__(self, metric: str = "loss"):
        self.metric = metric
        self.failure: str | None = None

    def on_log(self, args, state, control, logs=None, **kwargs):
        value = (logs or {}).get(self.metric)
        if value is not None and not math.isfinite(value):
            self.failure = (
                f"{self.metric} became {value} at step {state.global_step}: the run stopped without a final model. "
                "Lower the learning rate, keep float32 on CPU, or check the data for empty answers."
            )
            control.should_training_stop = True
            control.should_save = False
        return control


class StepTimer(TrainerCallback):
    """Measures wall time per optimizer step (the dry-run estimate and the benchmarks use it)."""

    def __init__(self):
        self.times: list[float] = []
        self._t0 = None

    def on_step_begin(self, args, state, control, **kwargs):
        self._t0 = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self._t0 is not None:
            self.times.append(time.perf_counter() - self._t0)


class TimeBudget(TrainerCallback):
    """Stops training at the first step that ends after ``minutes`` of wall time (0: no budget).

    Why: the reward stage's methods are compared at the same CPU minutes (05_compare's budget-matched
    table), and a step count does not give that: a GRPO step samples, a fine-tuning step does not. The clock
    starts when ``start()`` is called (helpers.training.run_training, just before ``train``), so sampling,
    rounds and evaluation passes all count. ``stopped`` says whether the budget, not the plan, ended the run.
    """

    def __init__(self, minutes: float = 0.0):
        self.minutes, self.started, self.stopped = float(minutes or 0.0), None, False

    def start(self) -> None:
        self.started = time.monotonic()

    def elapsed_minutes(self) -> float:
        return (time.monotonic() - self.started) / 60 if self.started is not None else 0.0

    def spent(self) -> bool:
        """True once the budget is used up (never without a budget)."""
        return bool(self.minutes) and self.elapsed_minutes() >= self.minutes

    def on_step_end(self, args, state, control, **kwargs):
        if self.spent():
            self.stopped = True
            control.should_training_stop = True
            control.should_save = False  # final_model/ is written from the weights as they are
        return control
