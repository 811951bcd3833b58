"""One training run, whatever the trainer: the skeleton SFT and GRPO share.

Why this module exists: a run is more than ``trainer.train()``. Before it, the
output path is checked, the plan is made (and a dry run times one step without
training); around it, a run folder with ``run.json`` (status ``running``, then
``completed``, ``failed`` or ``interrupted`` with the reason), a tail-able
``training_log.txt`` (cut back on resume, so no step appears twice), resume from
the newest complete checkpoint, one retry with half the batch after a CUDA
out-of-memory error, a stop at the first NaN or infinite loss, an optional time
budget (``max_minutes``: the run ends at the step end nearest it, and run.json says
so), and an atomic ``final_model/``. ``run_training`` does all of that once; a ``Stage`` (helpers.sft,
helpers.grpo) says only what its trainer does differently.

Used by helpers.sft and helpers.grpo (02_sft_train, 04_grpo_train, ``python -m helpers.sft|grpo``).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from helpers import config as cfg
from helpers.distributed import (ProcessRecord, finish_processes, gather_records, is_main_process, replicas_in_sync,
                                 share_from_main)
from helpers.export import write_model_card
from helpers.runs import (RunPaths, TrainingLog, atomic_path, check_output_path, checkpoint_step, finish_run,
                          new_run_dir, output_root, start_run, truncate_training_log)


class RunSetupError(ValueError):
    """A run cannot start as asked (no usable row, a resume without its folder); the message names the parameter."""


@dataclass
class TrainingResult:
    """What a training call returns to the notebook."""

    status: str  # completed | failed | interrupted | dry_run
    run: RunPaths | None
    plan: dict
    log_rows: list[dict] = field(default_factory=list)
    samples: list[dict] = field(default_factory=list)  # GRPO: sampled completions with their rewards
    reason: str | None = None

    @property
    def final_model(self) -> Path | None:
        return self.run.final_model if self.run and self.run.final_model.is_dir() else None


class Stage:
    """What one trainer adds to the skeleton. helpers.sft and helpers.grpo each define one.

    ``load_data`` reads and checks the data and returns the plan, ``load_model`` loads the model; both run
    before any folder exists, so a bad input writes nothing. ``build`` returns the TRL trainer, ``dry_run``
    times one step, ``save_weights`` writes the adapter into a folder; the rest are what the run records
    and draws.
    """

    name = "stage"
    log_columns: list[str] = []
    metric_map: dict[str, str] = {}
    figure = ""  # the PNG written next to the run, from plot(rows)

    def load_data(self, settings) -> dict:
        raise NotImplementedError

    def load_model(self, settings) -> None:
        raise NotImplementedError

    def callbacks(self, settings, log: TrainingLog | None) -> list:
        return []

    def build(self, settings, output_dir: Path, callbacks: list):
        raise NotImplementedError

    def dry_run(self, trainer, settings, plan: dict, out_dir: Path) -> None:
        raise NotImplementedError

    def run_record(self) -> dict:
        """``{"data_files": ..., **extra fields of run.json}``."""
        return {"data_files": {}}

    def save_weights(self, trainer, folder: Path) -> None:
        # under FSDP run_training gathered the whole state dict first (each process holds a shard)
        trainer.model.save_pretrained(folder, safe_serialization=True,
                                      state_dict=getattr(trainer, "full_state_dict", None))

    def plot(self, rows: list[dict]):
        raise NotImplementedError

    def finish(self, trainer, run: RunPaths) -> dict:
        """Extra outputs once training ended; returns extra ``run.json`` fields."""
        return {}

    samples: list[dict] = []
    model = None
    tokenizer = None


# ---------------------------------------------------------------- pieces both trainers use
def load_rows(path: str | Path) -> tuple[list[dict], list]:
    """Rows of a QA file, validated by helpers.data; bad rows are dropped and returned for the report."""
    from helpers.data import load_qa_file

    result = load_qa_file(path, on_bad_rows="drop")
    return result.rows, result.bad_rows


def select_rows(rows: list[dict], limit: int, seed: int) -> list[dict]:
    """A seeded random subset of ``limit`` rows (all rows when limit is 0)."""
    if not limit or limit >= len(rows):
        return list(rows)
    return random.Random(seed).sample(rows, limit)


def lora_config(settings: cfg.CommonSettings):
    """PEFT LoRA settings from a preset."""
    from peft import LoraConfig

    return LoraConfig(r=settings.lora_r, lora_alpha=settings.lora_alpha, lora_dropout=settings.lora_dropout,
                      target_modules=list(settings.target_modules), bias="none", task_type="CAUSAL_LM")


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
        bf16=settings.dtype == "bfloat16" or settings.bf16_autocast,  # on CPU: torch.autocast per forward
        fp16=settings.dtype == "float16",
        activation_checkpointing=settings.gradient_checkpointing,  # transformers 5's name for it
        optim=settings.optim,
        use_cpu=settings.device == "cpu",
        report_to=[] if settings.report_to == "none" else [settings.report_to],  # tensorboard: <run>/runs/
        project="mathqa-workbook",  # trackio's project name (local unless a Space is configured)
        logging_nan_inf_filter=False,  # the default logs an average instead of a NaN loss, hiding it from the guard
        dataloader_num_workers=0,
        disable_tqdm=False,
    )


def free_memory() -> None:
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
        raise RunSetupError(f"resume: {resume} is not a checkpoint of this run ({run_root})")
    return str(path)


def open_run_dir(stage: str, output_dir, allow_outside_output: bool, dry_run: bool,
                 cpu: bool = True) -> RunPaths | None:
    """The run folder: a new ``output/<stage>_<date>`` or the given one (checked to be under output/).

    Only the main process creates it; under ``accelerate launch`` the other processes get its name from
    the main process (helpers.distributed), so all of them checkpoint into one folder. A dry run creates
    nothing. ``cpu``: the processes train on CPUs.
    """
    if dry_run:
        return None

    def create() -> str:
        if output_dir is None:
            return str(new_run_dir(stage).root)
        root = check_output_path(output_dir, allow_outside_output)
        root.mkdir(parents=True, exist_ok=True)
        return str(root)


    return RunPaths(Path(share_from_main(create, cpu)))


def save_final_model(run: RunPaths, tokenizer, save_weights) -> Path:
    """The one place ``final_model/`` is written, for every trainer: ``save_weights(folder)`` (the adapter in
    safetensors) and the tokenizer go to a temp folder, which is renamed only when both are complete."""
    with atomic_path(run.final_model) as tmp:  # no half-written model left behind
        tmp.mkdir()
        save_weights(tmp)
        tokenizer.save_pretrained(tmp)
    return run.final_model


# ---------------------------------------------------------------- the skeleton
DEFAULT_PROBE_DATA = Path(__file__).resolve().parents[1] / "data" / "training_data" / "grpo_val.json"


def probe_records(settings) -> list[dict]:
    """The fixed probe of a reward-stage run (``probe_every`` > 0): ``probe_size`` numeric rows of
    ``probe_data`` (default grpo_val.json, held out from the reward stage's prompts), the same for every run
    of a seed. Empty without a probe. A missing or empty file fails here, before any folder exists."""
    if not getattr(settings, "probe_every", 0):
        return []
    path = Path(settings.probe_data or DEFAULT_PROBE_DATA)
    if not path.is_file():
        raise RunSetupError(f"probe_data: {path} does not exist (the probe needs held-out prompts with answers)")
    from helpers.evaluate import is_numeric_record

    rows = [r for r in load_rows(path)[0] if is_numeric_record(r)]  # a malformed file: DataError
    if not rows:
        raise RunSetupError(f"probe_data: {path} has no valid row with a final_answer to probe on")
    return select_rows(rows, settings.probe_size, settings.seed)


def run_training(stage: Stage, settings, output_dir=None, resume=None, dry_run: bool = False, on_log_row=None,
                 allow_outside_output: bool = False, callbacks=(), halve_batch_on_oom: bool = False) -> TrainingResult:
    """Plan, dry run or train, with the run folder, resume, OOM retry, NaN guard and an atomic final_model/.

    The arguments are those of ``helpers.sft.train_sft`` and ``helpers.grpo.train_grpo``.
    """
    if output_dir is not None:
        check_output_path(output_dir, allow_outside_output)  # before any work: a bad path fails at once
    elif resume and not dry_run:
        raise RunSetupError("resume: give output_dir, the run folder to resume in")
    plan = stage.load_data(settings)  # a bad file or row fails here, before torch loads and before any folder exists
    probe_rows = probe_records(settings) if not dry_run else []
    if probe_rows:
        plan["probe"] = f"{len(probe_rows)} prompts every {settings.probe_every} steps; final_model/ is the best"

    import torch
    from transformers import set_seed

    from helpers.callbacks import NonFiniteLossCallback, ProbeCheckpoints, StepTimer, TimeBudget, TrainingLogCallback
    from helpers.memory import fix_mmap_threshold

    root = check_output_path(output_dir, allow_outside_output) if output_dir is not None else None
    checkpoint = find_resume_checkpoint(root, resume) if (resume and root and not dry_run) else None
    set_seed(settings.seed)
    if settings.device == "cpu" and fix_mmap_threshold(settings.mmap_threshold_kib):
        plan["mmap_threshold_kib"] = settings.mmap_threshold_kib  # before the model loads, as it was measured
    stage.load_model(settings)  # after the resume check: a checkpoint of another run fails before any model loads
    run = open_run_dir(stage.name, output_dir, allow_outside_output, dry_run, cpu=settings.device == "cpu")
    nan_guard, timer, budget, log_cb = NonFiniteLossCallback(), StepTimer(), TimeBudget(settings.max_minutes), None
    log = TrainingLog(run.training_log, stage.log_columns) if run is not None and is_main_process() else None
    own = [nan_guard, timer, budget, *stage.callbacks(settings, log)]
    probe = ProbeCheckpoints(probe_rows, stage.tokenizer, settings.probe_every, settings.probe_max_new_tokens) \
        if probe_rows else None
    if probe is not None:
        own.append(probe)
    if log is not None:
        log_cb = TrainingLogCallback(log, stage.metric_map, on_row=on_log_row)
        if resume:  # drop the rows the stopped run logged after its checkpoint; keep (and re-plot) the rest
            log_cb.rows.extend(truncate_training_log(run.training_log, checkpoint_step(checkpoint) if checkpoint else 0))
        own.append(log_cb)
    out_dir = run.root if run else output_root() / ".dry_run"
    trainer = stage.build(settings, out_dir, own + list(callbacks))
    process = ProcessRecord().attach(trainer)  # what this process trains on; run.json "processes"
    plan["trainable_parameters"], plan["total_parameters"] = trainer.model.get_nb_trainable_parameters()
    if plan["trainable_parameters"] <= 0:
        raise RuntimeError(f"{stage.name} would train nothing: the model has no trainable parameters")
    if dry_run:
        stage.dry_run(trainer, settings, plan, out_dir)
        plan["peak_memory_gb"] = peak_memory_gb(settings.device)
        shutil.rmtree(out_dir, ignore_errors=True)
        return TrainingResult("dry_run", None, plan, samples=list(stage.samples))

    if is_main_process():
        record = stage.run_record()
        start_run(run, stage.name, settings.preset, cfg.as_dict(settings), record.pop("data_files"), settings.seed,
                  extra={"plan": plan, "resumed_from": checkpoint, **record})
    status, reason, smaller = "completed", None, None
    budget.start()
    try:
        trainer.train(resume_from_checkpoint=checkpoint)
    except KeyboardInterrupt:
        status, reason = "interrupted", "stopped by the user (KeyboardInterrupt); resume with resume='latest'"
    except torch.OutOfMemoryError as err:
        from helpers.faults import halved_batch, oom_advice

        status, reason = "failed", oom_advice(stage.name, settings, err)
        smaller = halved_batch(settings) if halve_batch_on_oom else None
    except Exception as err:  # noqa: BLE001 - recorded in run.json, then re-raised
        if is_main_process():
            finish_run(run, "failed", f"{type(err).__name__}: {err}")
        raise
    if nan_guard.failure:
        status, reason = "failed", nan_guard.failure

    if smaller is not None:  # out of memory: once more from the same start, half the batch, twice the accumulation
        del trainer
        stage.model = None
        free_memory()
        if log_cb is not None:
            truncate_training_log(run.training_log, checkpoint_step(checkpoint) if checkpoint else 0)
        return run_training(stage, smaller, run.root if run else output_dir, checkpoint, dry_run, on_log_row,
                            allow_outside_output, callbacks, halve_batch_on_oom=False)
    rows = log_cb.rows if log_cb else []
    processes = gather_records(process)  # every process takes part; the main process gets all records
    sharded = bool(getattr(trainer, "is_fsdp_enabled", False))
    if status == "completed" and sharded:  # FSDP: the whole state dict, gathered by every process together
        trainer.full_state_dict = trainer.accelerator.get_state_dict(trainer.model)
    if probe is not None and status == "completed":
        probe.restore_best(trainer.model)  # final_model/ is the best probe's weights, on every process
    if is_main_process():
        step = trainer.state.global_step
        if status == "completed":
            try:
                save_final_model(run, stage.tokenizer, lambda folder: stage.save_weights(trainer, folder))
            except BaseException as err:
                finish_run(run, "failed", f"saving final_model failed ({type(err).__name__}: {err}); "
                           "the checkpoints are intact: resume with resume='latest'", global_step=step)
                raise
        if rows:
            stage.plot(rows).savefig(run.figure(stage.figure), dpi=110, bbox_inches="tight")
        finish_run(run, status, reason, global_step=step, train_seconds=round(sum(timer.times), 1),
                   wall_minutes=round(budget.elapsed_minutes(), 2), stopped_by_budget=budget.stopped,
                   peak_memory_gb=peak_memory_gb(settings.device), processes=processes,
                   replicas_in_sync=None if sharded else replicas_in_sync(processes),
                   **({"probe": probe.record()} if probe is not None and probe.history else {}),
                   **stage.finish(trainer, run))
        write_model_card(run.root)  # final_model/README.md and a portable base in adapter_config.json
    if status == "interrupted":
        raise KeyboardInterrupt(reason)
    return TrainingResult(status, run, plan, rows, list(stage.samples), reason)


# ---------------------------------------------------------------- command line
class ArgumentParser(argparse.ArgumentParser):
    """argparse with a command line's one-line errors: ``error: ...`` on stderr, exit status 2."""

    def error(self, message):
        fail(message)


def fail(message: str):
    """Print ``error: <message>`` (one line) and exit with status 2: a user error, not a bug."""
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    raise SystemExit(2)


def user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean bad input (data, paths, parameters, a model that is not there), never a bug."""
    from helpers.data import DataError
    from helpers.models import ModelLoadError

    return DataError, ModelLoadError, FileNotFoundError, RunSetupError


def build_parser(stage: str = "sft") -> argparse.ArgumentParser:
    """Flags for every preset field (``--batch-size 4``), plus data, output and run control."""
    parser = ArgumentParser(prog=f"python -m helpers.{stage}", description=f"{stage.upper()} with LoRA.")
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
        raise RunSetupError("resume: give --output-dir, the run folder to resume in")
    if args.resume and args.resume != "latest":
        root = Path(args.output_dir).resolve()
        if root not in Path(args.resume).resolve().parents:
            raise RunSetupError(f"resume: {args.resume} is not a checkpoint of this run ({root})")


def cli_main(stage: str, train, argv=None) -> int:
    """``python -m helpers.<stage>``: parse, check, ``train(settings, args)``, print the result as JSON.

    User errors (bad data, paths or parameters) end in one line ``error: ...`` and exit status 2, before
    anything is written; anything else is a bug and keeps its traceback.
    """
    parser = build_parser(stage)
    args = parser.parse_args(argv)
    try:
        settings = cfg.resolve(args.config, stage, **cfg.overrides_from_args(args, stage))
        check_cli_paths(args)
    except (TypeError, ValueError) as err:
        fail(str(err))
    try:
        result = train(settings, args)
    except user_errors() as err:
        fail(str(err))
    if is_main_process():
        print(json.dumps({"status": result.status, "run": str(result.run.root) if result.run else None,
                          "reason": result.reason, "plan": result.plan}, indent=1, default=str))
    finish_processes()
    return 0 if result.status in ("completed", "dry_run") else 1
