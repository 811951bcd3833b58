"""Loading, checking, cleaning, splitting and writing the question-answer data.

Everything the model learns comes through these files, and data problems are
quiet: a number where text was expected, a line cut in half by an editor, the
same question twice, a validation question that is a rephrasing of a training
question. None of those raise an error in a trainer; they just make the results
worse or the evaluation flattering. So the data goes through one documented
path, in the order 01_data_prep uses:

1. ``load_qa_file`` / ``load_qa_files`` read a JSON list, JSONL or CSV file
   or a folder saved with ``datasets`` (``load_hf_dataset`` also a hub id),
   check every row and report bad rows by number and reason (nothing is
   coerced). GSM8K-style (``#### 42``) and MATH-style (``\\boxed{...}``)
   answers become the workbook's worked solutions ending in ``Answer: <value>``.
2. ``clean_rows`` normalises whitespace, drops exact and near duplicates and
   (with a token counter) rows that are too long, and says which and why.
3. ``split_rows`` makes a deterministic, stratified train/validation split with
   no near-duplicate leakage (``leakage_check`` is the test for that).
4. ``write_training_files`` writes the files all-or-nothing, and
   ``file_sha256`` gives the hashes a run records.

Row format (JSON list, or JSONL with one object per line)::

    {"question": "...", "answer": "...", "source": "Leon-Garcia Chapter 2.4"}

``question`` and ``answer`` are required non-empty strings, ``source`` is an
optional string (``null`` is treated as absent), and any other field
(``final_answer``, ``family``, ``topic``, ``difficulty``, ``params``...) is kept.

Nothing here prints: every function returns values (lists of dicts for tables)
that a notebook shows. Introduced in 01_data_prep.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import random
import re
import statistics
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterable

# The one temp-then-rename write and file hash (helpers.runs); _write_temp is the first half of it.
from helpers.runs import sha256_file, write_atomic
from helpers.runs import write_temp as _write_temp

__all__ = [
    "DataError",
    "BadRow",
    "LoadResult",
    "CleanResult",
    "JACCARD_THRESHOLD",
    "REPORT_NAME",
    "load_qa_file",
    "load_qa_files",
    "load_hf_dataset",
    "STYLES",
    "DEFAULT_FIELDS",
    "gsm8k_solution",
    "math_solution",
    "normalize_whitespace",
    "question_key",
    "clean_rows",
    "split_rows",
    "leakage_check",
    "leakage_report",
    "transfer_leaks",
    "write_json_atomic",
    "write_training_files",
    "file_sha256",
    "summarize",
]

#: Questions whose token sets overlap at least this much (Jaccard) are near duplicates.
JACCARD_THRESHOLD = 0.9

_PREVIEW_CHARS = 80
_MAX_LISTED = 5  # bad rows spelled out in an error message
_JSON_SPACE = b" \t\r\n"
_BOM = b"\xef\xbb\xbf"


class DataError(ValueError):
    """A data file or data rows that cannot be used; the message says where and why.

    Messages name the file and, where it applies, the row (1-based; for JSONL
    the line number) and the reason. Used in 01_data_prep.
    """


@dataclass(frozen=True)
class BadRow:
    """One rejected row: its number (1-based; the line number for JSONL), why, and its start."""

    row: int
    reason: str
    preview: str
    path: str = ""


@dataclass(frozen=True)
class LoadResult:
    """The valid rows of one file (or several) and the rows that were dropped.

    ``table()`` lists the bad rows as dicts, ready for display. Used in 01_data_prep.
    """

    path: str
    rows: list[dict]
    bad_rows: list[BadRow] = field(default_factory=list)

    def table(self) -> list[dict]:
        """The bad rows as a list of dicts (file, row, reason, preview)."""
        return [
            {"file": b.path or self.path, "row": b.row, "reason": b.reason, "preview": b.preview}
            for b in self.bad_rows
        ]

    def counts(self) -> dict:
        """How many rows were kept and how many were bad."""
        return {"file": self.path, "rows": len(self.rows), "bad_rows": len(self.bad_rows)}

    def reasons(self) -> dict:
        """The bad rows' reasons counted by kind (``missing field``, ``no final answer``...), most frequent
        first; a row with two problems counts under both. Used by ``python -m helpers data`` and 01_data_prep."""
        kinds = Counter()
        for b in self.bad_rows:
            for problem in b.reason.split("; "):
                kinds[re.sub(r" at (byte|column) \d+.*", "", problem.split(":", 1)[0])] += 1
        return dict(kinds.most_common())


@dataclass(frozen=True)
class CleanResult:
    """Rows after cleaning, and what was dropped or flagged.

    Each entry of ``dropped`` and ``reported`` is a dict with ``index`` (0-based
    position in the input list), ``reason`` (``invalid``, ``exact duplicate``,
    ``near duplicate``, ``too long``), ``detail``, ``question`` (a preview) and
    ``duplicate_of`` (index of the kept row it duplicates, else ``None``).
    ``reported`` holds too-long rows that were kept (``on_too_long="report"``).
    Used in 01_data_prep.
    """

    rows: list[dict]
    dropped: list[dict] = field(default_factory=list)
    reported: list[dict] = field(default_factory=list)

    def table(self) -> list[dict]:
        """Dropped and reported rows in one list of dicts, with an ``action`` column."""
        return [dict(d, action="dropped") for d in self.dropped] + [
            dict(d, action="kept") for d in self.reported
        ]

    def counts(self) -> dict:
        """Rows in, rows kept, and rows dropped per reason."""
        out = {"input": len(self.rows) + len(self.dropped), "kept": len(self.rows)}
        for reason, n in sorted(Counter(d["reason"] for d in self.dropped).items()):
            out[f"dropped: {reason}"] = n
        if self.reported:
            out["kept but too long"] = len(self.reported)
        return out


# --------------------------------------------------------------------------- loading


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _preview(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= _PREVIEW_CHARS else text[: _PREVIEW_CHARS - 1] + "…"


def _row_preview(value: Any) -> str:
    try:
        return _preview(json.dumps(value, ensure_ascii=False))
    except (TypeError, ValueError, RecursionError):
        return _preview(repr(value))


def _bad_surrogate(text: str) -> str | None:
    """The first unpaired surrogate in ``text`` (``"\\ud800"`` in JSON decodes to one)."""
    try:
        text.encode("utf-8")
        return None
    except UnicodeEncodeError as exc:
        return f"\\u{ord(text[exc.start]):04x}"


def _check_row(obj: Any, labels: dict[str, str] | None = None) -> tuple[list[str], dict | None]:
    """Problems with one row, and the row as kept (``source: null`` removed).

    ``labels`` names the fields in messages as the user's file names them
    (``{"question": "problem"}`` after a field mapping).
    """
    if not isinstance(obj, dict):
        return [f"not an object (got {_type_name(obj)})"], None
    label = (labels or {}).get
    problems = []
    for name in ("question", "answer"):
        if name not in obj:
            problems.append(f"missing field: {label(name, name)}")
        elif not isinstance(obj[name], str):
            problems.append(f"wrong type: {label(name, name)} is {_type_name(obj[name])}, expected text")
        elif not obj[name].strip():
            problems.append(f"empty field: {label(name, name)}")
    source = obj.get("source")
    if source is not None and not isinstance(source, str):
        problems.append(f"wrong type: source is {_type_name(source)}, expected text")
    for name in ("question", "answer", "source"):
        if isinstance(obj.get(name), str):
            bad = _bad_surrogate(obj[name])
            if bad:
                problems.append(f"invalid text: {label(name, name)} has an unpaired surrogate {bad}")
    if problems:
        return problems, None
    try:  # extra fields must survive being written back as UTF-8 JSON
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return ["invalid text: a field has an unpaired surrogate"], None
    except (TypeError, ValueError, RecursionError) as exc:
        return [f"cannot be written back as JSON: {exc}"], None
    row = dict(obj)
    if "source" in row and row["source"] is None:
        del row["source"]
    return [], row


def _detect_format(path: Path, data: bytes) -> str:
    """``"jsonl"`` for .jsonl/.ndjson files or object-per-line content, else ``"json"``."""
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return "jsonl"
    head = data.lstrip(_JSON_SPACE)
    if head[:1] == b"[":
        return "json"
    try:
        json.loads(data.decode("utf-8"))
        return "json"  # one JSON document (a dict, a number...): reported as not a list
    except (ValueError, RecursionError):
        pass
    first_line = head.split(b"\n", 1)[0]
    try:
        first = json.loads(first_line.decode("utf-8"))
    except (ValueError, RecursionError):
        return "json"
    return "jsonl" if isinstance(first, dict) else "json"


def _parse_json_list(path: Path, data: bytes, offset: int) -> tuple[list[tuple[int, Any, str]], list[BadRow]]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"{path}: invalid UTF-8 at byte {exc.start + offset} (line {line}): {exc.reason}"
        ) from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise DataError(f"{path}: cannot parse JSON: {exc}") from None
    if not isinstance(value, list):
        raise DataError(
            f"{path}: top level is {_type_name(value)}, expected a list of rows "
            "(for one object per line, name the file .jsonl)"
        )
    return [(i, obj, "") for i, obj in enumerate(value, 1)], []


def _parse_jsonl(path: Path, data: bytes) -> tuple[list[tuple[int, Any, str]], list[BadRow]]:
    parsed, bad = [], []
    for lineno, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip(b" \t\r"):
            continue
        preview = _preview(raw.decode("utf-8", errors="replace"))
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad.append(BadRow(lineno, f"invalid UTF-8 at byte {exc.start} of the line: {exc.reason}", preview, str(path)))
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            bad.append(BadRow(lineno, f"broken JSON at column {exc.colno}: {exc.msg}", preview, str(path)))
            continue
        except (ValueError, RecursionError) as exc:
            bad.append(BadRow(lineno, f"broken JSON: {exc}", preview, str(path)))
            continue
        parsed.append((lineno, obj, preview))
    return parsed, bad


def _list_bad(bad: list[BadRow], unit: str) -> str:
    shown = "; ".join(f"{unit} {b.row}: {b.reason}" for b in bad[:_MAX_LISTED])
    more = len(bad) - _MAX_LISTED
    return shown + (f"; and {more} more" if more > 0 else "")


def _check_on_bad_rows(on_bad_rows: Any) -> None:
    if not isinstance(on_bad_rows, str) or on_bad_rows not in ("drop", "raise"):
        raise ValueError(f"on_bad_rows must be 'drop' or 'raise', got {on_bad_rows!r}")


def load_qa_file(
    path: str | os.PathLike,
    on_bad_rows: str = "drop",
    style: str = "qa",
    question_field: str | None = None,
    answer_field: str | None = None,
    keep_calculator: bool = False,
    split: str | None = None,
) -> LoadResult:
    """Read and check one QA file (JSON list, JSONL, CSV, or a folder saved with ``datasets``).

    The format is JSONL for a ``.jsonl`` (or ``.ndjson``) name or when the
    content is one object per line; JSON when the first non-space character is
    ``[``; CSV for a ``.csv`` name (a header row naming the columns, rows
    numbered from the first row after it); a folder written by
    ``Dataset.save_to_disk`` (or ``DatasetDict.save_to_disk``: ``split``, by
    default ``train``). Every row must have non-empty text ``question`` and
    ``answer``; ``source``, if present, must be text (``null`` is removed).
    Nothing is coerced: ``"answer": 42`` is reported as
    ``wrong type: answer is int, expected text``. Extra fields are kept.

    ``style`` says how answers are written (see ``STYLES``): ``qa`` keeps them
    as they are; ``gsm8k`` and ``math`` turn them into the workbook's worked
    solution ending in ``Answer: <value>`` and set ``final_answer`` (see
    ``gsm8k_solution``, ``math_solution``); a row whose final answer is missing
    or not an exact number is a bad row. ``question_field`` / ``answer_field``
    name the columns that hold them (default: ``DEFAULT_FIELDS[style]``).

    ``on_bad_rows="drop"`` keeps going and lists the bad rows in
    ``LoadResult.bad_rows``; ``"raise"`` raises ``DataError`` naming the first
    few. A missing path, a folder that is not a saved dataset, an empty file,
    malformed JSON (line and column given), invalid UTF-8 in a JSON or CSV file,
    a top level that is not a list, a CSV without the question or answer column,
    or a file with no valid row always raise ``DataError``. For JSONL, a broken
    line or a line that is not UTF-8 is a bad row, numbered by line.

    Used in 01_data_prep and by ``python -m helpers data``.
    """
    _check_on_bad_rows(on_bad_rows)
    fields = _fields(style, question_field, answer_field)
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        if not _is_saved_dataset(path):
            raise DataError(f"{path}: is a folder, expected a .json, .jsonl or .csv file "
                            "or a folder written by datasets' save_to_disk")
        return _checked_rows(str(path), _saved_dataset_rows(path, split), [], "row", on_bad_rows, style, fields,
                             keep_calculator)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from None
    offset = 0
    if data.startswith(_BOM):
        data, offset = data[len(_BOM):], len(_BOM)
    if not data.strip(_JSON_SPACE):
        raise DataError(f"{path}: file is empty")

    if path.suffix.lower() == ".csv":
        parsed, bad = _parse_csv(path, data, offset, fields)
        fmt = "csv"
    else:
        fmt = _detect_format(path, data)
        parsed, bad = _parse_jsonl(path, data) if fmt == "jsonl" else _parse_json_list(path, data, offset)
    return _checked_rows(str(path), parsed, bad, "line" if fmt == "jsonl" else "row", on_bad_rows, style, fields,
                         keep_calculator)


def _checked_rows(name: str, parsed: list[tuple[int, Any, str]], bad: list[BadRow], unit: str, on_bad_rows: str,
                  style: str, fields: tuple[str, str], keep_calculator: bool) -> LoadResult:
    """Check (and for gsm8k/math convert) parsed rows; the errors ``load_qa_file`` documents."""
    if not parsed and not bad:
        raise DataError(f"{name}: no rows (the list is empty)")
    rows = []
    for number, obj, preview in parsed:
        problems, row = _convert_row(obj, style, fields, keep_calculator)
        if problems:
            bad.append(BadRow(number, "; ".join(problems), preview or _row_preview(obj), name))
        else:
            rows.append(row)
    bad.sort(key=lambda b: b.row)

    if not rows:
        raise DataError(f"{name}: no valid rows ({len(bad)} bad: {_list_bad(bad, unit)})")
    if bad and on_bad_rows == "raise":
        raise DataError(f"{name}: {len(bad)} bad {unit}(s): {_list_bad(bad, unit)}")
    return LoadResult(name, rows, bad)


def load_qa_files(paths: Iterable[str | os.PathLike] | str | os.PathLike, on_bad_rows: str = "drop",
                  **fmt: Any) -> LoadResult:
    """Load several QA files into one ``LoadResult`` (rows in file order).

    Each row gets an ``origin`` field with its file's name (unless it already
    has one) so mixed data can be traced back; bad rows carry their file in the
    table. Every file must have at least one valid row. ``fmt`` (``style``,
    ``question_field``, ``answer_field``, ``keep_calculator``, ``split``) is
    passed to ``load_qa_file`` for every file. Used in 01_data_prep.
    """
    _check_on_bad_rows(on_bad_rows)
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = list(paths)
    if not paths:
        raise DataError("no files given")
    rows, bad = [], []
    for p in paths:
        result = load_qa_file(p, on_bad_rows=on_bad_rows, **fmt)
        name = Path(p).name
        rows.extend(r if "origin" in r else {**r, "origin": name} for r in result.rows)
        bad.extend(result.bad_rows)
    return LoadResult(", ".join(str(p) for p in paths), rows, bad)


# --------------------------------------------------------------------------- other formats

#: How a file writes its answers: ``qa`` as the workbook does (kept as they are); ``gsm8k`` a worked
#: solution ending in a line ``#### 42``; ``math`` a solution with the final answer in ``\boxed{...}``
#: (or in a ``final_answer`` field). gsm8k and math rows become worked solutions ending in ``Answer: <value>``.
STYLES = ("qa", "gsm8k", "math")
#: The question and answer fields each style expects unless told otherwise (GSM8K's and MATH's own names).
DEFAULT_FIELDS = {"qa": ("question", "answer"), "gsm8k": ("question", "answer"), "math": ("problem", "solution")}

_CALCULATOR = re.compile(r"<<[^<>\n]*>>")
_GSM8K_FINAL = re.compile(r"^[ \t]*####[ \t]*(.*?)[ \t]*$", re.M)
_BOXED = re.compile(r"\\(?:boxed|fbox)[ \t]*\{")


def _fields(style: str, question_field: str | None, answer_field: str | None) -> tuple[str, str]:
    if style not in STYLES:
        raise ValueError(f"style: must be one of {', '.join(STYLES)}; got {style!r}")
    default_q, default_a = DEFAULT_FIELDS[style]
    fields = (question_field or default_q, answer_field or default_a)
    for name, value in zip(("question_field", "answer_field"), fields):
        if not isinstance(value, str):
            raise ValueError(f"{name}: expected a column name, got {value!r}")
    if fields[0] == fields[1]:
        raise ValueError(f"question_field and answer_field are both {fields[0]!r}")
    return fields


def _solution_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def gsm8k_solution(answer: str, keep_calculator: bool = False) -> tuple[str, Fraction]:
    """A GSM8K answer as the workbook's worked solution, and its exact final value.

    The solution lines are kept, the closing ``#### 42`` becomes ``Answer: 42``
    (``helpers.answers.answer_line``), and the calculator annotations
    ``<<48/2=24>>`` are removed unless ``keep_calculator``: they are GSM8K's
    tool calls, not text a model should learn to write before every result.
    Raises ``ValueError`` (the bad-row reason) when there is no ``####`` line,
    text follows it, or its value is not exactly one number. Used in 01_data_prep.

    >>> gsm8k_solution("Half of 48 is 48/2 = <<48/2=24>>24.\\n#### 24")
    ('Half of 48 is 48/2 = 24.\\nAnswer: 24', Fraction(24, 1))
    """
    from helpers.answers import answer_line, parse_exact_number

    finals = list(_GSM8K_FINAL.finditer(answer))
    if not finals:
        raise ValueError("no final answer: no line '#### <value>'")
    final = finals[-1]
    if answer[final.end():].strip():
        raise ValueError("no final answer: text after the '#### <value>' line")
    value = parse_exact_number(final.group(1))
    if value is None:
        raise ValueError(f"final answer is not a number: {_preview(final.group(1))!r}")
    body = answer[:final.start()]
    if not keep_calculator:
        body = _CALCULATOR.sub("", body)
    return "\n".join(_solution_lines(body) + [answer_line(value)]), value


def _boxed_spans(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, content)`` of every ``\\boxed{...}`` / ``\\fbox{...}``, braces balanced."""
    spans = []
    for match in _BOXED.finditer(text):
        depth, i = 1, match.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            spans.append((match.start(), i, text[match.end():i - 1]))
    return spans


