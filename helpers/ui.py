"""Widgets and tables for the notebooks: choose values, show results.

Why this module exists: widgets only choose values; a later plain cell reads
them, so the same notebook runs in JupyterLab (pick, then run the next cell)
and under papermill (the widget shows the injected parameter and nothing waits
for a click). Tables show every cell's whole text, wrapped: pandas' own notebook
view cuts text at 50 characters, which hides the questions and answers a learner
came to read.

Introduced in 00_setup_check; used by every notebook.
"""

from __future__ import annotations

from helpers.config import as_dict, preset_names


def preset_picker(value: str, stage: str = "sft", description: str = "Preset"):
    """A dropdown of the stage's presets, starting at ``value`` (the notebook parameter)."""
    import ipywidgets as widgets

    options = list(preset_names(stage))
    if value not in options:
        raise ValueError(f"PRESET: unknown preset {value!r}; valid presets: {', '.join(options)}")
    return widgets.Dropdown(options=options, value=value, description=description,
                            style={"description_width": "initial"})


_CELL_STYLE = "white-space: pre-wrap; text-align: left; vertical-align: top; max-width: 48em"


class Table:
    """A table for display: every cell's whole text, wrapped; ``frame`` is the pandas DataFrame behind it.

    The HTML is pandas' ``to_html`` (no 50-character cut) with the wrapping set on each cell's own
    ``style`` attribute, which JupyterLab keeps even in a notebook it does not trust (a ``<style>``
    block, as pandas' Styler writes, is dropped there). Under papermill the same HTML is stored.
    """

    def __init__(self, frame):
        self.frame = frame

    def _repr_html_(self) -> str:
        html = self.frame.to_html(index=False, na_rep="", border=0)
        return html.replace("<td>", f'<td style="{_CELL_STYLE}">').replace("<th>", '<th style="text-align: left">')

    def __repr__(self) -> str:
        return self.frame.to_string(index=False, na_rep="")

    def __len__(self) -> int:
        return len(self.frame)


def table(rows, columns: list[str] | None = None, max_rows: int = 30) -> Table:
    """A list of dicts (or one dict, as name/value rows) as a ``Table``: whole text, wrapped, at most ``max_rows``."""
    import pandas as pd

    if isinstance(rows, dict):
        rows = [{"name": k, "value": v} for k, v in rows.items()]
    frame = pd.DataFrame(list(rows))
    if columns:
        frame = frame[[c for c in columns if c in frame.columns]]
    return Table(frame.head(max_rows))


def settings_table(settings, keys: list[str] | None = None):
    """The resolved settings of a preset as a two-column table (what will actually run)."""
    values = as_dict(settings)
    if keys:
        values = {k: values[k] for k in keys if k in values}
    return table({k: (", ".join(map(str, v)) if isinstance(v, list) else v) for k, v in values.items()})


def notes(settings) -> str:
    """The preset's notes (e.g. why 4-bit falls back on CPU), one per line."""
    return "\n".join(f"NOTE: {n}" for n in settings.notes) or "No adjustments for this device."
