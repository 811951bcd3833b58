"""Finding checkpoints that are safe to resume from.

Why this module exists: a run killed while saving leaves a checkpoint folder
with a truncated adapter file or no trainer state. transformers would resume
from the newest folder and crash (or worse, load garbage). Here a checkpoint
counts only when its trainer state parses and its adapter weights open; broken
ones are skipped with a warning and the previous complete one is used.

Used by helpers.sft and helpers.grpo (``resume="latest"``).
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_problem(folder: Path) -> str | None:
    """Why a checkpoint folder cannot be resumed from, or None when it is complete."""
    state = folder / "trainer_state.json"
    if not state.is_file():
        return "trainer_state.json is missing"
    try:
        json.loads(state.read_text())
    except ValueError as err:
        return f"trainer_state.json does not parse ({err})"
    weights = folder / "adapter_model.safetensors"
    if not weights.is_file():
        return "adapter_model.safetensors is missing"
    try:
        from safetensors import safe_open

        with safe_open(str(weights), framework="pt") as fh:
            for key in fh.keys():
                fh.get_tensor(key)
    except Exception as err:  # noqa: BLE001 - any read failure means the file is damaged
        return f"adapter_model.safetensors is damaged ({type(err).__name__})"
    return None


def list_checkpoints(run_root: str | Path) -> list[Path]:
    """checkpoint-N folders of a run, highest step first."""
    found = []
    for child in Path(run_root).iterdir() if Path(run_root).is_dir() else []:
        match = _CHECKPOINT.match(child.name)
        if match and child.is_dir():
            found.append((int(match.group(1)), child))
    return [p for _, p in sorted(found, reverse=True)]


def latest_complete_checkpoint(run_root: str | Path) -> Path | None:
    """The newest checkpoint that can be resumed from; broken newer ones are skipped with a warning."""
    for folder in list_checkpoints(run_root):
        problem = checkpoint_problem(folder)
        if problem is None:
            return folder
        warnings.warn(f"skipping {folder.name}: {problem}; trying the previous checkpoint", stacklevel=2)
    return None
