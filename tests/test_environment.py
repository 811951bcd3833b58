"""environment.yml installs what make setup installs; notebooks are committed clean."""

import json
import re
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _pip_pins(text: str) -> set[str]:
    return {m.group(1).lower() for m in re.finditer(r"^\s*-\s+([A-Za-z0-9_.\-]+==[^\s#]+)", text, re.M)}


def test_environment_yml_matches_pyproject_and_makefile():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    expected = {d.lower() for d in project["dependencies"]}
    for extra in ("notebooks", "rag", "tracking", "dev"):
        expected |= {d.lower() for d in project["optional-dependencies"][extra]}
    makefile = (ROOT / "Makefile").read_text()
    torch_pin = re.search(r"pip install -q (torch==\S+)", makefile).group(1)
    expected.add(torch_pin)
    extras_installed = re.search(r"-e '\.\[([a-z,]+)\]'", makefile).group(1).split(",")
    assert sorted(extras_installed) == ["dev", "notebooks", "rag", "tracking"]
    assert _pip_pins((ROOT / "environment.yml").read_text()) == expected


def test_nodeps_model_packages_are_named_in_both():
    makefile = (ROOT / "Makefile").read_text()
    nodeps = re.search(r"^NODEPS := (.+)$", makefile, re.M).group(1).split()
    env = (ROOT / "environment.yml").read_text()
    for pin in nodeps:
        assert pin in env, f"{pin} is installed by make setup but environment.yml does not mention it"


def test_notebooks_are_committed_without_outputs():
    tracked = subprocess.run(["git", "ls-files", "notebooks/*.ipynb"], cwd=ROOT, capture_output=True,
                             text=True).stdout.split()
    files = tracked or [str(p.relative_to(ROOT)) for p in (ROOT / "notebooks").glob("*.ipynb")]
    assert files, "no notebooks found"
    for name in files:
        nb = json.loads((ROOT / name).read_text())
        assert "widgets" not in nb.get("metadata", {}), f"{name} carries widget state"
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert not cell.get("outputs") and cell.get("execution_count") is None, f"{name} has outputs"


def test_every_notebook_has_one_parameters_cell_of_literals_first():
    import ast

    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = json.loads(path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1 and tagged[0] is code[0], f"{path.name}: the first code cell must be the only parameters cell"
        assert nb["cells"][0]["cell_type"] == "markdown", f"{path.name}: starts with a title cell"
        tree = ast.parse("".join(tagged[0]["source"]))
        for node in tree.body:
            assert isinstance(node, (ast.Assign, ast.AnnAssign)), f"{path.name}: parameters cell holds only assignments"
            ast.literal_eval(node.value)


def test_papermill_understands_every_parameter_line(caplog):
    """papermill must parse each parameter (name, type, default) or its -p overrides are typed wrongly."""
    import logging

    import papermill as pm

    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            params = pm.inspect_notebook(str(path))
        assert "PRESET" in params, f"{path.name}: no PRESET parameter (make demo passes one to every notebook)"
        assert not [r for r in caplog.records if "Unable to parse" in r.getMessage()], \
            f"{path.name}: {[r.getMessage() for r in caplog.records]}"
