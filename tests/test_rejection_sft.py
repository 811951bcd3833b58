"""Rejection-sampling fine-tuning: what is kept (verified, distinct, capped, weighted), rounds on the tiny model."""

import json
import math

import pytest
import torch

from helpers import config, grpo, rejection_sft, sft
from helpers.rejection_sft import keep_verified, mix_with_sft, prompt_rounds

PROMPTS = [{"question": "What is 2 + 3?", "final_answer": "5", "family": "arithmetic"},
           {"question": "What is 1/2 + 1/4?", "final_answer": "3/4", "family": "fractions"}]


def test_keeps_only_verified_right_distinct_samples_at_most_m_per_prompt():
    samples = [
        ["2 + 3 = 5\nAnswer: 5",
         "  2 + 3 = 5\n\nanswer: 5 ",  # the first again, up to case and whitespace: a duplicate
         "2 + 3 = 6\nAnswer: 6",  # wrong
         "the answer is 5",  # right value without the Answer line: not verified (correctness 0.5)
         "Adding: 5\nAnswer: 5",
         "5\nAnswer: 5"],  # a third distinct right one: over m = 2
        ["1/2 + 1/4 = 3/4\nAnswer: 3/4"],
    ]
    rows, stats = keep_verified(PROMPTS, samples, keep_per_prompt=2)
    assert [r["answer"] for r in rows] == ["2 + 3 = 5\nAnswer: 5", "Adding: 5\nAnswer: 5",
                                           "1/2 + 1/4 = 3/4\nAnswer: 3/4"]
    assert all(r["source"] == "rejection_sft:round_1" for r in rows)
    assert rows[0]["question"] == PROMPTS[0]["question"] and rows[2]["final_answer"] == "3/4"
    assert stats["right_samples"] == 5 and stats["samples"] == 7 and stats["kept_samples"] == 3
    assert stats["prompts_with_a_right_sample"] == 2 and stats["pass_at_k"] == {}  # uneven n: no pass@k


def test_truncated_samples_are_never_kept():
    samples = [[{"text": "2 + 3 = 5\nAnswer: 5", "truncated": True}, {"text": "Answer: 5", "truncated": False}],
               [{"text": "Answer: 3/4", "truncated": True}, {"text": "Answer: 1", "truncated": False}]]
    rows, stats = keep_verified(PROMPTS, samples, keep_per_prompt=4)
    assert [r["answer"] for r in rows] == ["Answer: 5"] and stats["right_samples"] == 1


def test_prompts_with_a_wrong_greedy_answer_are_weighted_up():
    samples = [["Answer: 5", "2 + 3 = 5\nAnswer: 5"], ["Answer: 3/4", "Answer: 1"]]
    greedy = ["Answer: 5", "Answer: 1/2"]  # right on the first prompt, wrong on the second
    rows, stats = keep_verified(PROMPTS, samples, greedy, keep_per_prompt=2, greedy_wrong_copies=3, round_no=2)
    by_question = {p["question"]: [r for r in rows if r["question"] == p["question"]] for p in PROMPTS}
    assert len(by_question[PROMPTS[0]["question"]]) == 2  # two distinct answers, once each
    assert [r["answer"] for r in by_question[PROMPTS[1]["question"]]] == ["Answer: 3/4"] * 3
    assert {r["greedy_right"] for r in by_question[PROMPTS[1]["question"]]} == {False}
    assert stats["greedy_accuracy"] == 0.5 and stats["greedy_wrong_prompts_kept"] == 1
    assert stats["training_rows"] == 5 and stats["kept_samples"] == 3 and stats["round"] == 2
    assert stats["pass_at_k"] == {"pass@1": 0.75, "pass@2": 1.0}
    assert stats["greedy_wrong_some_right"] == {"pass@1": 0.25, "pass@2": 0.5}


