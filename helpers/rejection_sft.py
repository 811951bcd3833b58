"""Rejection-sampling fine-tuning: the reward stage's second method, next to GRPO.

Why this module exists: on small budgets the cheap method that keeps up with
GRPO is to sample k answers per fresh prompt, keep the ones the verifier
accepts, fine-tune on them and repeat (RAFT / ReST-EM / expert iteration;
../shared/RL-NOTES.md). It learns from right answers only, so groups where every
sample is wrong cost sampling time but never push the policy anywhere. Each
round here:

1. takes fresh prompts from the reward stage's prompt file (the GRPO prompts of
   01_data_prep, filtered by ``difficulties``; questions that repeat a transfer or
   retention question are dropped), never repeating one until the pool is used up;
2. samples ``rs_samples_per_prompt`` completions per prompt at ``rs_temperature``
   (1.0) from the current policy, and one greedy completion;
3. keeps the completions ``rewards.correctness`` scores 1.0 (exact answer in the
   workbook's format, as evaluation grades; truncated ones never), deduplicated by
   their whitespace- and case-normalised text, at most ``rs_keep_per_prompt`` per
   prompt. Prompts whose *greedy* answer is wrong are weighted up: their kept
   answers enter the training rows ``rs_greedy_wrong_copies`` times, because
   those are the prompts where learning from a sample can change the greedy answer;
4. mixes in a share ``rs_sft_share`` of worked solutions (``sft_train.json``) so
   the policy keeps what SFT taught, and fine-tunes with helpers.sft's trainer.

The policy is the SFT policy (its adapter folded into the weights, as in
helpers.grpo's from_sft) plus one new LoRA trained over all rounds; at the end the
two are combined into one adapter of summed rank (helpers.grpo.save_sft_plus_grpo),
so ``final_model/`` loads on the plain base with ``PeftModel.from_pretrained`` like
every other run. The run folder, run.json, training log, NaN guard and atomic
``final_model/`` are helpers.training's; the run is a reward-stage run
(``output/grpo_<date>``, run.json ``method: rejection_sft``). Resume is not
supported (a stopped run starts again).

``method="more_sft"`` is the control the reward-based methods must beat: the same
rounds on the same fresh prompts, but each prompt's row is the generator's own worked
solution (a perfect teacher) instead of the policy's verified samples, so no time goes
to sampling. With ``max_minutes`` set, rounds go on, on fresh prompts, until the
budget is spent or every prompt was used once, and a round samples for at most a quarter
of the budget (``ROUND_SHARE``) so that it trains on what it kept; 05_compare sets the
three methods side by side at the same minutes. The control, which samples nothing,
uses up the prompt file long before a budget of 20 minutes (844 prompts in 6.6 min,
2026-12-04); once it has, its rounds go on with problems the generator writes fresh
(``teacher_round``: the same difficulties, never a transfer, retention or held-out
question), since a teacher with a generator is never out of worked solutions.

Reached through ``helpers.grpo.train_grpo`` with ``method="rejection_sft"`` or
``"more_sft"``, ``python -m helpers.grpo --method ...`` and notebook 04's ``METHOD``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import random
import shutil
import time
import types
from pathlib import Path

from helpers import config as cfg
from helpers.headroom import headroom_from_grades, is_right
from helpers.training import RunSetupError, Stage, TrainingResult, load_rows, lora_config, run_training, select_rows

DEFAULT_SFT_DATA = Path(__file__).resolve().parents[1] / "data" / "training_data" / "sft_train.json"
LOG_COLUMNS = ["step", "round", "loss", "lr", "grad_norm", "tokens_per_s", "elapsed_s"]


# ---------------------------------------------------------------- the pure parts (tests/test_rejection_sft.py)
def normalised(text: str) -> str:
    """The text two completions must share to count as one: case and whitespace ignored.

    >>> normalised("  3 + 4 = 7\\n\\nAnswer: 7 ") == normalised("3 + 4 = 7 answer: 7")
    True
    """
    return " ".join(text.lower().split())


def _sample_text(sample) -> tuple[str, bool]:
    """(text, truncated) of a sample from helpers.evaluate.generate, or of a plain string."""
    if isinstance(sample, str):
        return sample, False
    return sample["text"], bool(sample.get("truncated"))


def answer_key_verifier(prompt: dict, texts: list[str]) -> list[bool]:
    """The reward stage's verifier, per sample: ``rewards.correctness`` gives 1.0 against the row's answer key."""
    return [is_right(text, prompt["final_answer"]) for text in texts]


def reference_verifier(min_cosine: float):
    """A verifier for rows with or without an answer key: the answer key when there is one, else the sample
    must say what the row's reference answer says (embedding cosine of the explanation, without its
    ``Answer:`` line, at least ``min_cosine``, and at least three words).

    Why: concept questions have no exact answer to check, but they have a reference; 06's RAG round keeps
    the answers written with the notes that match it (the seed's RAG option 2, "reference-similar" pairs).
    """
    def verify(prompt: dict, texts: list[str]) -> list[bool]:
        if prompt.get("final_answer"):
            return answer_key_verifier(prompt, texts)
        from helpers.evaluate import embedding_similarity, strip_answer_line

        bodies = [strip_answer_line(t) for t in texts]
        sims = embedding_similarity(bodies, [prompt["answer"]] * len(bodies)) if bodies else []
        if sims is None:
            raise RuntimeError("rs_min_cosine: the sentence encoder (all-MiniLM-L6-v2) is not available")
        return [len(body.split()) >= 3 and sim >= min_cosine for body, sim in zip(bodies, sims)]
    return verify


def keep_verified(prompts: list[dict], samples: list[list], greedy: list[str] | None = None,
                  keep_per_prompt: int = 2, greedy_wrong_copies: int = 2, round_no: int = 1,
                  verify=answer_key_verifier) -> tuple[list, dict]:
    """The training rows of one round: each prompt's distinct verified-right samples, and the round's figures.

    ``samples[i]``: prompt i's completions (texts or generate's dicts; truncated ones are never kept);
    ``greedy[i]``: its greedy completion, or None to weight every prompt the same. The kept answers of a
    prompt whose greedy answer is wrong appear ``greedy_wrong_copies`` times. ``verify(prompt, texts)``
    says which texts are right (default: the answer key; ``reference_verifier`` for rows without one).
    Returns (rows, stats); each row is an SFT row (question, answer = the sample) with ``greedy_right``
    and ``source`` added.
    """
    rows, grades, distinct, wrong_kept = [], [], 0, 0
    greedy_right = None if greedy is None else [verify(p, [g])[0] for g, p in zip(greedy, prompts)]
    for i, (prompt, group) in enumerate(zip(prompts, samples)):
        kept, seen, marks = [], set(), []
        texts = [_sample_text(sample) for sample in group]
        verdicts = verify(prompt, [text for text, _ in texts]) if texts else []
        for (text, truncated), verdict in zip(texts, verdicts):
            right = not truncated and verdict
            marks.append(right)
            if right and normalised(text) not in seen and len(kept) < keep_per_prompt:
                seen.add(normalised(text))
                kept.append(text)
        grades.append(marks)
        g_right = None if greedy_right is None else greedy_right[i]
        copies = greedy_wrong_copies if g_right is False else 1
        wrong_kept += bool(kept) and g_right is False
        distinct += len(kept)
        for text in kept:
            row = {"question": prompt["question"], "answer": text, "final_answer": prompt.get("final_answer"),
                   "family": prompt.get("family"), "difficulty": prompt.get("difficulty"),
                   "source": f"rejection_sft:round_{round_no}", "greedy_right": g_right}
            rows.extend(dict(row) for _ in range(copies))
    n_samples = sum(len(m) for m in grades)
    same_n = grades and grades[0] and all(len(m) == len(grades[0]) for m in grades)  # pass@k needs the same n
    head = headroom_from_grades(grades, greedy_right) if same_n else None
    stats = {"round": round_no, "prompts": len(prompts), "samples": n_samples,
             "right_samples": sum(map(sum, grades)),
             "sampled_accuracy": round(sum(map(sum, grades)) / n_samples, 4) if n_samples else None,
             "prompts_with_a_right_sample": sum(any(m) for m in grades),
             "greedy_accuracy": head.greedy_accuracy if head else None,
             "greedy_wrong_prompts_kept": wrong_kept, "kept_samples": distinct, "training_rows": len(rows),
             "pass_at_k": head.as_dict()["pass_at_k"] if head else {},
             "greedy_wrong_some_right": head.as_dict()["greedy_wrong_some_right"] if head else {}}
    return rows, stats


def has_worked_solution(row: dict) -> bool:
    """True when the row's answer shows steps before its final line (not only ``Answer: x``)."""
    return len(str(row.get("answer") or "").strip().splitlines()) > 1