def math_solution(solution: str, final_answer: Any = None) -> tuple[str, Fraction]:
    """A MATH-style solution as the workbook's worked solution, and its exact final value.

    The value is the ``final_answer`` field when the row has one, else the last
    ``\\boxed{...}`` in the solution; when both are there they must agree.
    Each ``\\boxed{x}`` is written as ``x`` and ``Answer: <value>`` closes the
    solution. A final answer that is not exactly one number (``\\sqrt{2}``,
    ``(1, 2)``, ``x = 5``) makes the row a bad row: the workbook grades answers
    exactly as numbers. Used in 01_data_prep.

    >>> math_solution("So $p = \\\\boxed{\\\\frac{3}{8}}$.")
    ('So $p = \\\\frac{3}{8}$.\\nAnswer: 3/8', Fraction(3, 8))
    """
    from helpers.answers import answer_line, format_final_answer, parse_exact_number

    spans = _boxed_spans(solution)
    boxed = spans[-1][2] if spans else None
    given = None if final_answer is None or final_answer == "" else final_answer
    if given is not None and (isinstance(given, bool) or not isinstance(given, (str, int, float))):
        raise ValueError(f"wrong type: final_answer is {_type_name(given)}, expected text or a number")
    if given is None and boxed is None:
        raise ValueError("no final answer: no \\boxed{...} in the solution and no final_answer field")
    written = str(given) if given is not None else boxed
    value = parse_exact_number(written if not isinstance(given, int) else given)
    if value is None:
        raise ValueError(f"final answer is not a number: {_preview(written)!r}")
    if given is not None and boxed is not None and parse_exact_number(boxed) != value:
        raise ValueError(f"final answers disagree: final_answer {format_final_answer(value)}, "
                         f"\\boxed{{{_preview(boxed)}}}")
    text, last = [], 0
    for start, end, content in spans:
        text += [solution[last:start], content]
        last = end
    text.append(solution[last:])
    return "\n".join(_solution_lines("".join(text)) + [answer_line(value)]), value


