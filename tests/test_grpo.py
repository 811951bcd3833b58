"""GRPO on the tiny model: steps change the adapter and log every metric; from_sft merges exactly."""

import json

import pytest
import torch

from helpers import config, grpo, sft
from helpers.models import load_adapter, load_base_model

ROWS = [{"question": f"What is {a} + {b}?", "answer": f"{a} + {b} = {a + b}.\nAnswer: {a + b}",
         "final_answer": str(a + b), "family": "arithmetic"} for a in range(1, 5) for b in range(1, 5)]
# Concept rows give the random tiny model a continuous reward (similarity), so groups have spread to learn from.
ROWS += [{"question": f"What is a sample space ({i})?", "answer": "The set of all possible outcomes of an experiment.",
          "topic": "sample_spaces_events"} for i in range(8)]


@pytest.fixture
def train_file(tmp_path):
    path = tmp_path / "grpo_train.json"
    path.write_text(json.dumps(ROWS))
    return path


def _settings(model_dir, preset="fast_test", **kw):
    base = dict(model_name=str(model_dir), max_steps=3, batch_size=4, num_generations=4, max_new_tokens=12,
                lr=5e-2, logging_steps=1, save_steps=3, beta=0.05, warmup_ratio=0.0,
                reward_weights={"correctness": 1.0, "format": 0.5, "similarity": 1.0, "length": 0.5, "arithmetic": 0.5},
                mask_truncated_completions=False, max_train_examples=0)
    base.update(kw)
    return config.resolve(preset, "grpo", device=config.DeviceInfo(), **base)


def test_grpo_steps_change_the_adapter_and_log_every_metric(tiny_model_dir, train_file, workbook_output):
    result = grpo.train_grpo(_settings(tiny_model_dir), train_file)
    assert result.status == "completed"
    assert len([r for r in result.log_rows if "reward" in r]) == 3
    header = result.run.training_log.read_text().splitlines()[0].split("\t")
    assert header == grpo.LOG_COLUMNS
    row = result.log_rows[-1]
    for key in ("reward", "reward_std", "frac_zero_std", "kl", "loss", "completion_length", "clipped_ratio",
                "step_time", "format", "length", "similarity"):
        assert key in row, key
    assert result.samples and {"question", "completion", "correctness"} <= set(result.samples[0])
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    base = load_base_model(str(tiny_model_dir))(ids).logits
    tuned = load_adapter(load_base_model(str(tiny_model_dir)), result.final_model)(ids).logits
    assert not torch.allclose(base, tuned, atol=1e-5), "GRPO did not change the adapter"
    record = json.loads(result.run.run_json.read_text())
    assert record["status"] == "completed" and record["global_step"] == 3
    assert result.run.figure("grpo_curves").is_file() and (result.run.root / "samples.json").is_file()


def test_from_sft_final_adapter_reproduces_the_stacked_policy(tiny_model_dir, train_file, tmp_path,
                                                            workbook_output):
    sft_settings = config.resolve("fast_test", "sft", device=config.DeviceInfo(), model_name=str(tiny_model_dir),
                                  max_steps=3, lr=1e-2, batch_size=4, lora_r=4, lora_alpha=8, max_train_examples=0)
    sft_run = sft.train_sft(sft_settings, train_file)
    settings = _settings(tiny_model_dir, "from_sft", sft_model=str(sft_run.final_model), lora_r=8, lora_alpha=16,
                         num_iterations=1)
    result = grpo.train_grpo(settings, train_file)
    assert result.plan["kl_reference"].startswith("the SFT policy") and result.plan["trainable_parameters"] > 0
    final = result.final_model
    cfg = json.loads((final / "adapter_config.json").read_text())
    assert cfg["r"] == 4 + 8

    # The stacked policy: base + SFT merged, + the last GRPO checkpoint's adapter on top.
    ids = torch.tensor([[1, 5, 9, 13, 17, 21]])
    stacked_base = load_adapter(load_base_model(str(tiny_model_dir)), sft_run.final_model).merge_and_unload()
    stacked = load_adapter(stacked_base, result.run.root / "checkpoint-3")(ids).logits
    # The seed's way: the plain base + the final adapter.
    merged = load_adapter(load_base_model(str(tiny_model_dir)), final)(ids).logits
    assert torch.allclose(stacked, merged, atol=1e-4)
    sft_only = load_adapter(load_base_model(str(tiny_model_dir)), sft_run.final_model)(ids).logits
    assert not torch.allclose(sft_only, merged, atol=1e-5)


def test_grpo_dry_run_trains_nothing(tiny_model_dir, train_file, workbook_output):
    result = grpo.train_grpo(_settings(tiny_model_dir), train_file, dry_run=True)
    assert result.status == "dry_run" and result.plan["seconds_per_step_measured"] > 0
    assert list(workbook_output.iterdir()) == []


