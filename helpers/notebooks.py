"""Running the notebooks headless, in order, the way CI and ``make demo`` do.

Why this module exists: every notebook must run start to finish without a
person, with the same parameters a person would set. papermill injects them
after the ``parameters`` cell; this module picks, for each notebook, only the
parameters it declares, writes the executed copy under ``output/executed/`` and
stops at the first failure with the notebook's name.

Used by ``make demo`` (``python -m helpers notebooks``) and tests/test_notebooks.py.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from helpers.models import REPO_ROOT
from helpers.runs import output_root

NOTEBOOK_DIR = REPO_ROOT / "notebooks"


def list_notebooks() -> list[Path]:
    """The numbered notebooks, in order (``00_...`` to ``06_...``)."""
    return sorted(p for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def declared_parameters(path: str | Path) -> dict[str, dict]:
    """The notebook's ``parameters`` cell as papermill reads it: name -> {name, inferred_type_name, default, help}.

    A line papermill cannot parse is missing here, so it is refused as a parameter instead of being injected
    with the wrong type (tests/test_environment.py checks that every line parses).
    """
    import papermill as pm

    return pm.inspect_notebook(str(path))


def run_notebook(path: str | Path, parameters: dict | None = None, out_dir: str | Path | None = None,
                 timeout: int = 3600) -> Path:
    """Execute one notebook with papermill; return the executed copy's path.

    Parameters the notebook does not declare are refused by name (a typo would
    otherwise be silently ignored).
    """
    import papermill as pm

    path = Path(path)
    declared = declared_parameters(path)
    unknown = sorted(set(parameters or {}) - set(declared))
    if unknown:
        raise ValueError(f"{path.name}: unknown parameter(s) {', '.join(unknown)}; "
                         f"it declares {', '.join(declared) or 'none'}")
    out = Path(out_dir) if out_dir else output_root() / "executed"
    out.mkdir(parents=True, exist_ok=True)
    target = out / path.name
    pm.execute_notebook(str(path), str(target), parameters=parameters or {}, cwd=str(path.parent),
                        kernel_name="python3", progress_bar=False, execution_timeout=timeout)
    return target


def output_problems(path: str | Path) -> list[str]:
    """What a learner would find noisy in an executed notebook: stderr output (tqdm progress bars aside) and
    any PNG shown twice. One line per problem, naming the cell. Used by tests/test_executed_notebooks.py."""
    nb = json.loads(Path(path).read_text())
    problems, seen = [], {}
    for index, cell in enumerate(nb.get("cells", [])):
        for out in cell.get("outputs", []):
            text = "".join(out.get("text", "")) if out.get("name") == "stderr" else ""
            noisy = [line for line in text.splitlines() if line.strip() and "%|" not in line]
            if noisy:
                problems.append(f"cell {index}: stderr: {noisy[0][:200]}")
            png = out.get("data", {}).get("image/png")
            if png is not None and png in seen:
                problems.append(f"cell {index}: the figure of cell {seen[png]} is shown again")
            seen.setdefault(png, index)
    return problems


def run_all(preset: str = "fast_test", only: list[str] | None = None, extra: dict | None = None,
            out_dir: str | Path | None = None) -> list[dict]:
    """Run every numbered notebook in order with ``PRESET=preset`` (where declared); stop at a failure."""
    results = []
    for nb in list_notebooks():
        if only and not any(nb.name.startswith(o) for o in only):
            continue
        declared = declared_parameters(nb)
        params = {"PRESET": preset} if "PRESET" in declared else {}
        params.update({k: v for k, v in (extra or {}).items() if k in declared})
        start = time.time()
        target = run_notebook(nb, params, out_dir)
        results.append({"notebook": nb.name, "seconds": round(time.time() - start, 1), "executed": str(target)})
        print(f"{nb.name}: done in {results[-1]['seconds']} s -> {target}", flush=True)
    return results