def _convert_row(obj: Any, style: str, fields: tuple[str, str], keep_calculator: bool) -> tuple[list[str], dict | None]:
    """Map the row's fields to question/answer, check it, and write its answer in the workbook's convention."""
    qf, af = fields
    if isinstance(obj, dict) and fields != ("question", "answer"):
        mapped = {k: v for k, v in obj.items() if k not in (qf, af, "question", "answer")}
        mapped.update({new: obj[old] for new, old in (("question", qf), ("answer", af)) if old in obj})
        obj = mapped
    problems, row = _check_row(obj, {"question": qf, "answer": af})
    if problems or style == "qa":
        return problems, row
    from helpers.answers import format_final_answer

    try:
        if style == "gsm8k":
            text, value = gsm8k_solution(row["answer"], keep_calculator)
        else:
            text, value = math_solution(row["answer"], row.get("final_answer"))
    except ValueError as exc:
        return [str(exc)], None
    return [], {**row, "answer": text, "final_answer": format_final_answer(value)}


def _parse_csv(path: Path, data: bytes, offset: int, fields: tuple[str, str]) -> tuple[list[tuple[int, Any, str]], list[BadRow]]:
    """CSV rows as dicts by header; row N is the N-th record after the header. Empty optional cells are absent."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(f"{path}: invalid UTF-8 at byte {exc.start + offset} (line {line}): {exc.reason}") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    parsed, bad = [], []
    try:
        header = [h.strip() for h in next(reader)]
        missing = [f for f in fields if f not in header]
        if missing:
            raise DataError(f"{path}: no column {', '.join(map(repr, missing))} in the header ({', '.join(header)}); "
                            "name the columns question,answer or give the question and answer fields")
        if len(set(header)) != len(header):
            raise DataError(f"{path}: the header names a column twice ({', '.join(header)})")
        for number, record in enumerate(reader, 1):
            if not any(cell.strip() for cell in record):
                continue
            obj = {h: v for h, v in zip(header, record) if v != "" or h in fields}
            if len(record) != len(header):
                bad.append(BadRow(number, f"wrong number of fields: {len(record)}, the header has {len(header)}",
                                  _row_preview(record), str(path)))
                continue
            parsed.append((number, obj, ""))
    except csv.Error as exc:
        raise DataError(f"{path}: malformed CSV at line {reader.line_num}: {exc}") from None
    return parsed, bad


def _is_saved_dataset(folder: Path) -> bool:
    """Whether a folder was written by ``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk``."""
    return (folder / "dataset_dict.json").is_file() or (
        (folder / "state.json").is_file() and (folder / "dataset_info.json").is_file())


def _dataset_rows(dataset: Any, name: str, split: str | None) -> list[tuple[int, Any, str]]:
    """Rows of a ``Dataset`` (or one split of a ``DatasetDict``), numbered from 1."""
    if hasattr(dataset, "keys") and not hasattr(dataset, "features"):  # a DatasetDict
        splits = list(dataset.keys())
        chosen = split or ("train" if "train" in splits or len(splits) != 1 else splits[0])
        if chosen not in splits:
            raise DataError(f"{name}: no split {chosen!r}; its splits: {', '.join(splits)}")
        dataset = dataset[chosen]
    return [(i, obj, "") for i, obj in enumerate(dataset.to_list(), 1)]


def _saved_dataset_rows(folder: Path, split: str | None) -> list[tuple[int, Any, str]]:
    from datasets import load_from_disk

    try:
        dataset = load_from_disk(str(folder))
    except Exception as exc:  # noqa: BLE001 - any failure to read the folder is a data error
        raise DataError(f"{folder}: cannot read the saved dataset ({type(exc).__name__}: {exc})") from None
    return _dataset_rows(dataset, str(folder), split)


def load_hf_dataset(name: str, split: str = "train", config: str | None = None, on_bad_rows: str = "drop",
                    style: str = "qa", question_field: str | None = None, answer_field: str | None = None,
                    keep_calculator: bool = False) -> LoadResult:
    """Rows of a Hugging Face ``datasets`` dataset, checked like ``load_qa_file``.

    ``name`` is a folder written by ``save_to_disk`` (read here, no hub
    needed) or a hub id such as ``openai/gsm8k`` (with ``config="main"``), read
    with ``datasets.load_dataset`` for users who have the hub. The fields are
    mapped and the answers converted as in ``load_qa_file``; rows are numbered
    from 1 within the split. Used in 01_data_prep and by ``python -m helpers data --hub``.
    """
    _check_on_bad_rows(on_bad_rows)
    fields = _fields(style, question_field, answer_field)
    folder = Path(name).expanduser()
    if folder.exists():
        return load_qa_file(folder, on_bad_rows, style, *fields, keep_calculator, split)
    if not isinstance(name, str) or not name.strip() or name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise DataError(f"{name}: no such folder, and not a hub id like 'openai/gsm8k'")
    from datasets import load_dataset

    try:
        dataset = load_dataset(name, config or None, split=split)
    except Exception as exc:  # noqa: BLE001 - offline, unknown id, unknown split: all reported the same way
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise DataError(
            f"{name}: could not load it from the Hugging Face hub ({type(exc).__name__}: {_preview(reason)}). "
            "Where the hub is reachable, save it once with load_dataset(...).save_to_disk(folder) and pass the folder."
        ) from None
    return _checked_rows(name, _dataset_rows(dataset, name, split), [], "row", on_bad_rows, style, fields,
                         keep_calculator)


# --------------------------------------------------------------------------- cleaning


_HSPACE = re.compile(r"[^\S\n]+")
_MANY_NEWLINES = re.compile(r"\n{3,}")


def normalize_whitespace(text: str) -> str:
    """Tidy spacing without changing layout.

    Runs of spaces/tabs become one space, every line is stripped, line breaks
    are kept (a worked solution's final ``Answer:`` line stays on its own
    line), three or more newlines become two, and the ends are stripped.

    >>> normalize_whitespace("  2 +  2\\t= 4 \\r\\n\\n\\n\\nAnswer:  4 ")
    '2 + 2 = 4\\n\\nAnswer: 4'

    Used in 01_data_prep.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = (_HSPACE.sub(" ", line).strip() for line in text.split("\n"))
    return _MANY_NEWLINES.sub("\n\n", "\n".join(lines)).strip()


