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
    """Stops training at the step end nearest to ``minutes`` of wall time (0: no budget).

    Why: the reward stage's methods are compared at the same CPU minutes (05_compare's budget-matched
    table), and a step count does not give that: a GRPO step samples, a fine-tuning step does not. The clock
    starts when ``start()`` is called (helpers.training.run_training, just before ``train``), so sampling,
    rounds and evaluation passes all count. At each step end the run stops if one more step, expected to
    take as long as the median of the last ``WINDOW`` steps, would end further past the budget than stopping
    now ends short of it: a run of 70-second GRPO steps then ends within half a step of its budget instead
    of up to a whole step past it (2026-12-03: an 8-minute GRPO run ended at 9.4). ``stopped`` says whether
    the budget, not the plan, ended the run.
    """

    WINDOW = 5

    def __init__(self, minutes: float = 0.0):
        self.minutes, self.started, self.stopped = float(minutes or 0.0), None, False
        self.last_step_end, self.step_seconds = None, []

    def start(self) -> None:
        self.started = self.last_step_end = time.monotonic()
        self.step_seconds = []

    def elapsed_minutes(self) -> float:
        return (time.monotonic() - self.started) / 60 if self.started is not None else 0.0

    def spent(self) -> bool:
        """True once the budget is used up (never without a budget)."""
        return bool(self.minutes) and self.elapsed_minutes() >= self.minutes

    def expected_step_minutes(self) -> float:
        """The median of the last ``WINDOW`` step times, in minutes (0 before the first step ends)."""
        recent = sorted(self.step_seconds[-self.WINDOW:])
        return recent[len(recent) // 2] / 60 if recent else 0.0

    def on_step_end(self, args, state, control, **kwargs):
        now = time.monotonic()
        if self.last_step_end is not None:
            self.step_seconds.append(now - self.last_step_end)
        self.last_step_end = now
        if self.minutes and self.elapsed_minutes() + self.expected_step_minutes() / 2 >= self.minutes:
            self.stopped = True
            control.should_training_stop = True
            control.should_save = False  # final_model/ is written from the weights as they are
        return control


class ProbeCheckpoints(TrainerCallback):
    """Greedy accuracy on a fixed probe every ``every`` steps; at the end the model holds the best probe's weights.

    Why: a reward stage can drift off (seven GRPO recipes here lost up to 8.7 points), and the last step is
    not the best one by any measure. The probe is a fixed sample of held-out reward-stage prompts (helpers.training
    ``probe_records``: ``grpo_val.json``, never the transfer set, so choosing by it is no selection on the
    figure the workbook reports). It is scored when training starts (the starting policy), every ``every``
    steps, and at the end of training (each round's end in rejection_sft); the trainable weights of the best
    score are kept in memory (ties go to the later step, so a flat probe keeps the trained end) and copied
    back by ``restore_best`` once the run is over, before helpers.training writes ``final_model/``.
    ``record()`` goes into run.json; a best step of 0 means no step beat the starting policy and
    ``final_model/`` is that policy. Probe time counts in a ``max_minutes`` budget, as it does for every
    method compared. After a resume the probe starts again from the resumed step.
    """

    def __init__(self, records: list[dict], tokenizer, every: int, max_new_tokens: int = 192, batch_size: int = 32):
        self.records, self.tokenizer, self.every = records, tokenizer, int(every)
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size
        self.history, self.best_step, self.best_accuracy, self.best_weights = [], None, -1.0, None
        self.restored = False

    def probe(self, model, step: int) -> None:
        from helpers.evaluate import GenerationSettings, generate, score_numeric

        start, side = time.perf_counter(), self.tokenizer.padding_side
        settings = GenerationSettings(max_new_tokens=self.max_new_tokens, batch_size=self.batch_size)
        outputs = generate(model, self.tokenizer, [r["question"] for r in self.records], settings, progress=False)
        self.tokenizer.padding_side = side
        right = sum(score_numeric(o[0]["text"], r["final_answer"], strict=True) for o, r in zip(outputs, self.records))
        accuracy = right / len(self.records)
        self.history.append({"step": step, "right": right, "n": len(self.records), "accuracy": round(accuracy, 4),
                             "seconds": round(time.perf_counter() - start, 1)})
        if accuracy >= self.best_accuracy:
            self.best_step, self.best_accuracy = step, accuracy
            self.best_weights = {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if model is not None and not self.history:
            self.probe(model, state.global_step)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if model is not None and self.every and state.global_step % self.every == 0:
            self.probe(model, state.global_step)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if model is not None and self.history and self.history[-1]["step"] != state.global_step:
            self.probe(model, state.global_step)  # the last step (a rejection round's end, each round)

    def restore_best(self, model) -> None:
        """Copy the best probe's weights back (helpers.training.run_training, once, after the whole run)."""
        if self.history and self.best_step != self.history[-1]["step"]:
            import torch

            with torch.no_grad():
                for name, value in model.named_parameters():
                    if name in self.best_weights:
                        value.copy_(self.best_weights[name])
            self.restored = True

    def record(self) -> dict:
        """The run.json entry: every probe, the step final_model/ holds, and whether it is not the last."""
        last = self.history[-1]["step"] if self.history else None
        return {"every": self.every, "n": len(self.records), "max_new_tokens": self.max_new_tokens,
                "history": self.history, "best_step": self.best_step, "last_step": last,
                "final_model": (f"step {self.best_step}, the best probe (the last step, {last}, scored "
                                f"{self.history[-1]['accuracy']:.1%} against {self.best_accuracy:.1%})")
                if self.restored else f"the last step, {last}, which is also the best probe"}