def test_sft_rows_make_up_the_share_asked():
    kept = [{"question": f"q{i}", "answer": "Answer: 1"} for i in range(9)]
    sft_rows = [{"question": f"s{i}", "answer": "worked"} for i in range(50)]
    mix = mix_with_sft(kept, sft_rows, 0.25, seed=0)
    assert mix[:9] == kept and len(mix) == 12 and all(r in sft_rows for r in mix[9:])
    assert mix_with_sft([], sft_rows, 0.25, 0) == [] and mix_with_sft(kept, sft_rows, 0.0, 0) == kept


def test_rounds_get_fresh_prompts_until_the_pool_is_used_up():
    pool = [{"i": i} for i in range(10)]
    rounds = prompt_rounds(pool, 3, 4, seed=1)
    first_two = [p["i"] for r in rounds[:2] for p in r]
    assert len(set(first_two)) == 8  # no prompt twice before the pool of 10 runs out
    assert [len(r) for r in rounds] == [4, 4, 4]
    assert {p["i"] for p in rounds[2][:2]} == set(range(10)) - set(first_two)  # the last two come first


def test_settings_and_flags(cpu):
    s = config.resolve("fast_test", "grpo", device=cpu, method="rejection_sft")
    assert (s.method, s.rs_rounds, s.rs_prompts_per_round) == ("rejection_sft", 1, 4)
    d = config.resolve("default", "grpo", device=cpu)
    assert d.method == "grpo" and d.rs_rounds == 3 and d.rs_samples_per_prompt == 8
    with pytest.raises(ValueError, match="method: must be one of grpo, rejection_sft"):
        config.resolve("fast_test", "grpo", device=cpu, method="raft")
    with pytest.raises(ValueError, match=r"rs_sft_share: must be in \[0, 1\)"):
        config.resolve("fast_test", "grpo", device=cpu, rs_sft_share=1.0)
    from helpers.training import build_parser

    args = build_parser("grpo").parse_args(["--train-data", "x.json", "--method", "rejection_sft", "--rs-rounds", "3",
                                            "--rs-sft-share", "0.5"])
    over = config.overrides_from_args(args, "grpo")
    assert over == {"method": "rejection_sft", "rs_rounds": 3, "rs_sft_share": 0.5}
    assert config.resolve("fast_test", "grpo", device=cpu, **over).rs_rounds == 3


# ---------------------------------------------------------------- on the tiny model
ROWS = [{"question": f"What is {a} + {b}?", "answer": f"{a} + {b} = {a + b}.\nAnswer: {a + b}",
         "final_answer": str(a + b), "family": "arithmetic", "difficulty": "easy"}
        for a in range(1, 5) for b in range(1, 5)]


@pytest.fixture
def files(tmp_path):
    prompts, sft_rows = tmp_path / "grpo_train.json", tmp_path / "sft_train.json"
    prompts.write_text(json.dumps(ROWS))
    sft_rows.write_text(json.dumps([{"question": f"What is {a} times 2?", "final_answer": str(2 * a),
                                     "answer": f"{a} x 2 = {2 * a}.\nAnswer: {2 * a}"} for a in range(20)]))
    return prompts, sft_rows


def _settings(model_dir, sft_data, preset="fast_test", **kw):
    base = dict(model_name=str(model_dir), method="rejection_sft", rs_rounds=2, rs_prompts_per_round=3,
                rs_samples_per_prompt=4, rs_keep_per_prompt=2, rs_greedy_wrong_copies=2, rs_batch_size=4,
                rs_sft_share=0.25, rs_sft_data=str(sft_data), max_new_tokens=12, lr=5e-2, logging_steps=1,
                warmup_ratio=0.0, max_train_examples=0)
    base.update(kw)
    return config.resolve(preset, "grpo", device=config.DeviceInfo(), **base)


def fake_sampler(model, tokenizer, prompts, settings, seed, progress=True):
    """A policy that is right twice in four samples (plus a duplicate), greedy right on odd answers only."""
    samples, greedy = [], []
    for p in prompts:
        right = p["answer"]
        samples.append([{"text": t, "tokens": 5, "truncated": False}
                        for t in (right, right.upper(), "Answer: 99", f"So it is {p['final_answer']}.\nAnswer: "
                                  f"{p['final_answer']}")][:settings.rs_samples_per_prompt])
        greedy.append(right if int(p["final_answer"]) % 2 else "Answer: 0")
    return samples, greedy


