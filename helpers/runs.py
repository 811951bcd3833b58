"""Run folders: where each training or evaluation run keeps everything it made.

Why this module exists: notebooks hand work to each other through files, never
through kernel state. A run folder (``output/sft_20261126/``, then ``_2``,
``_3`` the same day, as in the seed) holds ``run.json`` (what was asked, what
was resolved, package versions, data hashes, seed, git commit, times, status),
a ``training_log.txt`` a person can ``tail -f``, checkpoints, the final adapter
and the figures. Later notebooks find runs by reading ``run.json``.

Introduced in 00_setup_check; used by 02-06.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from helpers.models import REPO_ROOT

STATUSES = ("running", "completed", "failed", "interrupted")
_PACKAGES = ("torch", "transformers", "peft", "trl", "accelerate", "datasets", "bitsandbytes")


def output_root() -> Path:
    """``$WORKBOOK_OUTPUT`` or ``<repo>/output``: every notebook writes below it."""
    return Path(os.environ.get("WORKBOOK_OUTPUT", REPO_ROOT / "output")).resolve()


def check_output_path(path: str | Path, allow_outside: bool = False, name: str = "output_dir") -> Path:
    """Refuse an output path outside ``output/`` unless the user allows it explicitly."""
    resolved = Path(path).expanduser().resolve()
    root = output_root()
    if not allow_outside and resolved != root and root not in resolved.parents:
        raise ValueError(f"{name}: {path} is outside {root}; pass allow_outside_output=True to write there anyway")
    return resolved


@dataclass(frozen=True)
class RunPaths:
    """The files of one run folder."""

    root: Path

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def run_json(self) -> Path:
        return self.root / "run.json"

    @property
    def training_log(self) -> Path:
        return self.root / "training_log.txt"

    @property
    def final_model(self) -> Path:
        return self.root / "final_model"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    def figure(self, name: str) -> Path:
        return self.root / f"{name}.png"


def new_run_dir(stage: str, root: str | Path | None = None, date: dt.date | None = None) -> RunPaths:
    """Create ``<root>/<stage>_<YYYYMMDD>`` (then ``_2``, ``_3``...) and return its paths."""
    base = Path(root) if root is not None else output_root()
    base.mkdir(parents=True, exist_ok=True)
    stamp = (date or dt.date.today()).strftime("%Y%m%d")
    for n in range(1, 10_000):
        folder = base / (f"{stage}_{stamp}" if n == 1 else f"{stage}_{stamp}_{n}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return RunPaths(folder)
    raise RuntimeError(f"too many {stage} runs under {base} today")


def package_versions() -> dict:
    """Versions of Python and the packages whose behaviour the results depend on."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def machine_description() -> dict:
    """The machine a run trained on: CPU model, cores, memory and GPU (for run.json and the model card)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        memory_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        memory_gb = None
    gpu = None
    if "torch" in sys.modules and sys.modules["torch"].cuda.is_available():
        gpu = sys.modules["torch"].cuda.get_device_name(0)
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": memory_gb, "gpu": gpu, "system": platform.system()}


def git_commit() -> str | None:
    """The repository's commit, with ``+dirty`` when there are uncommitted changes; None outside git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                                timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (commit + ("+dirty" if dirty else "")) if commit else None