def test_batch_must_hold_whole_groups(tiny_model_dir, train_file, workbook_output):
    with pytest.raises(ValueError, match="batch_size: must be a multiple of num_generations"):
        grpo.train_grpo(_settings(tiny_model_dir, batch_size=6), train_file, dry_run=True)


def test_dropping_uninformative_samples_leaves_the_policy_update_unchanged(tiny_model_dir, tmp_path):
    """With beta 0 the loss has no KL term, so skipping zero-advantage samples must give the same adapter."""
    adapters = {}
    for skip in (False, True):
        settings = _settings(tiny_model_dir, beta=0.0, num_iterations=1, max_steps=1, batch_size=8,
                             skip_uninformative=skip, seed=3)
        model, tokenizer, _ = grpo.load_policy(settings, None)
        trainer = grpo.build_grpo_trainer(settings, model, tokenizer, ROWS, tmp_path / str(skip))
        trained = []
        generate = trainer._generate_and_score_completions

        def spy(inputs):
            batch = generate(inputs)
            trained.append(len(batch["advantages"]))
            return batch

        trainer._generate_and_score_completions = spy
        trainer.train()
        adapters[skip] = ({k: v.detach().clone() for k, v in trainer.model.named_parameters() if v.requires_grad},
                          trained[0])
    (full, n_full), (skipped, n_skipped) = adapters[False], adapters[True]
    assert n_skipped < n_full == 8, "the test batch should hold uninformative samples"
    for name in full:
        torch.testing.assert_close(skipped[name], full[name], atol=1e-6, rtol=1e-4)


def test_difficulties_pick_the_training_prompts(tiny_model_dir, tmp_path, workbook_output):
    rows = [{**r, "difficulty": "easy" if i % 2 else "hard"} for i, r in enumerate(ROWS[:16])] + ROWS[16:]
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps(rows))
    result = grpo.train_grpo(_settings(tiny_model_dir, difficulties=("easy",)), path, dry_run=True)
    assert result.plan["train_prompts"] == 8 + len(ROWS[16:])  # the easy ones and those without a difficulty
    with pytest.raises(ValueError, match=r"difficulties: expected easy, medium or hard, got \['simple'\]"):
        grpo.train_grpo(_settings(tiny_model_dir, difficulties=("simple",)), path, dry_run=True)


def test_reference_log_probs_after_dropping_equal_trls_for_the_kept_samples(tiny_model_dir, tmp_path):
    """The KL reference is computed only for the samples kept for training, and equals TRL's own pass there."""
    settings = _settings(tiny_model_dir, beta=0.05, num_iterations=1, batch_size=8, seed=3)
    model, tokenizer, _ = grpo.load_policy(settings, None)
    trainer = grpo.build_grpo_trainer(settings, model, tokenizer, ROWS, tmp_path)
    trainer.model.train()
    prompts = [trainer.train_dataset[i] for i in (0, 16) for _ in range(settings.num_generations)]
    batches, forwards = {}, {}
    compute = trainer._get_per_token_logps_and_entropies
    for late in (False, True):
        trainer.reference_after_dropping = late
        calls = []

        def counted(model, input_ids, *args, **kwargs):
            calls.append(len(input_ids))
            return compute(model, input_ids, *args, **kwargs)

        trainer._get_per_token_logps_and_entropies = counted
        torch.manual_seed(0)
        batches[late] = trainer._generate_and_score_completions(prompts)
        forwards[late] = calls
    trainer._get_per_token_logps_and_entropies = compute
    kept = len(batches[True]["advantages"])
    assert 0 < kept < len(prompts), "the test batch should hold informative and uninformative samples"
    assert forwards[False] == [len(prompts)] and forwards[True] == [kept]
    torch.testing.assert_close(batches[True]["completion_ids"], batches[False]["completion_ids"])
    torch.testing.assert_close(batches[True]["ref_per_token_logps"], batches[False]["ref_per_token_logps"],
                               atol=1e-5, rtol=1e-4)


def test_max_variance_down_sampling_trains_on_the_chosen_samples_only(tiny_model_dir, tmp_path):
    """Groups of 4 sampled, 2 of each trained: the best and the worst, re-centred; the loss normaliser follows."""
    settings = _settings(tiny_model_dir, beta=0.05, num_iterations=1, max_steps=1, batch_size=8, seed=3,
                         train_samples_per_group=2)
    model, tokenizer, _ = grpo.load_policy(settings, None)
    trainer = grpo.build_grpo_trainer(settings, model, tokenizer, ROWS, tmp_path)
    assert trainer.train_samples_per_group == 2
    seen = []
    generate = trainer._generate_and_score_completions

    def spy(inputs):
        batch = generate(inputs)
        seen.append(batch)
        return batch

    trainer._generate_and_score_completions = spy
    trainer.train()
    batch = seen[0]
    assert 1 <= len(batch["advantages"]) <= 4, "more than 2 samples of a group 4 were trained"
    # the loss normaliser counts the 2 x 2 chosen samples' tokens, not the 8 drawn
    assert int(batch["completion_mask"].sum()) <= int(batch["num_items_in_batch"]) <= 2 * 2 * settings.max_new_tokens
    with pytest.raises(ValueError, match="train_samples_per_group"):
        _settings(tiny_model_dir, train_samples_per_group=-1)