def test_sampler_runs_on_the_tiny_model(tiny_model_dir, files):
    from helpers.models import load_base_model, load_tokenizer

    settings = _settings(tiny_model_dir, files[1], max_new_tokens=6)
    tok = load_tokenizer(str(tiny_model_dir), padding_side="right")
    samples, greedy = rejection_sft.sample_round(load_base_model(str(tiny_model_dir)), tok, ROWS[:2], settings, 0,
                                                 progress=False)
    assert [len(s) for s in samples] == [4, 4] and len(greedy) == 2
    assert all(isinstance(s["text"], str) and s["tokens"] <= 6 for group in samples for s in group)
    assert tok.padding_side == "right"


def test_rounds_from_sft_write_one_adapter_that_loads_on_the_plain_base(tiny_model_dir, files, workbook_output,
                                                                        monkeypatch):
    from peft import PeftModel
    from transformers import AutoTokenizer

    from helpers.models import load_adapter, load_base_model

    prompts, sft_data = files
    sft_settings = config.resolve("fast_test", "sft", device=config.DeviceInfo(), model_name=str(tiny_model_dir),
                                  max_steps=2, lr=1e-2, batch_size=4, lora_r=4, lora_alpha=8, max_train_examples=0)
    sft_run = sft.train_sft(sft_settings, prompts)
    monkeypatch.setattr(rejection_sft, "sample_round", fake_sampler)
    settings = _settings(tiny_model_dir, sft_data, "from_sft", sft_model=str(sft_run.final_model), lora_r=8,
                         lora_alpha=16)
    result = grpo.train_grpo(settings, prompts)  # dispatches on settings.method
    assert result.status == "completed"

    record = json.loads(result.run.run_json.read_text())
    assert record["method"] == "rejection_sft" and record["settings"]["method"] == "rejection_sft"
    assert result.run.root.name.startswith("grpo_") and len(record["rounds"]) == 2
    for r in record["rounds"]:
        n_wrong = r["prompts"] - round(r["greedy_accuracy"] * r["prompts"])
        assert r["kept_samples"] == 2 * r["prompts"]  # two of the three right samples are distinct
        assert r["training_rows"] == 2 * r["prompts"] + 2 * n_wrong  # greedy-wrong prompts' answers twice
        assert r["sft_rows"] == round(r["training_rows"] * 0.25 / 0.75)
        assert r["steps"] == math.ceil((r["training_rows"] + r["sft_rows"]) / 4)
    assert record["global_step"] == sum(r["steps"] for r in record["rounds"])
    steps = [row["step"] for row in result.log_rows if row.get("loss") is not None]
    assert steps == list(range(1, record["global_step"] + 1))  # one run: steps go on across rounds
    assert {row["round"] for row in result.log_rows if row.get("loss") is not None} == {1, 2}
    assert result.run.figure("rejection_sft_curves").is_file() and (result.run.root / "samples.json").is_file()
    assert not list(result.run.root.glob("round_*"))

    final = result.final_model
    assert json.loads((final / "adapter_config.json").read_text())["r"] == 4 + 8
    ids = torch.tensor([[1, 5, 9, 13, 17, 21]])
    loaded = PeftModel.from_pretrained(load_base_model(str(tiny_model_dir)), str(final))(ids).logits
    sft_only = load_adapter(load_base_model(str(tiny_model_dir)), sft_run.final_model)(ids).logits
    assert not torch.allclose(loaded, sft_only, atol=1e-5), "the rounds did not change the policy"
    assert AutoTokenizer.from_pretrained(str(final)).chat_template