# ---------------------------------------------------------------- files that are never half-written
# The one file hash and the one write-to-temp-then-rename of the workbook: data files, run records, model
# cards, GGUF files, final_model/ and export folders all go through these.
def sha256_file(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes: the data hashes in run.json, the GGUF hash in export.json."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_temp(folder: str | Path, name: str, payload: bytes) -> Path:
    """``payload`` in a new hidden file ``.<name>.<random>.tmp`` in ``folder``, synced to disk; its path.

    The first half of ``write_atomic``; helpers.data.write_training_files writes every file this way
    before it renames any of them (all or nothing)."""
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600 files; outputs are meant to be read by others
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def write_atomic(path: str | Path, payload: bytes | str) -> str:
    """Write ``payload`` (text as UTF-8) to ``path`` so that it is never half-written; its SHA-256.

    A temp file in the same folder, then ``os.replace``: a reader sees the old file or the new one, and
    a crash leaves the old one (and no temp file) behind.
    """
    path = Path(path)
    data = payload.encode("utf-8") if isinstance(payload, str) else payload
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = write_temp(path.parent, path.name, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """``write_atomic`` for writers that need a path (``save_pretrained``, the GGUF writer, ``np.save``).

    Yields a hidden temp path next to ``path`` (``.<name>.tmp-<pid>``) for the block to write a file or a
    whole folder at; when the block ends without an error the temp replaces ``path`` (an old folder there
    is removed first), otherwise the temp is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    _remove(tmp)
    try:
        yield tmp
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)  # os.replace cannot put a folder over a non-empty one
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def write_json_atomic(path: str | Path, data) -> str:
    """``data`` as JSON (indent=1, UTF-8) through ``write_atomic``; paths and other odd values are written as
    text. For run records; helpers.data.write_json_atomic is the strict form for data files."""
    return write_atomic(path, json.dumps(data, indent=1, ensure_ascii=False, default=str) + "\n")


def _now() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


def read_run(path: str | Path) -> dict:
    """``run.json`` of a run folder (or the file itself)."""
    path = Path(path)
    return json.loads((path / "run.json" if path.is_dir() else path).read_text())


def start_run(paths: RunPaths, stage: str, preset: str, settings: dict, data_files: dict | None = None,
              seed: int | None = None, extra: dict | None = None) -> dict:
    """Write ``run.json`` with status ``running`` and everything needed to reproduce the run."""
    record = {
        "stage": stage,
        "run": paths.name,
        "status": "running",
        "reason": None,
        "preset": preset,
        "settings": settings,
        "seed": seed,
        "data_files": {k: {"path": str(v), "sha256": sha256_file(v)} for k, v in (data_files or {}).items()},
        "versions": package_versions(),
        "machine": machine_description(),
        "git_commit": git_commit(),
        "command": " ".join(sys.argv[:1] + sys.argv[1:]) if sys.argv else None,
        "started": _now(),
        "ended": None,
    }
    record.update(extra or {})
    write_json_atomic(paths.run_json, record)
    return record


def update_run(paths: RunPaths, **fields) -> dict:
    """Merge ``fields`` into ``run.json`` (atomically)."""
    record = read_run(paths.root)
    record.update(fields)
    write_json_atomic(paths.run_json, record)
    return record


def finish_run(paths: RunPaths, status: str, reason: str | None = None, **fields) -> dict:
    """Record the end of a run: ``completed``, ``failed`` or ``interrupted``, with the reason."""
    if status not in STATUSES:
        raise ValueError(f"status: must be one of {', '.join(STATUSES)}; got {status!r}")
    return update_run(paths, status=status, reason=reason, ended=_now(), **fields)


def find_runs(stage: str, root: str | Path | None = None, status: str | None = "completed") -> list[Path]:
    """Run folders of a stage, newest first (by start time in run.json), optionally by status."""
    base = Path(root) if root is not None else output_root()
    found = []
    for run_json in base.glob(f"{stage}_*/run.json"):
        try:
            record = json.loads(run_json.read_text())
        except (OSError, ValueError):
            continue
        if record.get("stage") != stage or (status and record.get("status") != status):
            continue
        found.append((record.get("started") or "", run_json.parent.stat().st_mtime, run_json.parent))
    return [p for *_, p in sorted(found, reverse=True)]


def final_adapter(run: str | Path) -> Path | None:
    """``<run>/final_model`` when it holds an adapter (``adapter_config.json``), else None."""
    final = Path(run) / "final_model"
    return final if (final / "adapter_config.json").is_file() else None


def run_method(run: str | Path) -> str:
    """The reward-stage method a run trained with (``grpo`` for runs from before the choice existed)."""
    return read_run(run).get("settings", {}).get("method") or "grpo"


def pick_run(stage: str, run: str | Path = "", adapter: bool = False, root: str | Path | None = None,
             required: bool = False, method: str | None = None) -> Path | None:
    """The run folder a later notebook reads: the one named, else the newest completed run of ``stage``, else None.

    ``run`` names a run folder (a path from the repository root, or a folder name under ``output/``) or its
    ``final_model/``, and it must have a ``run.json``. With ``adapter=True`` the run must have a final adapter,
    and only such runs count as the newest. ``required=True`` raises, naming the notebook that makes such a
    run, instead of returning None. ``method`` (reward-stage runs: grpo | rejection_sft | more_sft) counts only
    the newest run of that method; a run named by ``run`` is taken whatever its method. The one way the workbook
    finds runs: 03_sft_eval, 04_grpo_train (through
    ``helpers.grpo.resolve_sft_model``), 05_compare (through ``helpers.compare``) and 06_rag
    (``helpers.rag.adapters_from_runs``).
    """
    base = Path(root) if root is not None else output_root()
    if run:
        path = repo_path(run)
        if not path.exists() and (base / run).exists():
            path = base / run
        if path.name == "final_model" and (path.parent / "run.json").is_file():
            path = path.parent
        what = f"{stage.upper()}_RUN: {run}"
        if not (path / "run.json").is_file():
            raise FileNotFoundError(f"{what} has no run.json (expected a run folder such as output/{stage}_<date>)")
        if adapter and final_adapter(path) is None:
            raise FileNotFoundError(f"{what} has no final_model/ with an adapter")
        return path
    runs = [r for r in find_runs(stage, base) if (not adapter or final_adapter(r) is not None)
            and (method is None or run_method(r) == method)]
    if not runs and required:
        notebook = {"sft": "02_sft_train", "grpo": "04_grpo_train"}.get(stage, stage)
        what = " with a final_model/" if adapter else ""
        raise FileNotFoundError(f"no completed {stage} run{what} under {base}; run {notebook} first")
    return runs[0] if runs else None


class TrainingLog:
    """``training_log.txt``: one tab-separated line per logged step, flushed at once for ``tail -f``."""

    def __init__(self, path: str | Path, columns: list[str]):
        self.path = Path(path)
        self.columns = list(columns)
        if not self.path.exists() or self.path.stat().st_size == 0:
            self.path.write_text("\t".join(self.columns) + "\n")

    def write(self, row: dict) -> None:
        cells = []
        for col in self.columns:
            value = row.get(col, "")
            if isinstance(value, float):
                value = f"{value:.6g}"
            cells.append(str(value))
        with open(self.path, "a") as fh:
            fh.write("\t".join(cells) + "\n")

    def note(self, text: str) -> None:
        """A comment line (``# ...``) such as a warning, kept in order with the steps."""
        with open(self.path, "a") as fh:
            fh.write(f"# {text}\n")


def read_training_log(path: str | Path) -> list[dict]:
    """The rows of a ``training_log.txt`` as dicts of floats (empty cells dropped)."""
    lines = [ln for ln in Path(path).read_text().splitlines() if ln and not ln.startswith("#")]
    if not lines:
        return []
    header = lines[0].split("\t")
    rows = []
    for line in lines[1:]:
        row = {}
        for key, cell in zip(header, line.split("\t")):
            if cell == "":
                continue
            try:
                row[key] = float(cell)
            except ValueError:
                row[key] = cell
        rows.append(row)
    return rows


def checkpoint_step(checkpoint: str | Path) -> int:
    """The global step a ``checkpoint-N`` folder was saved at (its ``trainer_state.json``)."""
    state = json.loads((Path(checkpoint) / "trainer_state.json").read_text())
    return int(state["global_step"])


def truncate_training_log(path: str | Path, step: int) -> list[dict]:
    """Cut ``training_log.txt`` back to ``step`` before a resume; return the rows kept (steps as ints).

    A killed run has usually logged a few steps after its last checkpoint; the
    resumed run logs those steps again, so they are dropped here (everything
    from the first row past ``step`` on, warnings included). A last line cut
    off mid-write goes too. The file is rewritten atomically.
    """
    path = Path(path)
    if not path.is_file():
        return []
    lines = path.read_text().split("\n")[:-1]  # the piece after the last newline was never finished
    if not lines or "step" not in lines[0].split("\t"):
        return []
    col = lines[0].split("\t").index("step")
    kept = lines[:1]
    for line in lines[1:]:
        if line and not line.startswith("#"):
            try:
                if float(line.split("\t")[col]) > step:
                    break
            except (ValueError, IndexError):
                break
        kept.append(line)
    write_atomic(path, "\n".join(kept) + "\n")
    return [{**row, "step": int(row["step"])} for row in read_training_log(path) if "step" in row]


def repo_path(path: str | Path) -> Path:
    """A path as notebooks write it (``data/...``, ``output/...``), made absolute from the repository root,
    so a notebook gives the same result whether its kernel starts in notebooks/ or at the top."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else REPO_ROOT / path