# Near duplicates. A question is read as tokens: numbers (``3``, ``1.5``, ``3/8``),
# words, and single symbols (``+``, ``(``, ``|``, ``∩``). Prose punctuation is
# dropped. Two questions are near duplicates when
#   * their keys match: lowercased tokens without prose punctuation, i.e. the
#     same question up to case, spacing and punctuation; or
#   * their "math signature" matches (numbers, symbols and one-letter variables,
#     in order) and the Jaccard similarity of their token sets is >= 0.9.
# The signature rule keeps generated problems that differ only in a number, a
# sign or which event is conditioned on (P(A|B) vs P(B|A)) apart: those are
# different problems even though almost every word is shared.
# Finding Jaccard pairs uses prefix filtering (exact, no false negatives): with
# tokens ordered rarest first, two sets with Jaccard >= t must share a token
# among the first |x| - ceil(t*|x|) + 1 of each, so only rows sharing one of
# those few rare tokens (and the signature) are compared. That is close to
# linear on real data instead of comparing all pairs.

_TOKEN = re.compile(r"\d+(?:[.,/]\d+)*|[^\W\d_]+|[^\w\s]")
_PROSE_PUNCT = frozenset(".,;:?\"'`“”‘’„«»…¿¡")
_ENGLISH_LETTERS = frozenset({"a", "i"})  # one-letter words, not variables