def test_a_round_without_a_right_sample_trains_nothing(tiny_model_dir, files, workbook_output, monkeypatch):
    def all_wrong(model, tokenizer, prompts, settings, seed, progress=True):
        return [[{"text": "Answer: 99", "tokens": 3, "truncated": False}] * 4 for _ in prompts], ["x"] * len(prompts)

    monkeypatch.setattr(rejection_sft, "sample_round", all_wrong)
    result = grpo.train_grpo(_settings(tiny_model_dir, files[1], rs_rounds=1), files[0])
    assert result.status == "completed"
    record = json.loads(result.run.run_json.read_text())
    (r,) = record["rounds"]
    assert r["steps"] == 0 and r["training_rows"] == 0 and "nothing to learn" in r["note"]
    assert (result.final_model / "adapter_model.safetensors").is_file()
    assert "probe" not in record  # fast_test probes, but no step trained: nothing was probed, nothing recorded


def test_dry_run_times_sampling_and_a_step_and_writes_nothing(tiny_model_dir, files, workbook_output):
    result = grpo.train_grpo(_settings(tiny_model_dir, files[1], max_new_tokens=4), files[0], dry_run=True)
    assert result.status == "dry_run" and result.plan["method"] == "rejection_sft"
    assert result.plan["seconds_per_step_measured"] > 0 and result.plan["prompt_pool"] == len(ROWS)
    assert list(workbook_output.iterdir()) == []


