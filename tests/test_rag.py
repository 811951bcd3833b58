"""RAG (helpers/rag.py): chunking, retrieval recall on hand-written paraphrases, the adapter swap,
the ablation, Option 2's parse/filter/save path, and 4-bit on CPU.

The knowledge base is the real one (276 concept passages, the packaged
all-MiniLM-L6-v2); the generator is the tiny 2-layer model from conftest.py, so
the whole file runs in well under a minute on CPU.
"""

from __future__ import annotations

import json
import warnings

import pytest

from helpers import rag as R
from helpers.data import load_qa_file

# 30 concept questions reworded by hand -> the row of data/concept_qa.json they ask about.
PARAPHRASES = [
    ("What do we call the set of every outcome an experiment can have?", "What is a sample space?"),
    ("Can you name a sample space with uncountably many outcomes?",
     "Give an example of a continuous (uncountable) sample space."),
    ("P(A) is 0.4, P(B) is 0.5 and both happen with probability 0.2. Find the probability that A or B happens.",
     "If P(A) = 0.4, P(B) = 0.5 and P(A ∩ B) = 0.2, what is P(A ∪ B)?"),
    ("What does the product rule for counting say?", "State the multiplication principle of counting."),
    ("Explain why choosing k items out of n gives as many ways as choosing n - k.",
     "Why is C(n, k) equal to C(n, n - k)?"),
    ("A die roll is known to be even; how likely is it that it shows six?",
     "A fair die is rolled and you are told the result is even. What is the probability that it is a 6?"),
    ("What condition makes a pair of events independent?", "When are two events independent?"),
    ("Is a probability-zero event independent of any event at all?",
     "Is an event of probability 0 independent of every other event?"),
    ("Define the sensitivity and the specificity of a medical test.",
     "What are the sensitivity and specificity of a diagnostic test?"),
    ("Show a random variable built on tossing a coin three times.",
     "Give an example of a random variable defined on three coin tosses."),
    ("What is a random variable that is partly discrete and partly continuous?",
     "What is a mixed random variable? Give an example."),
    ("Which value of c turns c x^2 on the unit interval into a probability density?",
     "Find the constant c that makes f(x) = c x^2 on [0, 1] (and 0 elsewhere) a valid density."),
    ("Explain LOTUS, the rule for the expectation of a function of a random variable.",
     "What is the law of the unconscious statistician (LOTUS)?"),
    ("What is the variance of the outcome of one fair six-sided die?",
     "Compute the variance of a single roll of a fair six-sided die."),
    ("What must hold for a count of successes to be binomial?", "Which assumptions does the binomial model require?"),
    ("X is binomial with n = 5 and p = 0.2. Find the probability that X equals zero.",
     "For X ~ Binomial(5, 0.2), what is P(X = 0)?"),
    ("Name the discrete distribution with the memoryless property.", "Which discrete distribution is memoryless?"),
    ("X is Poisson with mean 2. What is the probability that X is exactly 2?", "If X ~ Poisson(2), what is P(X = 2)?"),
    ("Write the density of a uniform random variable on the interval from a to b.",
     "What is the PDF of the continuous uniform distribution on [a, b]?"),
    ("Buses run every 15 minutes and I show up at a random moment: how long do I wait on average, and how "
     "likely is a wait over 10 minutes?",
     "A bus comes every 15 minutes and you arrive at a uniformly random time. What are your expected wait and the "
     "probability of waiting more than 10 minutes?"),
    ("How is the smallest of several independent exponential variables distributed?",
     "What is the distribution of the minimum of independent exponential random variables?"),
    ("How do you turn a normal variable into a standard normal one?",
     "How do you standardize a normal random variable?"),
    ("X is normal with mean 50 and variance 16. Find the probability that X lies between 46 and 54.",
     "If X ~ N(50, 16), what is P(46 ≤ X ≤ 54)?"),
    ("Given the joint pmf P(0,0)=0.1, P(0,1)=0.3, P(1,0)=0.2, P(1,1)=0.4, is X independent of Y?",
     "For the joint table P(0,0) = 0.1, P(0,1) = 0.3, P(1,0) = 0.2, P(1,1) = 0.4 of (X, Y), are X and Y "
     "independent?"),
    ("If two variables are uncorrelated, must they be independent? Show an example.",
     "Does zero correlation imply independence? Give an example."),
    ("Define the covariance matrix of a random vector and list its properties.",
     "What is a covariance matrix, and what properties does it have?"),
    ("With 100 fair coin flips, what does Chebyshev's bound say about the share of heads being 0.1 or more away "
     "from one half?",
     "A fair coin is tossed 100 times. What upper bound does Chebyshev's inequality give for the probability that "
     "the proportion of heads differs from 0.5 by at least 0.1?"),
    ("When is it fine to approximate a binomial distribution with a normal one?",
     "Under what conditions is the normal approximation to the binomial reasonable?"),
    ("In which situations does the central limit theorem not hold?",
     "When does the classical central limit theorem fail?"),
    ("Explain the idea of maximum likelihood estimation.", "What is maximum likelihood estimation?"),
]