def _tokens(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text).lower()
    return [t for t in _TOKEN.findall(text) if t not in _PROSE_PUNCT]


def question_key(text: str) -> str:
    """A question up to case, spacing and punctuation: ``"What is P(A|B)?"`` -> ``"what is p ( a | b )"``.

    Symbols that carry math (``+ - / = ( ) |``) are kept, so ``2 + 3`` and
    ``2 - 3`` stay different. Used in 01_data_prep (duplicates and leakage).
    """
    return " ".join(_tokens(text))


def _features(question: str) -> tuple[str, tuple[str, ...], frozenset[str]]:
    tokens = _tokens(question)
    signature = tuple(
        t for t in tokens
        if not t.isalpha() or (len(t) == 1 and t not in _ENGLISH_LETTERS)
    )
    return " ".join(tokens), signature, frozenset(tokens)


class _QuestionIndex:
    """Questions added so far, searchable for near duplicates of a new question."""

    def __init__(self, all_questions: Iterable[str], threshold: float = JACCARD_THRESHOLD):
        self._t = Fraction(threshold).limit_denominator(1000)
        self._feats: dict[str, tuple] = {}
        df: Counter = Counter()
        for q in all_questions:
            df.update(self._featurize(q)[2])
        self._df = df
        self._by_key: dict[str, Any] = {}
        self._postings: dict[tuple, list] = defaultdict(list)
        self._sets: dict[Any, frozenset] = {}

    def _featurize(self, q: str) -> tuple:
        f = self._feats.get(q)
        if f is None:
            f = self._feats[q] = _features(q)
        return f

    def _prefix(self, s: frozenset) -> list[str]:
        need = -(-(self._t.numerator * len(s)) // self._t.denominator)  # ceil(t * |s|)
        ordered = sorted(s, key=lambda tok: (self._df.get(tok, 0), tok))
        return ordered[: len(s) - need + 1]

    def add(self, ident: Any, question: str) -> None:
        key, sig, s = self._featurize(question)
        self._by_key.setdefault(key, ident)
        if s:
            self._sets[ident] = s
            for tok in self._prefix(s):
                self._postings[(sig, tok)].append(ident)

    def find(self, question: str) -> tuple[Any, str] | None:
        """``(ident, detail)`` of the most similar added question, or ``None``."""
        key, sig, s = self._featurize(question)
        if key in self._by_key:
            return self._by_key[key], "same question"
        if not s:
            return None
        t, best, seen = self._t, None, set()
        for tok in self._prefix(s):
            for ident in self._postings.get((sig, tok), ()):
                if ident in seen:
                    continue
                seen.add(ident)
                other = self._sets[ident]
                inter = len(s & other)
                union = len(s) + len(other) - inter
                if inter * t.denominator >= t.numerator * union:
                    score = Fraction(inter, union)
                    if best is None or score > best[0]:
                        best = (score, ident)
        if best is None:
            return None
        return best[1], f"jaccard {float(best[0]):.2f}"


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in choices:
        allowed = " or ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be {allowed}, got {value!r}")


