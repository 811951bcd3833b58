"""Replay: the base model's own verified-right answers, mixed into SFT to keep what it knew.

Why this module exists: SFT on the workbook's short worked solutions moves a small
model away from how it answered before, and on questions in other words it then
loses answers the base model had right (the retention table of 03 and 05). A
common remedy for this forgetting is to train on the model's own outputs as well
(self-distillation, Yang et al. 2024, "Self-Distillation Bridges Distribution Gap
in Language Model Fine-Tuning"): those targets are already likely under the base
model, so they pull the weights back towards it on exactly the questions it could
answer.

The replay rows are the base model's greedy completions to training-generator
questions (helpers.problems, a seed of their own) and to training-split concept
questions, kept only where the retention rule (``evaluate.answered_right``)
grades them right and the arithmetic they write is true (``shows_its_working``),
with the workbook's ``Answer:`` line added to numeric ones.
Transfer questions are never used: they stay an evaluation the workbook never
trains on. Building them takes minutes of generation, so they are built once
(``python -m helpers replay``), stored in ``data/replay_set.json`` with the
model and decoding that made them, and 01_data_prep adds them to SFT training
(``REPLAY_COPIES``). Measured 2026-12-03 on the embedded model: 21 rows from 384
questions, and 4 copies of them left retention at 5 of 23 and transfer within
noise (README), so 01 leaves replay off by default.
"""

from __future__ import annotations

import ast
import json
import operator
import re
from fractions import Fraction
from pathlib import Path

from helpers.answers import answers_equal, extract_final_answer, parse_number

#: The stored replay rows (``python -m helpers replay``).
REPLAY_FILE = Path(__file__).resolve().parents[1] / "data" / "replay_set.json"
#: Generator seed of the replay questions: apart from 01's GENERATOR_SEED (7), so they are new questions.
REPLAY_SEED = 1001
#: Families whose questions the base model answers right often enough to be worth the generation time:
#: on 96 easy problems of all 15 families (2026-12-03) it was right on 2 of 6 arithmetic, 1 of 7 word
#: problems, 1 of 6 coins and 0-1 of 6-7 in each other family; on the transfer-style retention
#: candidates, on 5 of 15 arithmetic and 4 of 15 percentages questions. The 384 questions of the stored set
#: gave 28 right (6, 12, 6 and 4 of 96 in the order below) and 21 worked to the answer by true arithmetic.
REPLAY_FAMILIES = ("arithmetic", "word_problem", "percentages", "coins")


def replay_candidates(n_generated: int = 384, n_concept: int = 0, seed: int = REPLAY_SEED,
                      families=REPLAY_FAMILIES) -> list[dict]:
    """What replay is built from: easy generated problems of ``families`` and training-split concept questions.

    The concept questions are those of ``data/concept_qa.json`` that the committed
    ``sft_val.json`` does not hold, so replay never trains on a held-out question. None
    by default: the base model's one concept answer graded right in the retention set
    (1 of 22, by embedding similarity) is wrong in substance, so similarity is not
    verification enough to train on.
    """
    from helpers.evaluate import is_numeric_record
    from helpers.problems import generate_problems

    root = Path(__file__).resolve().parents[1] / "data"
    held_out = {r["question"] for r in json.loads((root / "training_data" / "sft_val.json").read_text())}
    concept = [r for r in json.loads((root / "concept_qa.json").read_text())
               if r["question"] not in held_out and not is_numeric_record(r)][:n_concept]
    generated = generate_problems(n_generated, seed=seed, families=list(families), difficulty="easy")
    return generated + concept


#: ``<arithmetic> = <number>``: the left side is the longest run of numbers, operators, brackets and ``$`` before
#: the ``=`` (``2 * 33 = 66``, ``0.2 * 100 = 20%``, ``6 * $10 = $60``); a right side that goes on
#: (``= 0.2 * 100``) is skipped.
_EQUATION = re.compile(r"([\d.,$()+\-*/x×÷ ]*[\d)])\s*=\s*(\$?\d[\d,]*(?:\.\d+)?(?:/\d+)?%?)"
                       r"(?!\d|[.,/]\d|%|\s*[-+*/x×÷]\s*[\d($])")  # a number, not the start of ``= 0.2 * 100``
