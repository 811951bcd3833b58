"""Several processes under ``accelerate launch``: one run folder, and a record of what each process did.

Why this module exists: ``python -m helpers.sft`` and ``python -m helpers.grpo`` run unchanged under
``accelerate launch`` (DDP: every process trains a full copy on its own batches and the gradients are
averaged). The Trainer already writes checkpoints once and keeps the copies in step; what it does not do is
agree on one run folder (each process would create ``sft_<date>``, ``_2``, ...), and nothing shows afterwards
that every process took part and that the copies stayed equal. Here the main process creates the folder and
tells the others its name, and each process keeps a small record (the rows it trained on, for GRPO which
prompts, and a fingerprint of its adapter after every step) that the main process writes into ``run.json``
under ``processes``. With one process, as in the notebooks, only that record is added.

Used by helpers.sft and helpers.grpo.
"""

from __future__ import annotations

import hashlib
import os
import types


def world_size() -> int:
    """How many processes train together (``WORLD_SIZE``, set by ``accelerate launch``; 1 otherwise)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """True in the process that writes the run folder (rank 0), and whenever there is only one."""
    return int(os.environ.get("RANK", "0")) == 0


def share_from_main(make, cpu: bool):
    """``make()`` on the main process, its result (a picklable value) on every process.

    With one process it is just ``make()``. With several, accelerate's process group is started here (the
    Trainer reuses it later) and the main process's value is broadcast. ``cpu``: the processes train on
    CPUs (gloo), as the Trainer will be told by ``use_cpu``.
    """
    if world_size() == 1:
        return make()
    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list

    state = PartialState(cpu=cpu)
    value = [make() if state.is_main_process else None]
    broadcast_object_list(value)
    return value[0]


def effective_batch(settings) -> dict:
    """The plan's batch fields: rows (GRPO: samples) per optimizer step over all processes, and how they add up.

    >>> from types import SimpleNamespace
    >>> effective_batch(SimpleNamespace(batch_size=8, grad_accum=2))
    {'effective_batch': 16, 'batch': '8 per device x 1 processes x 2'}
    """
    processes = world_size()
    return {"effective_batch": settings.batch_size * processes * settings.grad_accum,
            "batch": f"{settings.batch_size} per device x {processes} processes x {settings.grad_accum}"}


def launch_notes() -> list[str]:
    """A note for the plan when ``accelerate launch --cpu --num_processes N`` started this run as one process.

    accelerate 1.15 launches several CPU processes only through mpirun (huggingface/accelerate#2741,
    #2493); without it ``--cpu`` runs the script once, with ``MASTER_ADDR`` set and no ``WORLD_SIZE``.
    """
    if world_size() == 1 and os.environ.get("MASTER_ADDR") and \
            os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true"):
        return ["accelerate launch --cpu started one process, whatever --num_processes says (several CPU processes "
                "need mpirun); `torchrun --nproc_per_node N -m helpers.<stage> ...` starts N processes (gloo)."]
    return []


def prompt_id(text: str) -> str:
    """A short stable id of a prompt's text: what run.json's per-step ``prompts`` lists (a question's own id)."""
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def _prompt_key(row) -> str:
    """The id of a GRPO prompt row (its last message), to compare prompts across processes."""
    prompt = row.get("prompt") if isinstance(row, dict) else None
    return prompt_id(prompt[-1]["content"] if isinstance(prompt, list) and prompt else str(prompt))


class ProcessRecord:
    """What this process trained on, and a fingerprint of its adapter after every optimizer step.

    ``attach(trainer)`` counts the rows of every batch this process trains on (for GRPO: the sampled rows
    and, per step, the ids of their prompts in order, as ``[id, samples in a row]``). After each step the trainable weights are reduced to
    two float64 numbers (sum and sum of squares), on the device, so replicas that are equal give equal
    fingerprints and any drift shows. ``as_dict()`` is what lands in ``run.json``.
    """

    def __init__(self):
        self.rows = 0
        self.prompts: list[list[list]] = []
        self.fingerprints: list[list[float]] = []
        self._model = None
        self._step_prompts: list[str] = []

    def attach(self, trainer) -> "ProcessRecord":
        self._model = trainer.model
        step = trainer.training_step
        record = self

        def training_step(self, model, inputs, num_items_in_batch=None):
            if isinstance(inputs, list):  # GRPO: the raw prompt rows of this process, each repeated per sample
                record.rows += len(inputs)
                record._step_prompts.extend(_prompt_key(r) for r in inputs)
            else:
                ids = inputs.get("input_ids")
                position = inputs.get("position_ids")
                if position is not None and ids is not None and ids.shape[0] == 1:  # padding-free: one flat row
                    record.rows += int((position == 0).sum())
                elif ids is not None:
                    record.rows += int(ids.shape[0])
            return step(model, inputs, num_items_in_batch)

        trainer.training_step = types.MethodType(training_step, trainer)
        from transformers import TrainerCallback

        class StepEnd(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                record.step_end()

        trainer.add_callback(StepEnd())
        return self

    def step_end(self) -> None:
        """After an optimizer step: the adapter's fingerprint, and the prompts of the step (GRPO)."""
        import torch

        if self._model is None:
            return
        with torch.no_grad():
            params = [p for p in self._model.parameters() if p.requires_grad]
            total = sum(p.detach().double().sum() for p in params)
            squares = sum((p.detach().double() ** 2).sum() for p in params)
        self.fingerprints.append([float(total), float(squares)])
        if self._step_prompts:  # run-length encoded: [prompt id, samples in a row]; whole groups have n == G
            runs: list[list] = []
            for key in self._step_prompts:
                if runs and runs[-1][0] == key:
                    runs[-1][1] += 1
                else:
                    runs.append([key, 1])
            self.prompts.append(runs)
            self._step_prompts = []

    def as_dict(self) -> dict:
        out = {"rank": int(os.environ.get("RANK", "0")), "rows": self.rows, "steps": len(self.fingerprints),
               "adapter_fingerprints": self.fingerprints}
        if self.prompts:
            out["prompts"] = self.prompts
        return out


def gather_records(record: ProcessRecord) -> list[dict] | None:
    """Every process's record, in rank order, on the main process (None elsewhere). All processes must call it."""
    if world_size() == 1:
        return [record.as_dict()]
    from accelerate.utils import gather_object

    records = gather_object([record.as_dict()])
    return sorted(records, key=lambda r: r["rank"]) if is_main_process() else None


def finish_processes() -> None:
    """All processes wait for the main one to finish writing, then leave the process group together.

    Without this a process that is done first exits while gloo still holds the group, and its C++ side can
    abort at exit ("terminate called without an active exception"), failing the whole launch after a run
    that was written in full. With one process it does nothing.
    """
    if world_size() == 1:
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def replicas_in_sync(records: list[dict]) -> bool:
    """Whether every process's adapter had the same fingerprint after every step."""
    return all(r["adapter_fingerprints"] == records[0]["adapter_fingerprints"] for r in records)
