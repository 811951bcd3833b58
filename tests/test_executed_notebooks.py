"""The executed notebooks read cleanly: no stderr output and no figure shown twice.

It reads the executed copies that tests/test_notebooks.py writes in this pytest session (conftest.py runs this
file after it), or the folder named by ``EXECUTED_NOTEBOOKS`` (e.g. ``output/executed`` after ``make demo``).
Without either there is nothing to read, and the test is skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers.notebooks import output_problems

def _executed(tmp_path_factory) -> list[Path]:
    folder = os.environ.get("EXECUTED_NOTEBOOKS")
    if folder:
        return sorted(Path(folder).glob("*.ipynb"))
    return sorted(tmp_path_factory.getbasetemp().glob("workbook*/executed/*.ipynb"))


@pytest.mark.notebook
def test_executed_notebooks_have_no_stderr_and_no_figure_twice(tmp_path_factory):
    paths = _executed(tmp_path_factory)
    if not paths:
        pytest.skip("no executed notebooks: run tests/test_notebooks.py in the same session, or set EXECUTED_NOTEBOOKS")
    problems = {p.name: output_problems(p) for p in paths}
    assert not any(problems.values()), "\n".join(f"{name}: {line}" for name, lines in problems.items() for line in lines)


def test_the_check_finds_stderr_and_a_figure_shown_twice(tmp_path):
    import json

    png = {"output_type": "display_data", "data": {"image/png": "iVBOR", "text/plain": "<Figure>"}, "metadata": {}}
    cells = [{"cell_type": "code", "source": "", "metadata": {}, "execution_count": 1, "outputs": [png]},
             {"cell_type": "code", "source": "", "metadata": {}, "execution_count": 2, "outputs": [
                 {"output_type": "stream", "name": "stderr", "text": " 50%|#####     | 1/2 [00:01<00:01]\n"},
                 {"output_type": "stream", "name": "stderr", "text": "FutureWarning: `x` is deprecated\n"}, png]}]
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    assert output_problems(path) == ["cell 1: stderr: FutureWarning: `x` is deprecated",
                                     "cell 1: the figure of cell 0 is shown again"]