def teacher_rows(prompts: list[dict], round_no: int = 1) -> tuple[list, dict]:
    """The control's training rows of one round: each prompt with the generator's worked solution.

    The same figures as ``keep_verified`` where they mean something (nothing is sampled, so the sampled
    and greedy accuracies are None), so the rounds table reads the same for every method.

    >>> rows, stats = teacher_rows([{"question": "1+1?", "answer": "1 + 1 = 2.\\nAnswer: 2", "final_answer": "2"}])
    >>> rows[0]["source"], stats["training_rows"], stats["samples"]
    ('more_sft:round_1', 1, 0)
    """
    rows = [{"question": p["question"], "answer": p["answer"], "final_answer": p.get("final_answer"),
             "family": p.get("family"), "difficulty": p.get("difficulty"), "source": f"more_sft:round_{round_no}",
             "greedy_right": None} for p in prompts if has_worked_solution(p)]
    stats = {"round": round_no, "prompts": len(prompts), "samples": 0, "right_samples": 0, "sampled_accuracy": None,
             "prompts_with_a_right_sample": None, "greedy_accuracy": None, "greedy_wrong_prompts_kept": 0,
             "kept_samples": len(rows), "training_rows": len(rows), "pass_at_k": {}, "greedy_wrong_some_right": {}}
    return rows, stats