def _log(correctness, kl=0.01, spread=0.5):
    return [{"step": i + 1, "reward": c, "kl": kl, "frac_zero_std": 1 - spread, "correctness": c}
            for i, c in enumerate(correctness)]


def test_health_report_checks_the_sharpening_first_ten_steps_against_the_last_ten():
    rules = {r["rule"].split(" (")[0]: r for r in grpo.health_report(_log([0.2] * 10 + [0.25] * 10 + [0.31] * 10))}
    sharpening = rules["correctness of the samples rises by 0.1"]
    assert sharpening["ok"] and sharpening["value"] == "0.200 -> 0.310"
    assert "first 10 vs last 10 steps" in next(r["rule"] for r in grpo.health_report(_log([0.2] * 30))
                                                if r["rule"].startswith("correctness"))
    flat = {r["rule"].split(" (")[0]: r for r in grpo.health_report(_log([0.2] * 10 + [0.29] * 10))}
    assert not flat["correctness of the samples rises by 0.1"]["ok"]
    assert "headroom" in flat["correctness of the samples rises by 0.1"]["explanation"]
    assert flat["mean reward rises"]["ok"] and flat["KL stays below 0.5"]["ok"]


def test_health_report_takes_the_draw_of_fresh_prompts_out_of_the_sharpening():
    log = _log([0.31] * 10 + [0.25] * 6 + [0.22] * 10)  # samples fall 9 points from the first 10 steps to the last
    harder = {**{s: 0.39 for s in range(1, 11)}, **{s: 0.19 for s in range(17, 27)}}  # the draw fell 20
    (rule,) = [r for r in grpo.health_report(log, start_scores=harder) if r["rule"].startswith("correctness")]
    assert rule["ok"] and rule["value"] == ("0.310 -> 0.220; the starting policy on the same prompts 0.390 -> 0.190"
                                            "; gain beyond the draw +0.110")
    same = {s: 0.3 for s in range(1, 27)}  # an even draw: the plain reading stands
    (rule,) = [r for r in grpo.health_report(log, start_scores=same) if r["rule"].startswith("correctness")]
    assert not rule["ok"] and rule["value"].endswith("gain beyond the draw -0.090")
    (rule,) = [r for r in grpo.health_report(log, start_scores={1: 0.5}) if r["rule"].startswith("correctness")]
    assert rule["value"] == "0.310 -> 0.220"  # no score for the late window: nothing to adjust by


def test_start_policy_step_scores_grade_the_prompts_of_the_compared_steps(tiny_model_dir, train_file,
                                                                          workbook_output):
    settings = _settings(tiny_model_dir, max_steps=4, seed=1)
    result = grpo.train_grpo(settings, train_file)
    steps = json.loads((result.run.root / "run.json").read_text())["processes"][0]["prompts"]
    numeric = {grpo.prompt_id(r["question"]) for r in ROWS if r.get("final_answer")}
    scores = grpo.start_policy_step_scores(settings, None, result.run.root, train_file, result.log_rows)
    # 4 steps: windows of 2 (steps 1-2 and 3-4); a step is scored when it drew a numeric prompt
    assert set(scores) == {i for i, step in enumerate(steps, 1) if any(pid in numeric for pid, _ in step)}
    assert all(v == 0.0 for v in scores.values())  # the random tiny model answers no sum right, greedy
    (result.run.root / "run.json").write_text(json.dumps({"processes": [{"rank": 0, "rows": 0}]}))
    assert grpo.start_policy_step_scores(settings, None, result.run.root, train_file, result.log_rows) is None


def test_health_report_on_a_short_run_compares_halves_and_flags_a_drifting_policy():
    (short,) = [r for r in grpo.health_report(_log([0.1, 0.1, 0.3, 0.4], kl=0.9, spread=0.05))
                if r["rule"].startswith("correctness")]
    assert "first 2 vs last 2 steps" in short["rule"] and short["ok"] and short["value"] == "0.100 -> 0.350"
    rules = {r["rule"]: r for r in grpo.health_report(_log([0.1, 0.1, 0.3, 0.4], kl=0.9, spread=0.05))}
    assert not rules["KL stays below 0.5"]["ok"] and not rules["groups have reward spread"]["ok"]
    assert grpo.health_report([{"step": 1}])[0]["ok"] is False  # no reward logged yet
    (none,) = [r for r in grpo.health_report([{"step": 1, "reward": 0.3}]) if r["rule"].startswith("correctness")]
    assert not none["ok"] and none["explanation"] == "no correctness reward was logged"