def clean_rows(
    rows: list[dict],
    count_tokens: Callable[[dict], int] | None = None,
    max_length: int | None = None,
    on_too_long: str = "drop",
) -> CleanResult:
    """Normalise whitespace, drop duplicates and over-long rows, and say why.

    Returns new row dicts (the input is not changed) with ``question`` and
    ``answer`` passed through ``normalize_whitespace``. In input order, the
    first of a group is kept and a later row is dropped when it is
      * ``invalid``: not a row ``load_qa_file`` would accept;
      * an ``exact duplicate``: same normalised question and answer;
      * a ``near duplicate``: same ``question_key`` (case, spacing,
        punctuation), or same numbers/symbols/variables and a token-set Jaccard
        similarity >= 0.9 with a kept question (see the comment above
        ``_QuestionIndex``; prefix filtering keeps this near linear);
      * ``too long``: with ``count_tokens`` and ``max_length``,
        ``count_tokens(row) > max_length`` (the row after whitespace normalisation). Rows are never
        truncated: ``on_too_long="drop"`` drops them, ``"report"`` keeps them
        and lists them in ``CleanResult.reported``.

    ``count_tokens`` should count what training sees: 01_data_prep passes
    helpers.sft.count_tokens, which lays the row out with the chat template.

    Used in 01_data_prep.
    """
    _check_choice("on_too_long", on_too_long, ("drop", "report"))
    if max_length is not None:
        if count_tokens is None:
            raise ValueError("max_length needs count_tokens (a callable: row -> token count)")
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
            raise ValueError(f"max_length must be a positive int, got {max_length!r}")
    if count_tokens is not None and not callable(count_tokens):
        raise ValueError(f"count_tokens must be callable, got {count_tokens!r}")

    rows = list(rows)
    normalised: list[dict | None] = []
    problems: list[list[str]] = []
    for obj in rows:
        found, row = _check_row(obj)
        if row is not None:
            row["question"] = normalize_whitespace(row["question"])
            row["answer"] = normalize_whitespace(row["answer"])
        normalised.append(row)
        problems.append(found)

    index = _QuestionIndex(r["question"] for r in normalised if r is not None)
    exact: dict[tuple[str, str], int] = {}
    kept, dropped, reported = [], [], []

    def entry(i: int, reason: str, detail: str, dup: int | None = None) -> dict:
        q = rows[i].get("question") if isinstance(rows[i], dict) else rows[i]
        return {"index": i, "reason": reason, "detail": detail,
                "question": _preview(q if isinstance(q, str) else _row_preview(q)),
                "duplicate_of": dup}

    for i, row in enumerate(normalised):
        if row is None:
            dropped.append(entry(i, "invalid", "; ".join(problems[i])))
            continue
        pair = (row["question"], row["answer"])
        if pair in exact:
            dropped.append(entry(i, "exact duplicate", "same question and answer", exact[pair]))
            continue
        match = index.find(row["question"])
        if match is not None:
            dropped.append(entry(i, "near duplicate", match[1], match[0]))
            continue
        if max_length is not None:
            n = count_tokens(row)
            if isinstance(n, bool) or not isinstance(n, int):
                raise TypeError(f"count_tokens must return an int, got {n!r}")
            if n > max_length:
                item = entry(i, "too long", f"{n} tokens > max_length {max_length}")
                if on_too_long == "drop":
                    dropped.append(item)
                    continue
                reported.append(item)
        exact[pair] = i
        index.add(i, row["question"])
        kept.append(row)
    return CleanResult(kept, dropped, reported)


# --------------------------------------------------------------------------- splitting


def _stratum(row: dict, stratify_key: str | None) -> str:
    for key in (stratify_key, "topic"):
        if key is not None and isinstance(row, dict) and row.get(key) is not None:
            return f"{key}={row[key]}"
    return "all"


def _question(row: Any) -> str:
    q = row.get("question") if isinstance(row, dict) else None
    return q if isinstance(q, str) else ""


def _leaks(train: list[dict], val: list[dict]) -> list[tuple[int, int, str]]:
    """``(val_index, train_index, detail)`` for each val row near-duplicating a train row."""
    train, val = list(train), list(val)
    index = _QuestionIndex(_question(r) for r in [*train, *val])
    for j, row in enumerate(train):
        index.add(j, _question(row))
    out = []
    for i, row in enumerate(val):
        match = index.find(_question(row))
        if match is not None:
            out.append((i, match[0], match[1]))
    return out


def leakage_check(train: list[dict], val: list[dict]) -> list[dict]:
    """The val rows whose question near-duplicates a train question (empty = no leakage).

    Near duplicate means what it means in ``clean_rows``: same ``question_key``,
    or same numbers/symbols and token-set Jaccard >= 0.9. Used in 01_data_prep.
    """
    val = list(val)
    return [val[i] for i, _, _ in _leaks(train, val)]