def mix_with_sft(rows: list[dict], sft_rows: list[dict], share: float, seed: int) -> list[dict]:
    """``rows`` plus worked solutions so that these make up ``share`` of the mix (none when rows is empty).

    >>> len(mix_with_sft([{}] * 6, [{"q": i} for i in range(10)], 0.25, 0))
    8
    """
    if not rows or share <= 0 or not sft_rows:
        return list(rows)
    n = min(len(sft_rows), round(len(rows) * share / (1 - share)))
    return list(rows) + random.Random(seed).sample(sft_rows, n)


#: With ``max_minutes`` set, a round samples for at most this share of the budget, so several rounds of
#: sample-then-train fit in it (RejectionRounds.sample_within_budget).
ROUND_SHARE = 0.25


def prompt_rounds(pool: list[dict], rounds: int, per_round: int, seed: int) -> list[list[dict]]:
    """The prompts of each round, drawn from a seeded shuffle of ``pool``: none repeats before all were used.

    >>> rounds = prompt_rounds([{"i": i} for i in range(6)], 2, 3, seed=0)
    >>> [len(r) for r in rounds], sorted(p["i"] for r in rounds for p in r)
    ([3, 3], [0, 1, 2, 3, 4, 5])
    """
    order, rng, at, out = list(pool), random.Random(seed), 0, []
    rng.shuffle(order)
    for _ in range(rounds):
        chosen = []
        while len(chosen) < min(per_round, len(pool)):
            if at == len(order):  # the pool is used up: start again, reshuffled
                rng.shuffle(order)
                at = 0
            chosen.append(order[at])
            at += 1
        out.append(chosen)
    return out