@pytest.fixture(scope="module")
def rag(tiny_model_dir):
    pipeline = R.RAGPipeline(model_name=str(tiny_model_dir), top_k=3, max_new_tokens=12)
    pipeline.initialize()
    return pipeline


@pytest.fixture(scope="module")
def adapter_dir(tiny_model_dir, tmp_path_factory):
    """A LoRA adapter that is NOT a no-op (init_lora_weights=False), saved like a final_model/."""
    import torch
    from peft import LoraConfig, get_peft_model

    from helpers.models import load_base_model

    torch.manual_seed(1)
    model = get_peft_model(load_base_model(str(tiny_model_dir)),
                           LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    out = tmp_path_factory.mktemp("run") / "final_model"
    model.save_pretrained(out)
    return out


# ---------------------------------------------------------------- chunking and the knowledge base
def test_chunks_keep_paragraphs_and_overlap_long_ones():
    text = "alpha beta gamma\n\ndelta epsilon\n\n" + " ".join(f"w{i}" for i in range(25))
    chunks = R.chunk_text(text, max_words=10, overlap_words=3)
    assert chunks[0] == "alpha beta gamma delta epsilon"  # short paragraphs packed together
    assert all(len(c.split()) <= 10 for c in chunks)
    windows = [c.split() for c in chunks[1:]]
    assert windows[0][:2] == ["w0", "w1"] and windows[-1][-1] == "w24"
    for a, b in zip(windows, windows[1:]):
        assert a[-3:] == b[:3]  # consecutive windows of a long paragraph overlap by 3 words
    covered = {w for c in chunks for w in c.split()}
    assert covered == set(text.split())
    with pytest.raises(ValueError):
        R.chunk_text(text, max_words=5, overlap_words=5)


def test_knowledge_files_add_chunks_and_qa_rows(tmp_path):
    notes = tmp_path / "notes.md"
    notes.write_text("# Poisson\n" + "The Poisson distribution counts events. " * 40
                     + "\n\n# Dice\nA die has six faces.\n")
    qa = tmp_path / "extra.jsonl"
    qa.write_text(json.dumps({"question": "What is a die?", "answer": "A cube.", "source": "my notes"}) + "\n")
    passages = R.load_knowledge([str(notes), str(qa)], include_concepts=False, max_words=120, overlap_words=20)
    sources = [p.source for p in passages]
    assert sources[0].startswith("notes.md › Poisson (part 1)") and "notes.md › Dice" in sources
    assert all(len(p.text.split()) <= 120 for p in passages if not p.question)
    assert passages[-1].text == "Q: What is a die?\nA: A cube." and passages[-1].source == "my notes"
    with pytest.raises(FileNotFoundError):
        R.load_knowledge([str(tmp_path / "missing.md")], include_concepts=False)


# ---------------------------------------------------------------- retrieval
def test_retrieval_recall_at_3_on_paraphrased_questions(rag):
    assert len(rag.passages) == 276 and all(p.question for p in rag.passages)
    result = R.retrieval_recall(rag, [p for p, _ in PARAPHRASES], [t for _, t in PARAPHRASES], k=3)
    missed = [r["question"] for r in result["rows"] if not r["found"]]
    print(f"\nrecall@3 on {result['n']} paraphrased concept questions: {result['recall']:.2f} (missed: {missed})")
    assert result["n"] == 30
    assert result["recall"] >= 0.8, missed


def test_retrieve_returns_scored_passages_with_sources(rag):
    found = rag.retrieve("When are two events independent?", k=3)
    assert len(found) == 3
    assert found[0].question == "When are two events independent?"
    assert found[0].source.startswith("Workbook notes §")
    assert [p.score for p in found] == sorted((p.score for p in found), reverse=True)
    assert 0 < found[0].score <= 1.0001


def test_answer_is_one_user_message_with_passages_then_question(rag):
    out = rag.answer("What is a sample space?", max_new_tokens=4)
    assert set(out) >= {"answer", "passages", "sources", "prompt"}
    assert out["sources"] == list(dict.fromkeys(p.source for p in out["passages"]))
    prompt = out["prompt"]
    assert prompt.index(out["passages"][0].text) < prompt.index("Question: What is a sample space?")
    plain = rag.answer("What is a sample space?", use_retrieval=False, max_new_tokens=4)
    assert plain["prompt"] == "What is a sample space?" and plain["passages"] == [] and plain["sources"] == []


# ---------------------------------------------------------------- adapters
def test_adapter_swap_changes_answers_both_ways(rag, adapter_dir):
    from peft import PeftModel

    question = "When are two events independent?"
    base = rag.answer(question)["answer"]
    rag.use_adapter(adapter_dir)
    tuned = rag.answer(question)["answer"]
    assert tuned != base
    rag.use_base()
    assert rag.answer(question)["answer"] == base and not isinstance(rag.model_loader.model, PeftModel)
    # The seed's way: replace the loader's model; the pipeline reads it at the next call.
    rag.model_loader.model = PeftModel.from_pretrained(rag.model_loader.model, str(adapter_dir))
    assert rag.answer(question)["answer"] == tuned
    rag.use_adapter(adapter_dir.parent)  # a run folder works too, and an adapter already on is taken off first
    assert rag.answer(question)["answer"] == tuned
    rag.use_base()
    assert rag.answer(question)["answer"] == base


def test_ablation_rows_and_chart(rag, adapter_dir):
    records = [{"question": t, "answer": "reference answer"} for _, t in PARAPHRASES[:2]]
    summary, examples = R.rag_ablation(rag, records, {"base": None, "lora": adapter_dir}, max_new_tokens=6,
                                       n_examples=2)
    assert [(r["model"], r["retrieval"]) for r in summary] == [("base", "off"), ("base", "on"),
                                                             ("lora", "off"), ("lora", "on")]
    assert all(r["n"] == 2 and r["token_f1"] is not None for r in summary)
    assert summary[1]["recall@3"] == 1.0 and summary[0]["recall@3"] is None
    assert len(examples) == 2 and {"base · RAG", "lora · no RAG", "retrieved"} <= set(examples[0])
    from peft import PeftModel

    assert not isinstance(rag.model_loader.model, PeftModel)  # left on the base model
    fig = R.plot_ablation(summary)
    assert len(fig.axes) == 2


def test_use_4bit_on_cpu_falls_back_with_a_note(tiny_model_dir):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: 4-bit really loads")
    with pytest.warns(UserWarning, match="CUDA"):
        pipeline = R.RAGPipeline(model_name=str(tiny_model_dir), use_4bit=True)
    assert pipeline.use_4bit is False and "CUDA" in pipeline.notes[0]


# ---------------------------------------------------------------- Option 2
NOTES = """# Poisson
The Poisson distribution counts events in a fixed interval of time or space.

# Dice
A fair die shows each face with probability 1/6, so two sixes in a row have probability 1/36.

# Bayes
Bayes' theorem turns P(B|A) into P(A|B) using the prior P(A) and the evidence P(B).

# Exponential
The exponential distribution models waiting times and is memoryless.

# Counts
The Poisson distribution counts events in a fixed interval, and its variance equals its mean.
"""

QA_ROWS = [
    {"question": "What is the mean of a Poisson distribution?", "answer": "Its mean is lambda.", "source": "my notes"},
    {"question": "What does a histogram show?", "answer": "How often values fall in each bin.", "source": "my notes"},
    {"question": "What does a box plot show?", "answer": "The median and quartiles of data.", "source": "my notes"},
]

# What the stub "model" writes for the passage that contains each key (a QA row shows only its answer).
WRITES = {
    "counts events in a fixed interval of time": "Question: What does the Poisson distribution count?\n"
                                                 "Answer: It counts events in a fixed interval of time or space.",
    "two sixes in a row": "Question: What is the probability of two sixes in a row with a fair die?\nAnswer: 1/36",
    "Bayes' theorem turns": "Question: What can Bayes' theorem be used for in medicine?\n"
                            "Answer: It forecasts the weather on Mars tomorrow.",
    "models waiting times": "Question: Which property makes the exponential distribution special?\n"
                            "Answer: It is memoryless.",
    "its variance equals its mean": "Question: What does the Poisson distribution count?\n"
                                    "Answer: It counts events in a fixed interval.",
    "Its mean is lambda": "Question: What is the mean of a Poisson distribution?\nAnswer: Its mean is lambda.",
    "each bin": "Sure! Histograms are great.",
    "quartiles": "Question: Why?\nAnswer: Because of the median.",
}


def stub_complete(prompts, settings):
    out = []
    for prompt in prompts:
        if prompt.startswith(R.RAG_INSTRUCTION):  # the self-consistency check answers its own question
            if "exponential" in prompt:
                out.append(["It is memoryless.", "Waiting in line at the bank is boring."])
            else:
                out.append(["the same answer"] * settings.num_samples)
            continue
        assert settings.do_sample and prompt.startswith(R.QA_GENERATION_PROMPT.split("{passage}")[0])
        out.append([next(text for key, text in WRITES.items() if key in prompt)])
    return out


def test_generated_pairs_are_filtered_with_reasons_and_saved_for_notebook_01(tiny_model_dir, tmp_path):
    (tmp_path / "notes.md").write_text(NOTES)
    (tmp_path / "qa.json").write_text(json.dumps(QA_ROWS))
    pipeline = R.RAGPipeline(model_name=str(tiny_model_dir), knowledge_files=[str(tmp_path / "notes.md"),
                                                                             str(tmp_path / "qa.json")],
                             include_concepts=False)
    pipeline.initialize(load_model=False)
    kept, report = R.generate_qa_pairs(pipeline, n=len(pipeline.passages), seed=0, complete=stub_complete)
    status = {r["passage source"]: r["status"] for r in report["rows"] if r["passage source"] != "my notes"}
    assert status == {"notes.md › Poisson": "kept", "notes.md › Dice": "kept",
                      "notes.md › Bayes": "not supported by the passage", "notes.md › Exponential": "inconsistent",
                      "notes.md › Counts": "duplicate"}
    assert report["counts"] == {"generated": 8, "kept": 2, "dropped: not supported by the passage": 1,
                                "dropped: inconsistent": 1, "dropped: duplicate": 1,
                                "dropped: near duplicate of a knowledge-base question": 1,
                                "dropped: no Question/Answer layout": 1, "dropped: too short": 1}
    numeric = next(r for r in kept if "sixes" in r["question"])
    assert numeric["answer"] == "Answer: 1/36" and numeric["final_answer"] == "1/36"

    saved = R.save_generated_pairs(kept, tmp_path / "generated_qa.json")
    loaded = load_qa_file(saved["file"])
    assert loaded.bad_rows == [] and len(loaded.rows) == 2
    assert all(set(r) >= {"question", "answer", "source"} for r in loaded.rows)
    assert loaded.rows[0]["source"].startswith("generated by ")
    with pytest.raises(ValueError):
        R.save_generated_pairs([], tmp_path / "empty.json")


def test_generation_with_the_real_model_path_reports_every_pair(rag):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kept, report = R.generate_qa_pairs(rag, n=2, seed=0, max_new_tokens=8)
    counts = report["counts"]
    assert counts["generated"] == 2
    assert counts["kept"] + sum(v for k, v in counts.items() if k.startswith("dropped")) == 2


# ---------------------------------------------------------------- Option 2 closed into a training round
def test_round_rows_are_training_split_concept_questions_never_held_out(tmp_path):
    train, val = tmp_path / "sft_train.json", tmp_path / "sft_val.json"
    concept = [{"question": f"What does term {i} mean?", "answer": f"Term {i} means thing {i}."} for i in range(6)]
    numeric = [{"question": "What is 2 + 2?", "answer": "2 + 2 = 4.\nAnswer: 4", "final_answer": "4"}]
    train.write_text(json.dumps(concept + numeric))
    val.write_text(json.dumps([concept[0]]))  # also in the training file, by mistake: still held out
    rows, where = R.round_rows(10, exclude=[concept[1]["question"]], train_file=str(train))
    assert sorted(r["question"] for r in rows) == sorted(c["question"] for c in concept[2:])
    assert "4 concept questions of sft_train.json" in where
    assert len(R.round_rows(2, train_file=str(train))[0]) == 2


def test_round_prompts_carry_the_notes_and_the_reference(rag):
    row = load_qa_file("data/concept_qa.json").rows[0]
    (prompt,) = R.rag_round_prompts(rag, [row])
    assert prompt["question"].startswith(R.RAG_INSTRUCTION) and prompt["question"].endswith(row["question"])
    assert row["answer"] in prompt["question"]  # its own notes row is retrieved
    assert prompt["answer"] == row["answer"] and prompt["asked"] == row["question"] and len(prompt["notes"]) >= 1


def test_a_training_round_keeps_matching_answers_and_writes_one_adapter(rag, adapter_dir, tmp_path, monkeypatch,
                                                                        workbook_output):
    """The round on the tiny model: a sampler that writes the reference for even prompts and nonsense for odd ones
    stands in for sampling (the tiny model writes nonsense), so the test can check what is kept and trained."""
    from peft import PeftModel

    from helpers import rejection_sft
    from helpers.models import load_base_model

    import shutil

    from helpers.models import load_tokenizer

    start = tmp_path / "sft_run" / "final_model"  # an SFT final_model/: the adapter and its tokenizer
    shutil.copytree(adapter_dir, start)
    load_tokenizer(rag.model_loader.model_name).save_pretrained(start)
    rows = load_qa_file("data/concept_qa.json").rows[:4]

    def sampler(model, tokenizer, prompts, settings, seed, progress=True):
        references = {r["question"]: r["answer"] for r in rows}
        texts = [[references[p["asked"]] if i % 2 == 0 else "Bananas are yellow and grow on trees."
                  for _ in range(settings.rs_samples_per_prompt)] for i, p in enumerate(prompts)]
        return [[{"text": t, "tokens": 9, "truncated": False} for t in group] for group in texts], ["no"] * len(prompts)

    monkeypatch.setattr(rejection_sft, "sample_round", sampler)
    out = workbook_output / "rag_test"
    out.mkdir()
    result, rounds = R.train_on_rag_answers(rag, rows, start, out, "fast_test", samples_per_prompt=2,
                                            max_new_tokens=16)
    assert result.status == "completed" and len(rounds) == 1
    (r,) = rounds
    assert (r["prompts"], r["samples"], r["right_samples"], r["kept_samples"]) == (4, 8, 4, 2)  # duplicates dropped
    assert r["steps"] >= 1 and (out / "round_prompts.json").is_file()
    record = json.loads(result.run.run_json.read_text())
    assert record["settings"]["rs_min_cosine"] == 0.8 and record["settings"]["sft_model"] == str(start)
    assert result.run.root == out / "training_round" and not list(workbook_output.glob("grpo_*"))
    PeftModel.from_pretrained(load_base_model(rag.model_loader.model_name), str(result.final_model))  # the seed's way
    report = R.round_report(rounds, [{"retrieval": "on", "embedding_cosine": 0.5}],
                            [{"retrieval": "on", "embedding_cosine": 0.75}], "sft")
    assert report["kept"] == 2 and "0.5 (sft) -> 0.75" in report["sentence"]