def leakage_report(train: list[dict], val: list[dict]) -> list[dict]:
    """Like ``leakage_check`` but as a table: val and train index, detail, both questions.

    Used in 01_data_prep.
    """
    train, val = list(train), list(val)
    return [
        {"val_index": i, "train_index": j, "detail": detail,
         "question": _preview(_question(val[i])), "train_question": _preview(_question(train[j]))}
        for i, j, detail in _leaks(train, val)
    ]


def split_rows(
    rows: list[dict],
    val_fraction: float,
    seed: int | str,
    stratify_key: str | None = "family",
) -> tuple[list[dict], list[dict]]:
    """Deterministic stratified train/validation split with no near-duplicate leakage.

    Strata: ``row[stratify_key]`` (default ``family``), else ``row["topic"]``,
    else one stratum ``"all"`` (``stratify_key=None``: topic or all). Each
    stratum is shuffled with its own ``random.Random(f"{seed}:{stratum}")``, so
    the same seed gives the same split, and adding a family does not reshuffle
    the others. About ``round(n * val_fraction)`` rows of each stratum go to
    validation, but always at least one stays in train (a single-row stratum
    goes to train). Then every val row that near-duplicates a train row (see
    ``leakage_check``) is moved to train, repeated until none does, so the
    returned split has no leakage (val can end up a little smaller).

    Rows keep their input order within train and val; they are not copied.
    ``val_fraction`` must be in [0, 1). Used in 01_data_prep.
    """
    if (
        isinstance(val_fraction, bool)
        or not isinstance(val_fraction, (int, float))
        or math.isnan(val_fraction)
        or not 0 <= val_fraction < 1
    ):
        raise ValueError(f"val_fraction must be a number in [0, 1), got {val_fraction!r}")
    rows = list(rows)
    for i, row in enumerate(rows):
        problems, _ = _check_row(row)
        if problems:
            raise DataError(f"split_rows: row index {i}: {'; '.join(problems)}")

    strata: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        strata[_stratum(row, stratify_key)].append(i)
    in_val = [False] * len(rows)
    for name in sorted(strata):
        members = strata[name][:]
        random.Random(f"{seed}:{name}").shuffle(members)
        n_val = min(int(len(members) * val_fraction + 0.5), len(members) - 1)
        for i in members[:n_val]:
            in_val[i] = True

    index = _QuestionIndex(r["question"] for r in rows)
    for i, row in enumerate(rows):
        if not in_val[i]:
            index.add(i, row["question"])
    pending = [i for i in range(len(rows)) if in_val[i]]
    while True:
        leaked = [i for i in pending if index.find(rows[i]["question"]) is not None]
        if not leaked:
            break
        for i in leaked:
            in_val[i] = False
            index.add(i, rows[i]["question"])
        pending = [i for i in pending if in_val[i]]

    train = [r for r, v in zip(rows, in_val) if not v]
    val = [r for r, v in zip(rows, in_val) if v]
    return train, val


# --------------------------------------------------------------------------- writing


def _dumps(data: Any, name: str, default: Callable | None = None) -> bytes:
    try:
        return (json.dumps(data, indent=1, ensure_ascii=False, default=default) + "\n").encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:
        raise DataError(f"{name}: cannot write as JSON: {exc}") from None


def _remove_quietly(path: str | os.PathLike) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def write_json_atomic(path: str | os.PathLike, data: Any, default: Callable | None = None) -> str:
    """Write ``data`` as JSON (indent=1, UTF-8) so that ``path`` is never half-written.

    Serialises first, then ``helpers.runs.write_atomic`` (temp file, rename).
    Returns the SHA-256 of the bytes written. ``default`` is json's hook for
    values JSON has no type for; without it they raise ``DataError`` (the
    strict form for data files; run records use helpers.runs.write_json_atomic,
    which writes them as text). Used in 06_rag.
    """
    return write_atomic(path, _dumps(data, str(path), default))


REPORT_NAME = "data_report.json"


def write_training_files(
    out_dir: str | os.PathLike,
    files: dict[str, list[dict]],
    report: dict | None = None,
) -> list[dict]:
    """Write several row files (and a report) all-or-nothing.

    ``files`` maps a plain file name ending in ``.json`` (e.g. ``"train.json"``)
    to its rows. Everything is checked and serialised first (every row must be
    valid, see ``load_qa_file``); then all files are written to temp names in
    ``out_dir``; only when all of them are on disk are they renamed into place.
    A failure before that point leaves the previous files untouched and no temp
    files behind. (The final renames are separate ``os.replace`` calls; one
    failing there, which needs the folder to change under us, could leave a
    mix.) ``report``, if given, is written as ``data_report.json``.

    Files are JSON lists, indent=1, ``ensure_ascii=False``. Returns one dict per
    file written: file, rows, bytes, sha256. Used in 01_data_prep.
    """
    if not isinstance(files, dict) or not files:
        raise ValueError("files must be a non-empty dict of file name -> rows")
    out_dir = Path(out_dir)
    payloads: dict[str, tuple[bytes, int | None]] = {}
    for name, rows in files.items():
        if not isinstance(name, str) or name != Path(name).name or name.startswith(".") or not name.endswith(".json"):
            raise ValueError(f"file names must be plain names ending in .json, got {name!r}")
        if name == REPORT_NAME:
            raise ValueError(f"{name!r} is reserved for the report")
        if not isinstance(rows, list):
            raise DataError(f"{name}: expected a list of rows, got {_type_name(rows)}")
        for i, row in enumerate(rows, 1):
            problems, _ = _check_row(row)
            if problems:
                raise DataError(f"{name}: row {i}: {'; '.join(problems)}")
        payloads[name] = (_dumps(rows, name), len(rows))
    if report is not None:
        if not isinstance(report, dict):
            raise DataError(f"{REPORT_NAME}: report must be a dict, got {_type_name(report)}")
        payloads[REPORT_NAME] = (_dumps(report, REPORT_NAME), None)

    out_dir.mkdir(parents=True, exist_ok=True)
    temps: dict[str, str] = {}
    try:
        for name, (payload, _) in payloads.items():
            temps[name] = _write_temp(out_dir, name, payload)
    except BaseException:
        for tmp in temps.values():
            _remove_quietly(tmp)
        raise
    written = []
    try:
        for name, tmp in list(temps.items()):
            os.replace(tmp, out_dir / name)
            del temps[name]
            payload, n_rows = payloads[name]
            written.append({"file": str(out_dir / name), "rows": n_rows, "bytes": len(payload),
                            "sha256": hashlib.sha256(payload).hexdigest()})
    finally:
        for tmp in temps.values():
            _remove_quietly(tmp)
    return written