# ---------------------------------------------------------------- sampling and fine-tuning one round
def sample_round(model, tokenizer, prompts: list[dict], settings: cfg.GRPOSettings, seed: int,
                 progress: bool = True) -> tuple[list[list[dict]], list[str]]:
    """k samples per prompt at ``rs_temperature`` and one greedy completion, with helpers.evaluate.generate."""
    from helpers.evaluate import GenerationSettings, generate

    questions, k, side = [p["question"] for p in prompts], settings.rs_samples_per_prompt, tokenizer.padding_side
    sampling = GenerationSettings(max_new_tokens=settings.max_new_tokens, batch_size=max(1, 64 // k), do_sample=True,
                                  temperature=settings.rs_temperature, top_p=1.0, num_samples=k, seed=seed)
    samples = generate(model, tokenizer, questions, sampling, progress=progress)
    greedy = generate(model, tokenizer, questions, GenerationSettings(settings.max_new_tokens, batch_size=64),
                      progress=progress)
    tokenizer.padding_side = side  # generate pads on the left; the SFT collator expects the tokenizer as it was
    return samples, [g[0]["text"] for g in greedy]


def round_sft_settings(settings: cfg.GRPOSettings) -> cfg.SFTSettings:
    """The SFT settings of a round: the reward stage's shared settings, ``rs_batch_size`` rows a step,
    ``rs_epochs`` passes, no checkpoints (a round is short and the run does not resume)."""
    common = {f.name: getattr(settings, f.name) for f in dataclasses.fields(cfg.CommonSettings)}
    common.update(batch_size=settings.rs_batch_size, grad_accum=1, max_steps=-1, save_steps=10**9,
                  eval_steps=10**9, max_train_examples=0)
    return cfg.SFTSettings(**common, epochs=settings.rs_epochs)


def _round_callbacks(callbacks: list, step_offset: int, round_no: int):
    """One callback that hands every event to the run's callbacks with the run's step, not the round's.

    Each round's SFTTrainer counts steps from 0; the training log, NaN guard and timer see one run whose
    steps go on across rounds, and every logged row says its round.
    """
    from transformers import TrainerCallback

    def forward(event):
        def call(self, args, state, control, **kwargs):
            shifted = copy.copy(state)
            shifted.global_step = state.global_step + step_offset
            if event == "on_log" and kwargs.get("logs") is not None:
                kwargs["logs"]["round"] = round_no
            for callback in callbacks:
                result = getattr(callback, event)(args, shifted, control, **kwargs)
                control = result if result is not None else control
            return control
        return call

    events = {name: forward(name) for name in dir(TrainerCallback) if name.startswith("on_")}
    return type("RunCallbacks", (TrainerCallback,), events)()


class RejectionRounds:
    """What helpers.training.run_training drives as its trainer: the rounds, on one LoRA.

    It has what the skeleton uses of a Trainer (``model``, ``state.global_step``, ``train``,
    ``add_callback``, ``training_step``); each round builds a fresh SFTTrainer on the same model.
    """

    is_fsdp_enabled = False

    def __init__(self, stage: RejectionSFTStage, settings: cfg.GRPOSettings, model, output_dir: Path, callbacks):
        self.stage, self.settings, self.model, self.output_dir = stage, settings, model, Path(output_dir)
        self.callbacks, self.state, self._round_step = list(callbacks), types.SimpleNamespace(global_step=0), None
        self.budget = None  # the run's TimeBudget, found among the callbacks when training starts

    def add_callback(self, callback) -> None:
        self.callbacks.append(callback)

    def training_step(self, model, inputs, num_items_in_batch=None):
        return self._round_step(model, inputs, num_items_in_batch)  # the current round's SFTTrainer step

    def train(self, resume_from_checkpoint=None) -> None:  # never resumed: train_rejection_sft refuses it
        from helpers.callbacks import TimeBudget

        budget = self.budget = next((cb for cb in self.callbacks if isinstance(cb, TimeBudget)), None)
        for number, prompts in enumerate(self.stage.rounds_to_run(self.settings), start=1):
            if number > 1 and budget is not None and budget.spent():  # the budget ends the run between rounds
                budget.stopped = True
                break
            record = self.run_round(number, prompts)
            self.stage.rounds.append(record)
            if self.stage.log is not None:
                self.stage.log.note(round_summary(record))
            if any(getattr(cb, "failure", None) for cb in self.callbacks):  # the NaN guard stopped a round
                break

    def sample_within_budget(self, prompts: list[dict], number: int) -> tuple[list[dict], list, list[str]]:
        """The round's samples; with a time budget, in chunks of one generation batch, stopping once the round
        has sampled for ``ROUND_SHARE`` of the budget (the prompts not reached are left out of this round).

        Why: on two CPU cores 64 prompts x 8 samples take about 9 minutes, longer than a short budget, and a
        round that spends the budget sampling never trains on what it kept (measured 2026-12-03: one step in
        8 minutes). A capped round leaves time to train, and the next round samples again from the newer policy.
        """
        s, budget = self.settings, self.budget
        if budget is None or not budget.minutes:
            return (prompts, *sample_round(self.model, self.stage.tokenizer, prompts, s, seed=s.seed + number))
        chunk, start = max(1, 64 // s.rs_samples_per_prompt), time.perf_counter()
        done, samples, greedy = [], [], []
        for at in range(0, len(prompts), chunk):
            part = prompts[at:at + chunk]
            got, best = sample_round(self.model, self.stage.tokenizer, part, s, seed=s.seed + 1000 * number + at,
                                     progress=False)
            done, samples, greedy = done + part, samples + got, greedy + best
            if time.perf_counter() - start >= ROUND_SHARE * budget.minutes * 60 or budget.spent():
                break
        return done, samples, greedy

    def run_round(self, number: int, prompts: list[dict]) -> dict:
        """Sample, keep the verified-right answers, mix, fine-tune; returns the round's record."""
        from helpers.sft import build_sft_trainer, fit_rows

        s, tokenizer, start = self.settings, self.stage.tokenizer, time.perf_counter()
        if s.method == "more_sft":  # the control: the teacher's worked solutions, nothing sampled
            rows, record = teacher_rows(prompts, number)
        else:
            prompts, samples, greedy = self.sample_within_budget(prompts, number)
            verify = reference_verifier(s.rs_min_cosine) if s.rs_min_cosine > 0 else answer_key_verifier
            rows, record = keep_verified(prompts, samples, greedy, s.rs_keep_per_prompt, s.rs_greedy_wrong_copies,
                                         number, verify)
        record["sample_seconds"] = round(time.perf_counter() - start, 1)
        self.stage.samples.extend({"round": number, "question": r["question"][:120], "completion": r["answer"][:400],
                                   "greedy_right": r["greedy_right"]} for r in rows[:4])
        sft_settings = round_sft_settings(s)
        mix, too_long, _ = fit_rows(mix_with_sft(rows, self.stage.sft_rows, s.rs_sft_share, s.seed + number),
                                    tokenizer, sft_settings.max_length)
        record.update(sft_rows=len(mix) + len(too_long) - len(rows), dropped_too_long=len(too_long), steps=0)
        if not mix or not rows:
            record["note"] = "no sample was right (or none fits max_length): nothing to learn from this round"
            return record
        folder = self.output_dir / f"round_{number}"
        trainer = build_sft_trainer(sft_settings, self.model, tokenizer, mix, [], folder,
                                    [_round_callbacks(self.callbacks, self.state.global_step, number)])
        self._round_step = trainer.training_step
        trainer.training_step = lambda model, inputs, n=None: self.training_step(model, inputs, n)
        trainer.train()
        shutil.rmtree(folder, ignore_errors=True)
        record["steps"] = trainer.state.global_step
        self.state.global_step += trainer.state.global_step
        record["seconds"] = round(time.perf_counter() - start, 1)
        return record


def round_summary(record: dict) -> str:
    """The line a round leaves in training_log.txt."""
    if record["samples"] == 0:  # more_sft: nothing sampled
        return (f"round {record['round']}: {record['prompts']} prompts, {record['training_rows']} worked solutions "
                f"+ {record['sft_rows']} SFT rows, {record['steps']} steps")
    return (f"round {record['round']}: {record['prompts']} prompts, {record['right_samples']}/{record['samples']} "
            f"samples right, greedy right {record['greedy_accuracy']}, kept {record['kept_samples']} "
            f"({record['greedy_wrong_prompts_kept']} prompts with a wrong greedy answer), "
            f"{record['training_rows']} rows + {record['sft_rows']} SFT rows, {record['steps']} steps")


def teacher_round(number: int, per_round: int, seed: int, difficulties=(), exclude=frozenset()) -> list[dict]:
    """``per_round`` problems the generator writes fresh for the control's round ``number`` once the prompt file
    is used up: worked solutions with answer keys, of ``difficulties`` (weighted as 01's default mix; all three
    when empty), seeded by the round so a run is repeatable, none whose question is in ``exclude`` (the held-out
    files) or repeats a transfer or retention question.

    >>> rows = teacher_round(1, 4, seed=42, difficulties=("easy",))
    >>> len(rows), all(r["final_answer"] and r["difficulty"] == "easy" for r in rows)
    (4, True)
    """
    from helpers.data import DEFAULT_DIFFICULTY_MIX, generate_mix, transfer_leaks

    mix = {d: w for d, w in DEFAULT_DIFFICULTY_MIX.items() if not difficulties or d in difficulties}
    rows = [r for r in generate_mix(2 * per_round, seed=seed * 1000 + number, mix=mix)
            if r.get("final_answer") and has_worked_solution(r) and r["question"] not in exclude]
    leaks = {leak["index"] for leak in transfer_leaks(rows)}
    return [r for i, r in enumerate(rows) if i not in leaks][:per_round]


def held_out_questions(train_data: str | Path) -> frozenset[str]:
    """The questions of the held-out files beside ``train_data`` (sft_val.json, grpo_val.json), which the
    control's fresh problems must never be: 03, 04 and 05 grade on them."""
    folder = Path(train_data).parent
    return frozenset(r["question"] for name in ("sft_val.json", "grpo_val.json") if (folder / name).is_file()
                     for r in load_rows(folder / name)[0])


# ---------------------------------------------------------------- the stage
class RejectionSFTStage(Stage):
    """What rejection-sampling fine-tuning adds to the training skeleton: prompts per round, the rounds."""

    name, log_columns, figure = "grpo", LOG_COLUMNS, "rejection_sft_curves"
    metric_map = {"round": "round", "loss": "loss", "lr": "learning_rate", "grad_norm": "grad_norm"}

    def __init__(self, train_data):
        self.train_data, self.log = train_data, None

    def load_data(self, settings) -> dict:
        from helpers.data import transfer_leaks
        from helpers.grpo import resolve_sft_model

        rows, bad = load_rows(self.train_data)
        # the verifier needs an answer key, or (rs_min_cosine > 0) a reference answer to match
        rows = [r for r in rows if r.get("final_answer") or (settings.rs_min_cosine > 0 and r.get("answer"))]
        if settings.difficulties:
            rows = [r for r in rows if r.get("difficulty") in settings.difficulties or not r.get("difficulty")]
        leaks = {leak["index"] for leak in transfer_leaks(rows)}  # never a transfer or retention question
        pool = select_rows([r for i, r in enumerate(rows) if i not in leaks], settings.max_train_examples,
                           settings.seed)
        if not pool:
            raise RunSetupError(f"train_data: {self.train_data} has no numeric row (with final_answer) to sample"
                                + ("" if settings.rs_min_cosine > 0 else
                                   " (rows with only a reference answer need rs_min_cosine > 0)"))
        if settings.method == "more_sft":
            pool = [r for r in pool if has_worked_solution(r)]
            if not pool:
                raise RunSetupError(f"train_data: method more_sft needs worked solutions, and no row of "
                                    f"{self.train_data} has steps before its final line (answer-only rows)")
        self.sft_data = settings.rs_sft_data or str(DEFAULT_SFT_DATA)
        self.sft_rows = load_rows(self.sft_data)[0] if settings.rs_sft_share > 0 else []
        from_sft = settings.preset == "from_sft" or bool(settings.sft_model)
        self.sft_adapter = resolve_sft_model(settings.sft_model) if from_sft else None
        rounds = settings.rs_rounds
        if settings.max_minutes:  # a budget: rounds go on, on fresh prompts, until it is spent or the pool is used
            rounds = max(rounds, math.ceil(len(pool) / settings.rs_prompts_per_round))
        self.round_prompts = prompt_rounds(pool, rounds, settings.rs_prompts_per_round, settings.seed)
        self.rounds, self.samples, self.method = [], [], settings.method
        self.teacher_goes_on = settings.method == "more_sft" and bool(settings.max_minutes)
        self.held_out = held_out_questions(self.train_data) if self.teacher_goes_on else frozenset()
        return {"preset": settings.preset, "device": settings.device, "method": settings.method,
                "start": str(self.sft_adapter) if self.sft_adapter else "base",
                "prompt_pool": len(pool), "bad_rows_dropped": len(bad), "transfer_leaks_dropped": len(leaks),
                "rounds": rounds, "prompts_per_round": len(self.round_prompts[0]),
                "prompts_repeat": rounds * settings.rs_prompts_per_round > len(pool),
                "samples_per_round": 0 if settings.method == "more_sft" else
                len(self.round_prompts[0]) * settings.rs_samples_per_prompt,
                "max_minutes": settings.max_minutes,
                "fresh_problems_after_the_pool": self.teacher_goes_on,
                "sft_rows_available": len(self.sft_rows), "notes": list(settings.notes)}

    def rounds_to_run(self, settings):
        """The rounds' prompts: the planned ones, then (the control under a budget) fresh generated rounds, until
        the budget ends the run."""
        yield from self.round_prompts
        number = 0
        while self.teacher_goes_on:
            number += 1
            yield teacher_round(number, settings.rs_prompts_per_round, settings.seed, settings.difficulties,
                                self.held_out)

    def load_model(self, settings) -> None:
        from helpers.grpo import load_policy

        self.model, self.tokenizer, self.sft_lora = load_policy(settings, self.sft_adapter)

    def callbacks(self, settings, log) -> list:
        self.log = log
        return []

    def build(self, settings, output_dir, callbacks):
        from peft import get_peft_model

        peft = lora_config(settings)
        if self.sft_lora:  # the same modules as the SFT adapter, so the two merge into one
            peft.target_modules = {k.rsplit(".", 1)[-1] for k in self.sft_lora["layers"]}
        return RejectionRounds(self, settings, get_peft_model(self.model, peft), output_dir, callbacks)

    def dry_run(self, trainer, settings, plan, out_dir) -> None:
        """Sampling of two prompts and one fine-tuning step (forward and backward, no update), timed."""
        from helpers.sft import build_sft_trainer, measure_one_step

        prompts, teacher = self.round_prompts[0][:2], settings.method == "more_sft"
        start = time.perf_counter()
        if not teacher:  # the control samples nothing
            sample_round(trainer.model, self.tokenizer, prompts, settings, settings.seed, progress=False)
        per_prompt = (time.perf_counter() - start) / len(prompts)  # the control's is the time of no sampling, ~0
        sft = build_sft_trainer(round_sft_settings(settings), trainer.model, self.tokenizer, prompts, [], out_dir)
        step_s = measure_one_step(sft)
        rows = plan["prompts_per_round"] * (1 if teacher else settings.rs_keep_per_prompt) / (1 - settings.rs_sft_share)
        steps = math.ceil(rows / settings.rs_batch_size * settings.rs_epochs)
        minutes = plan["rounds"] * (per_prompt * plan["prompts_per_round"] + steps * step_s) / 60
        plan.update(seconds_per_prompt_sampled=round(per_prompt, 2), seconds_per_step_measured=round(step_s, 2),
                    estimated_minutes=round(min(minutes, settings.max_minutes or minutes), 1),
                    note="dry run: sampling of 2 prompts and one step timed, nothing trained; the estimate is an "
                         "upper bound (every prompt keeps rs_keep_per_prompt answers, no extra copies)")

    def run_record(self) -> dict:
        return {"data_files": {"train": self.train_data, "sft_mix": self.sft_data}, "method": self.method,
                "sft_model": str(self.sft_adapter) if self.sft_adapter else None}

    def save_weights(self, trainer, folder) -> None:
        """The new LoRA, or SFT + new merged into one adapter of summed rank that loads on the plain base."""
        from helpers.grpo import save_sft_plus_grpo

        if self.sft_adapter is None:
            return super().save_weights(trainer, folder)
        save_sft_plus_grpo(trainer.model, self.sft_adapter, folder)  # GRPO's from_sft merge, exact

    def plot(self, rows):
        return plot_rounds(rows, self.rounds)

    def finish(self, trainer, run) -> dict:
        from helpers.runs import write_json_atomic

        write_json_atomic(run.root / "samples.json", self.samples)
        return {"rounds": self.rounds}


def plot_rounds(rows: list[dict], rounds: list[dict], title: str = "Rejection-sampling fine-tuning"):
    """Loss against the step (rounds marked), and per round the share of samples right and greedy accuracy."""
    from helpers.plots import smooth, subplots

    fig, (ax_loss, ax_acc) = subplots(1, 2, figsize=(10, 3.6))
    steps = [(r["step"], r["loss"]) for r in rows if r.get("loss") is not None]
    if steps:
        xs, ys = zip(*steps)
        ax_loss.plot(xs, ys, color="tab:blue", alpha=0.3)
        ax_loss.plot(xs, smooth(list(ys)), color="tab:blue", label="train loss (smoothed)")
        ax_loss.legend(fontsize=8)
    done = 0
    for record in rounds[:-1]:
        done += record.get("steps", 0)
        ax_loss.axvline(done, color="grey", ls=":", alpha=0.7)
    ax_loss.set(xlabel="optimizer step (dotted: a new round)", ylabel="cross-entropy on kept answers",
                title=title)
    numbers, drawn = [r["round"] for r in rounds], 0
    for key, label in (("sampled_accuracy", "samples right"), ("greedy_accuracy", "greedy right")):
        values = [r.get(key) for r in rounds]
        if any(v is not None for v in values):
            ax_acc.plot(numbers, values, "o-", label=label)
            drawn += 1
    ax_acc.set(xlabel="round (measured before its fine-tuning)", ylabel="share", ylim=(0, 1),
               title="the policy each round samples from")
    if numbers:
        ax_acc.set_xticks(numbers)
    if drawn:
        ax_acc.legend(fontsize=8)
    elif numbers:  # more_sft: the control trains on the teacher's solutions and samples nothing
        ax_acc.text(0.5, 0.5, "nothing sampled: the control trains\non the teacher's worked solutions",
                    ha="center", va="center", transform=ax_acc.transAxes, fontsize=9, color="grey")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def train_rejection_sft(settings: cfg.GRPOSettings, train_data: str | Path, output_dir: str | Path | None = None,
                        resume: str | bool | None = None, dry_run: bool = False, on_log_row=None,
                        allow_outside_output: bool = False, callbacks=(), halve_batch_on_oom: bool = False
                        ) -> TrainingResult:
    """Run rejection-sampling fine-tuning and return the run, its log and some kept samples.

    The arguments are those of ``helpers.grpo.train_grpo`` (which calls this when ``settings.method`` is
    ``rejection_sft``) less the GRPO-only ones. ``resume`` raises: the rounds are not checkpointed.
    """
    if resume:
        raise RunSetupError("resume: a rejection_sft run cannot resume; start it again")
    return run_training(RejectionSFTStage(train_data), settings, output_dir, None, dry_run, on_log_row,
                        allow_outside_output, callbacks, halve_batch_on_oom)