_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def _exact_value(expression: str) -> Fraction | None:
    """The exact value of ``3 x 9`` or ``(2/12) + (1/4)``; ``None`` if it is not plain arithmetic."""
    text = expression.replace("$", "").replace(",", "").replace("×", "*").replace("÷", "/")
    text = re.sub(r"(?<=[\d)])\s*x\s*(?=[\d(])", "*", text)

    def value(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return Fraction(str(node.value))
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            left, right = value(node.left), value(node.right)
            return _OPERATORS[type(node.op)](left, right)
        raise ValueError("not plain arithmetic")

    try:
        tree = ast.parse(text.strip(), mode="eval").body
        return value(tree) if isinstance(tree, ast.BinOp) else None
    except (SyntaxError, ValueError, ZeroDivisionError):
        return None


def shows_its_working(completion: str, final_answer) -> bool:
    """True when the answer is the result of an equation the completion writes, and none it writes is false.

    Graded right is not enough to train on: a small model reaches a right number by
    a wrong road (``(2/12) + (1/4) = 3/12``, then the answer) or states it without
    working. Only arithmetic the text writes out is checked (``a op b = c``, exactly),
    so this catches false steps and unworked answers, not a true sum of the wrong
    numbers: of the 21 rows it kept on 2026-12-03, read one by one, 18 are worked
    soundly and 3 put a wrong sentence beside the right computation.
    """
    computed = False
    for expression, result in _EQUATION.findall(completion):
        left, right = _exact_value(expression), parse_number(result.rstrip("%"))  # 0.2 * 100 = 20%
        if left is None or right is None:
            continue
        if left != right:
            return False
        computed = computed or answers_equal(result, final_answer)
    return computed


def replay_row(record: dict, completion: str) -> dict:
    """A training row whose answer is the base model's completion, ending in the workbook's ``Answer:`` line."""
    answer = completion.strip()
    final = record.get("final_answer")
    if final and extract_final_answer(answer, strict=True) is None:
        answer = f"{answer}\nAnswer: {final}"
    row = {"question": record["question"], "answer": answer, "origin": "replay"}
    for key in ("final_answer", "family", "difficulty", "topic", "source"):
        if record.get(key) not in (None, ""):
            row[key] = record[key]
    return row


def build_replay_file(model_name: str = "embedded", n_generated: int = 384, n_concept: int = 0,
                      max_new_tokens: int = 192, path: str | Path = REPLAY_FILE) -> dict:
    """Generate the base model's answers to the replay candidates and store the right, complete ones.

    Kept: graded right (``answered_right``), not truncated (an answer cut off mid-sentence
    is not one to imitate) and, for numbers, ``shows_its_working``. 192 new tokens keep
    every right answer seen in the retention set and cut the rambling ones short, which
    sets the time of each batch. The file records which model and decoding built it and
    the yield per family; ``load_replay_rows`` refuses it for another base model. Used by
    ``python -m helpers replay``.
    """
    from helpers.compare import grade_base_answers
    from helpers.evaluate import answered_right, retention_family
    from helpers.runs import write_json_atomic

    candidates = replay_candidates(n_generated, n_concept)
    report, header = grade_base_answers(model_name, candidates, max_new_tokens)
    rows, by_family = [], {}
    for row, record in zip(report.rows, candidates):
        counts = by_family.setdefault(retention_family(record), {"kept": 0, "of": 0})
        counts["of"] += 1
        shown = shows_its_working(row["completion"], record["final_answer"]) if record.get("final_answer") else True
        if answered_right(row) and not row["truncated"] and shown:
            counts["kept"] += 1
            rows.append(replay_row(record, row["completion"]))
    summary = {**header, "seed": REPLAY_SEED, "candidates": len(candidates), "kept": len(rows),
               "by_family": dict(sorted(by_family.items()))}
    write_json_atomic(Path(path), {**summary, "rows": rows})
    return summary


def load_replay_rows(model_name: str, path: str | Path = REPLAY_FILE) -> list[dict]:
    """The stored replay rows for ``model_name``.

    Raises ``FileNotFoundError`` (naming the command that builds it) when there is
    no stored set for that base model: another model's answers are not its own.
    """
    from helpers.evaluate import read_base_model_file

    return read_base_model_file(path, model_name, "replay")["rows"]


def add_replay(files: dict[str, list[dict]], replay_rows: list[dict], copies: int = 1
               ) -> tuple[dict[str, list[dict]], dict]:
    """``files`` with ``copies`` of each replay row added to ``sft_train.json``, and what was added or dropped.

    A replay row that near-duplicates a question of any file (the leakage rule of
    ``data.leakage_check``) is dropped: in validation it would be a leak, in
    training a second, different answer to the same question. ``copies`` weighs
    replay against the generated rows without new generation. Raises ``ValueError``
    for a row that repeats a transfer question (``data.transfer_leaks``) or a bad
    ``copies``. Used in 01_data_prep.
    """
    from helpers.data import leakage_check, transfer_leaks

    if not isinstance(copies, int) or isinstance(copies, bool) or copies < 0:
        raise ValueError(f"REPLAY_COPIES: must be an integer >= 0, got {copies!r}")
    leaks = transfer_leaks(replay_rows)
    if leaks:
        raise ValueError(f"replay row {leaks[0]['index']} repeats the transfer question "
                         f"{leaks[0]['transfer_question']!r}, which must never be trained on")
    existing = [row for rows in files.values() for row in rows]
    clash = {id(row) for row in leakage_check(existing, replay_rows)}
    kept = [row for row in replay_rows if id(row) not in clash]
    out = {**files, "sft_train.json": files["sft_train.json"] + [dict(row) for _ in range(copies) for row in kept]}
    numeric = sum(1 for row in kept if row.get("final_answer"))
    return out, {"replay_rows": len(replay_rows), "kept": len(kept), "numeric": numeric,
                 "concept": len(kept) - numeric, "dropped_as_duplicates": len(replay_rows) - len(kept),
                 "copies": copies, "added_to_sft_train": len(kept) * copies}