def file_sha256(path: str | os.PathLike) -> str:
    """``helpers.runs.sha256_file``, with a ``DataError`` naming the file it cannot read. Used in 01_data_prep."""
    try:
        return sha256_file(path)
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from None


# --------------------------------------------------------------------------- summary


def _length_stats(values: list[int]) -> dict:
    if not values:
        return {"min": 0, "median": 0, "mean": 0.0, "max": 0}
    return {"min": min(values), "median": statistics.median(values),
            "mean": round(statistics.fmean(values), 1), "max": max(values)}


def _count_by(rows: list[dict], key: str) -> dict:
    counts = Counter(str(r[key]) for r in rows if isinstance(r, dict) and r.get(key) is not None)
    return dict(sorted(counts.items()))


def summarize(rows: list[dict]) -> dict:
    """Row count, counts per family / topic / difficulty, and question/answer lengths (chars).

    Used in 01_data_prep.
    """
    rows = list(rows)

    def lengths(name: str) -> list[int]:
        return [len(r[name]) for r in rows if isinstance(r, dict) and isinstance(r.get(name), str)]

    return {
        "rows": len(rows),
        "by_family": _count_by(rows, "family"),
        "by_topic": _count_by(rows, "topic"),
        "by_difficulty": _count_by(rows, "difficulty"),
        "question_chars": _length_stats(lengths("question")),
        "answer_chars": _length_stats(lengths("answer")),
    }


# Generated problems are part of the same data story; 01_data_prep imports them from here.
from helpers.problems import FAMILIES, generate_problems  # noqa: E402,F401


def transfer_leaks(rows: list[dict]) -> list[dict]:
    """Rows whose question repeats a transfer or retention question (empty = none leak).

    Repeats means what it means in ``clean_rows``: the same ``question_key``, or
    the same numbers/symbols and token-set Jaccard >= 0.9 (helpers.transfer's
    questions measure wording the model has never seen, so none may be trained
    on). One dict per leaking row: index, question, transfer_question, source
    (``transfer:<kind>``), detail. Used by ``build_training_sets`` (01_data_prep).
    """
    from helpers.transfer import retention_candidates, transfer_set  # here: helpers.transfer imports this module

    held = transfer_set() + retention_candidates()
    rows = list(rows)
    index = _QuestionIndex([r["question"] for r in held] + [_question(r) for r in rows])
    for j, r in enumerate(held):
        index.add(j, r["question"])
    out = []
    for i, row in enumerate(rows):
        match = index.find(_question(row))
        if match is not None:
            out.append({"index": i, "question": _preview(_question(row)),
                        "transfer_question": _preview(held[match[0]]["question"]),
                        "source": held[match[0]]["source"], "detail": match[1]})
    return out


def build_training_sets(rows: list[dict], val_fraction: float, grpo_fraction: float, seed: int,
                        grpo_concepts: bool = False) -> dict[str, list[dict]]:
    """The four files the seed names, from one cleaned pool of rows.

    Validation is split off first and shared by both stages, so SFT and GRPO
    are graded on the same held-out questions and neither trains on them. The
    rest is divided so GRPO practises on problems SFT never saw (a policy
    cannot improve by reward on answers it has memorised). GRPO gets only rows
    it can reward exactly (``final_answer``), plus concept rows when
    ``grpo_concepts`` (rewarded by similarity). Raises ``ValueError`` when a row
    repeats a transfer question (``transfer_leaks``).

    Used in 01_data_prep.
    """
    if not 0 <= grpo_fraction < 1:
        raise ValueError(f"grpo_fraction: must be in [0, 1), got {grpo_fraction!r}")
    leaks = transfer_leaks(rows)
    if leaks:
        first = leaks[0]
        raise ValueError(f"{len(leaks)} row(s) repeat a transfer question, which must never be trained on; "
                         f"first: row index {first['index']} {first['question']!r} ({first['detail']} with "
                         f"{first['source']} {first['transfer_question']!r})")
    train, val = split_rows(rows, val_fraction, seed)
    if grpo_fraction > 0:
        sft_train, grpo_pool = split_rows(train, grpo_fraction, seed + 1)
    else:
        sft_train, grpo_pool = train, list(train)

    def for_grpo(items):
        return [r for r in items if r.get("final_answer") not in (None, "") or grpo_concepts]

    return {
        "sft_train.json": sft_train,
        "sft_val.json": val,
        "grpo_train.json": for_grpo(grpo_pool),
        "grpo_val.json": for_grpo(val),
    }


#: The default difficulty mix of generated problems: mostly problems a small model can learn to solve,
#: so SFT has something to imitate and GRPO finds groups where some samples are right and some wrong.
DEFAULT_DIFFICULTY_MIX = {"easy": 0.7, "medium": 0.25, "hard": 0.05}


def generate_mix(n: int, seed: int, mix: dict[str, float] | None = None, families=None) -> list[dict]:
    """``n`` generated problems split across difficulties by ``mix`` (weights, normalised).

    Used in 01_data_prep.
    """
    mix = dict(DEFAULT_DIFFICULTY_MIX if mix is None else mix)
    unknown = set(mix) - {"easy", "medium", "hard"}
    if unknown or any((not isinstance(w, (int, float))) or w < 0 for w in mix.values()) or not sum(mix.values()):
        raise ValueError(f"difficulty_mix: weights for easy/medium/hard, >= 0, not all zero; got {mix!r}")
    total = sum(mix.values())
    names = [d for d in ("easy", "medium", "hard") if mix.get(d)]
    counts = {d: int(n * mix[d] / total) for d in names}
    counts[names[0]] += n - sum(counts.values())
    rows: list[dict] = []
    for i, d in enumerate(names):
        if counts[d]:
            rows += generate_problems(counts[d], seed=seed * 10 + i, families=families, difficulty=d)
    random.Random(seed).shuffle(rows)
    return rows