def test_command_line_runs_the_method_asked(tiny_model_dir, files, workbook_output, capsys):
    code = grpo.main(["--config", "fast_test", "--train-data", str(files[0]), "--method", "rejection_sft",
                      "--model-name", str(tiny_model_dir), "--rs-sft-data", str(files[1]), "--max-new-tokens", "4",
                      "--dry-run"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["status"] == "dry_run" and out["plan"]["method"] == "rejection_sft"


# ---------------------------------------------------------------- the control (more_sft) and the time budget
def test_teacher_rows_keep_worked_solutions_only():
    rows, stats = rejection_sft.teacher_rows(ROWS[:3] + [{"question": "Q?", "answer": "Answer: 1", "final_answer": "1"}],
                                             round_no=2)
    assert [r["answer"] for r in rows] == [r["answer"] for r in ROWS[:3]]  # an answer-only row teaches no steps
    assert {r["source"] for r in rows} == {"more_sft:round_2"}
    assert stats["prompts"] == 4 and stats["samples"] == 0 and stats["training_rows"] == 3
    assert stats["sampled_accuracy"] is None and stats["greedy_accuracy"] is None


def test_more_sft_trains_on_the_teacher_and_samples_nothing(tiny_model_dir, files, workbook_output, monkeypatch):
    def no_sampling(*args, **kwargs):
        raise AssertionError("more_sft must not sample")

    monkeypatch.setattr(rejection_sft, "sample_round", no_sampling)
    result = grpo.train_grpo(_settings(tiny_model_dir, files[1], method="more_sft"), files[0])
    record = json.loads(result.run.run_json.read_text())
    assert result.status == "completed" and record["method"] == "more_sft" and record["plan"]["method"] == "more_sft"
    assert len(record["rounds"]) == 2 and record["stopped_by_budget"] is False
    for r in record["rounds"]:
        assert r["samples"] == 0 and r["training_rows"] == r["prompts"] == 3
        assert r["steps"] == math.ceil((3 + 1) / 4)  # 3 worked solutions + 1 SFT row (a quarter of the mix)
    assert "worked solutions" in (result.run.root / "training_log.txt").read_text()
    assert (result.final_model / "adapter_model.safetensors").is_file()


def test_a_budget_ends_the_rounds_after_the_first_step(tiny_model_dir, files, workbook_output):
    settings = _settings(tiny_model_dir, files[1], method="more_sft", max_minutes=1e-6, rs_rounds=1)
    result = grpo.train_grpo(settings, files[0])
    record = json.loads(result.run.run_json.read_text())
    assert record["plan"]["rounds"] == math.ceil(len(ROWS) / 3)  # with a budget the rounds cover the whole pool
    assert record["stopped_by_budget"] is True and record["global_step"] == 1 and len(record["rounds"]) == 1
    assert result.status == "completed" and record["wall_minutes"] > 0 and result.final_model


def test_more_sft_refuses_answer_only_prompts(tiny_model_dir, tmp_path, files, workbook_output):
    answer_only = tmp_path / "keys.json"
    answer_only.write_text(json.dumps([{"question": r["question"], "answer": f"Answer: {r['final_answer']}",
                                        "final_answer": r["final_answer"]} for r in ROWS]))
    from helpers.training import RunSetupError

    with pytest.raises(RunSetupError, match="more_sft needs worked solutions"):
        grpo.train_grpo(_settings(tiny_model_dir, files[1], method="more_sft"), answer_only)
    assert list(workbook_output.iterdir()) == []


def test_time_budget_callback():
    from transformers import TrainerControl

    from helpers.callbacks import TimeBudget

    none, tiny = TimeBudget(0), TimeBudget(1e-9)
    none.start()
    tiny.start()
    assert not none.spent() and not none.on_step_end(None, None, TrainerControl()).should_training_stop
    control = tiny.on_step_end(None, None, TrainerControl())
    assert tiny.spent() and tiny.stopped and control.should_training_stop and not control.should_save
    assert not TimeBudget(5).spent()  # not started: nothing spent


def test_time_budget_stops_at_the_step_end_nearest_the_budget(monkeypatch):
    """70-second steps and a 4-minute budget: after 3 steps (3.5 min) a fourth would end at 4.67 min, 0.67 past
    the budget, further than 3.5 is short of it (0.5), so the run stops there; with 60-second steps it runs
    the fourth (ending exactly on the budget)."""
    from transformers import TrainerControl

    from helpers import callbacks

    def steps_until_stop(step_seconds, minutes):
        clock = [0.0]
        monkeypatch.setattr(callbacks.time, "monotonic", lambda: clock[0])
        budget = callbacks.TimeBudget(minutes)
        budget.start()
        for step in range(1, 100):
            clock[0] += step_seconds
            if budget.on_step_end(None, None, TrainerControl()).should_training_stop:
                return step, clock[0] / 60, budget
        raise AssertionError("never stopped")

    step, ended, budget = steps_until_stop(70, 4)
    assert step == 3 and abs(ended - 3.5) < 1e-9 and budget.stopped and budget.expected_step_minutes() == 70 / 60
    step, ended, _ = steps_until_stop(60, 4)
    assert step == 4 and ended == 4.0
    step, ended, _ = steps_until_stop(70, 0.5)  # a budget shorter than one step still trains one step
    assert step == 1


def test_with_a_budget_a_round_samples_in_chunks_and_stops_at_its_share(monkeypatch):
    import types

    from helpers.callbacks import TimeBudget

    calls = []

    def recorder(model, tokenizer, prompts, settings, seed, progress=True):
        calls.append(len(prompts))
        return [[{"text": "Answer: 1", "tokens": 3, "truncated": False}] for _ in prompts], ["g"] * len(prompts)

    monkeypatch.setattr(rejection_sft, "sample_round", recorder)
    prompts = [{"question": f"Q{i}?"} for i in range(7)]
    rounds = types.SimpleNamespace(settings=types.SimpleNamespace(rs_samples_per_prompt=32, seed=0), model=None,
                                   stage=types.SimpleNamespace(tokenizer=None), budget=TimeBudget(0))
    done, samples, greedy = rejection_sft.RejectionRounds.sample_within_budget(rounds, prompts, 1)
    assert calls == [7] and done == prompts and len(samples) == len(greedy) == 7  # no budget: one call
    calls.clear()
    rounds.budget = TimeBudget(10)
    rounds.budget.start()
    done, samples, greedy = rejection_sft.RejectionRounds.sample_within_budget(rounds, prompts, 1)
    assert calls == [2, 2, 2, 1] and done == prompts  # chunks of 64 // 32 prompts, all within the share
    calls.clear()
    rounds.budget = TimeBudget(1e-9)
    rounds.budget.start()
    done, samples, greedy = rejection_sft.RejectionRounds.sample_within_budget(rounds, prompts, 1)
    assert calls == [2] and done == prompts[:2] and len(samples) == len(greedy) == 2  # the share is used: stop


def test_the_control_under_a_budget_goes_on_with_fresh_generated_problems_after_the_pool(tiny_model_dir, files):
    """more_sft samples nothing, so it uses up a prompt file long before its budget; then the generator writes
    fresh worked problems (never a held-out question), and the rounds only end when the budget does."""
    import itertools

    from helpers.data import transfer_leaks
    from helpers.rejection_sft import RejectionSFTStage

    held_out = [{"question": "What is 7 + 8?", "answer": "7 + 8 = 15.\nAnswer: 15", "final_answer": "15"}]
    (files[0].parent / "grpo_val.json").write_text(json.dumps(held_out))
    settings = _settings(tiny_model_dir, files[1], method="more_sft", max_minutes=20, rs_rounds=1,
                         difficulties=("easy",))
    stage = RejectionSFTStage(files[0])
    plan = stage.load_data(settings)
    assert plan["fresh_problems_after_the_pool"] and plan["rounds"] == math.ceil(len(ROWS) / 3)
    assert stage.held_out == {"What is 7 + 8?"}
    rounds = list(itertools.islice(stage.rounds_to_run(settings), plan["rounds"] + 3))
    assert rounds[:plan["rounds"]] == stage.round_prompts
    fresh = [r for prompts in rounds[plan["rounds"]:] for r in prompts]
    assert len(fresh) == 9 and len({r["question"] for r in fresh}) == 9
    assert all(r["final_answer"] and r["difficulty"] == "easy" and "\n" in r["answer"].strip() for r in fresh)
    assert not {r["question"] for r in fresh} & ({r["question"] for r in ROWS} | stage.held_out)
    assert not transfer_leaks(fresh)
    again = list(itertools.islice(stage.rounds_to_run(settings), plan["rounds"] + 3))
    assert again == rounds  # seeded: the same run draws the same problems

    no_budget = RejectionSFTStage(files[0])
    no_budget.load_data(_settings(tiny_model_dir, files[1], method="more_sft", rs_rounds=2))
    assert list(no_budget.rounds_to_run(settings)) == no_budget.round_prompts  # without one: the plan only


def test_a_verifier_other_than_the_answer_key_decides_what_is_kept():
    concept = [{"question": "What is a sample space?", "answer": "The set of all outcomes."}]
    says_outcomes = lambda prompt, texts: ["outcomes" in t for t in texts]  # noqa: E731
    rows, stats = keep_verified(concept, [["All the outcomes.", "A space.", "Outcomes."]], greedy=["No idea."],
                                keep_per_prompt=4, verify=says_outcomes)
    assert [r["answer"] for r in rows] == ["All the outcomes.", "All the outcomes."]  # greedy wrong: twice
    assert rows[0]["final_answer"] is None and stats["right_samples"] == 1 and stats["greedy_accuracy"] == 0.0


def test_reference_verifier_keeps_answers_that_say_what_the_reference_says():
    verify = rejection_sft.reference_verifier(0.8)
    prompt = {"question": "What is a sample space?",
              "answer": "The sample space is the set of all possible outcomes of a random experiment."}
    verdicts = verify(prompt, ["The sample space is the set of all the possible outcomes of a random experiment.",
                               "A prime number has exactly two divisors, one and itself.",
                               "Sample space."])  # too short to count, however similar
    assert verdicts == [True, False, False]
    assert verify(PROMPTS[0], ["2 + 3 = 5\nAnswer: 5", "Answer: 6"]) == [True, False]  # an answer key wins


def test_rows_without_an_answer_key_need_rs_min_cosine(tiny_model_dir, tmp_path, files, workbook_output):
    from helpers.training import RunSetupError

    concept = tmp_path / "concept.json"
    concept.write_text(json.dumps([{"question": "What is a sample space?", "answer": "The set of all outcomes."}]))
    with pytest.raises(RunSetupError, match="need rs_min_cosine > 0"):
        grpo.train_grpo(_settings(tiny_model_dir, files[1]), concept)
    assert list(workbook_output.iterdir()) == []
    plan = grpo.train_grpo(_settings(tiny_model_dir, files[1], rs_min_cosine=0.8, max_new_tokens=4), concept,
                           dry_run=True).plan
    assert plan["prompt_pool"] == 1
