"""pass@k headroom: the unbiased estimator on hand-made samples with known values, and the sampler on the tiny model."""

import itertools
import json
import math

import matplotlib.pyplot as plt
import pytest

from helpers import headroom
from helpers.headroom import headroom_from_grades, pass_at_k


def brute_force_pass_at_k(n: int, c: int, k: int) -> float:
    """The share of all k-subsets of n samples (the first c right) that hold a right one."""
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(i < c for i in s) for s in subsets) / len(subsets)


def test_known_values():
    assert pass_at_k(4, 2, 1) == 0.5
    assert math.isclose(pass_at_k(4, 2, 2), 5 / 6)
    assert pass_at_k(4, 2, 3) == 1.0  # only 2 wrong samples: any 3 hold a right one
    assert pass_at_k(16, 0, 16) == 0.0 and pass_at_k(16, 16, 1) == 1.0
    for k in (1, 2, 4, 8, 16):
        assert math.isclose(pass_at_k(16, 1, k), k / 16)


@pytest.mark.parametrize("n,c", [(4, 1), (6, 2), (8, 3), (8, 0), (5, 5)])
def test_estimator_equals_counting_every_subset(n, c):
    for k in range(1, n + 1):
        assert math.isclose(pass_at_k(n, c, k), brute_force_pass_at_k(n, c, k)), (n, c, k)


def test_k_above_n_and_bad_counts_raise():
    with pytest.raises(ValueError, match="k: must be between 1 and n=4"):
        pass_at_k(4, 1, 8)
    with pytest.raises(ValueError, match="c: must be between 0 and n=4"):
        pass_at_k(4, 5, 1)


def test_report_from_hand_made_grades():
    right, wrong = True, False
    grades = [[right, right, wrong, wrong],  # greedy right
              [right, wrong, wrong, wrong],  # greedy wrong, some sample right: sharpening could fix it
              [wrong, wrong, wrong, wrong]]  # greedy wrong, nothing to sharpen
    report = headroom_from_grades(grades, greedy=[True, False, False], temperature=1.0)
    assert sorted(report.pass_at_k) == [1, 2, 4]  # 8 and 16 need more than 4 samples
    assert math.isclose(report.pass_at_k[1], round((0.5 + 0.25) / 3, 4))
    assert math.isclose(report.pass_at_k[2], round((5 / 6 + 0.5) / 3, 4))
    assert math.isclose(report.pass_at_k[4], round(2 / 3, 4))
    assert math.isclose(report.greedy_accuracy, round(1 / 3, 4))
    assert math.isclose(report.greedy_wrong_some_right[2], round(0.5 / 3, 4))
    assert math.isclose(report.greedy_wrong_some_right[4], round(1 / 3, 4))
    assert report.right_counts == [2, 1, 0]
    stored = json.loads(json.dumps(report.as_dict()))
    assert stored["pass_at_k"]["pass@2"] == report.pass_at_k[2] and stored["samples_per_prompt"] == 4
    assert "at most about 33.3 points" in headroom.headroom_sentence(report)


def test_uneven_or_missing_grades_raise():
    with pytest.raises(ValueError, match="same number"):
        headroom_from_grades([[True], [True, False]])
    with pytest.raises(ValueError, match="greedy: 1 answers for 2 prompts"):
        headroom_from_grades([[True], [False]], greedy=[True])


def test_plot_is_a_closed_figure_with_one_line_per_report():
    a = headroom_from_grades([[True, False] * 8, [False] * 16], greedy=[True, False], temperature=1.0)
    b = headroom_from_grades([[True] * 16, [False] * 16], temperature=0.7)
    fig = headroom.plot_pass_at_k({"sft": a, "base": b})
    assert fig.number not in plt.get_fignums()
    ax = fig.axes[0]
    assert len(ax.lines) == 3  # two pass@k curves and a's greedy line
    assert list(ax.lines[0].get_xdata()) == [1, 2, 4, 8, 16]


def test_measure_grades_strictly_with_the_verifier(monkeypatch):
    """A right value without the Answer line is wrong here (strict), as in evaluation's strict accuracy."""
    records = [{"question": "What is 2 + 2?", "final_answer": "4"}, {"question": "Define a mean.", "answer": "..."}]
    calls = []

    def fake_generate(model, tokenizer, questions, settings, fingerprint=None, progress=True):
        calls.append(settings)
        if settings.do_sample:
            return [[{"text": t, "tokens": 3, "truncated": False}
                     for t in ("2 + 2 = 4\nAnswer: 4", "it is 4", "Answer: 5", "Answer: 4")]]
        return [[{"text": "it is 4", "tokens": 3, "truncated": False}]]

    monkeypatch.setattr("helpers.evaluate.cached_generate", fake_generate)
    report = headroom.measure_headroom(None, None, records, n=4, temperature=1.0)
    assert report.n_prompts == 1  # the concept question is left out
    assert report.right_counts == [2] and report.pass_at_k[1] == 0.5 and report.greedy_accuracy == 0.0
    assert math.isclose(report.greedy_wrong_some_right[2], round(5 / 6, 4))
    assert calls[0].num_samples == 4 and calls[0].temperature == 1.0 and not calls[1].do_sample


def test_sampler_runs_on_the_tiny_model(tiny_model_dir):
    from helpers.models import load_base_model, load_tokenizer

    model, tok = load_base_model(str(tiny_model_dir)), load_tokenizer(str(tiny_model_dir))
    records = [{"question": f"What is {a} + 1?", "final_answer": str(a + 1)} for a in range(3)]
    report = headroom.measure_headroom(model, tok, records, n=4, max_new_tokens=6, progress=False)
    assert report.n_prompts == 3 and report.samples_per_prompt == 4 and sorted(report.pass_at_k) == [1, 2, 4]
    assert report.greedy_accuracy is not None and len(report.right_counts) == 3


def test_reward_stage_headroom_measures_both_sets_at_both_temperatures(monkeypatch):
    """04's section: the reward stage's prompts at T 1.0 and at the training temperature, transfer at 1.0;
    the preset sets prompts and samples, and 0 prompts measures nothing."""
    seen = []

    def fake_measure(model, tokenizer, records, n, temperature, max_new_tokens, fingerprint, seed):
        seen.append((len(records), n, temperature, max_new_tokens))
        return headroom.headroom_from_grades([[True] + [False] * (n - 1)] * len(records), temperature=temperature)

    monkeypatch.setattr(headroom, "measure_headroom", fake_measure)
    rows = [{"question": f"q{i}", "final_answer": str(i)} for i in range(10)] + [{"question": "c", "answer": "a"}]
    room = headroom.reward_stage_headroom(None, None, rows, "fast_test", 0.7, 48)
    assert list(room) == ["reward-stage prompts, T 0.7", "reward-stage prompts, T 1", "transfer, T 1"]
    assert seen == [(4, 4, 0.7, 48), (4, 4, 1.0, 48), (4, 4, 1.0, 48)]  # HEADROOM_PRESETS["fast_test"]
    seen.clear()
    room = headroom.reward_stage_headroom(None, None, rows, "default", 1.0, 128, prompts=20, samples=8)
    assert list(room) == ["reward-stage prompts, T 1", "transfer, T 1"]
    assert seen == [(10, 8, 1.0, 128), (20, 8, 1.0, 128)]  # only the 10 numeric rows there are; 20 transfer
    assert headroom.reward_stage_headroom(None, None, rows, "default", 0.7, 128, prompts=0) == {}


def test_command_line_measures_both_sets_and_records_it_in_a_reward_stage_run(tiny_model_dir, tmp_path,
                                                                             workbook_output, capsys):
    from helpers import config, sft
    from helpers.__main__ import main

    rows = [{"question": f"What is {a} + {b}?", "answer": f"{a} + {b} = {a + b}.\nAnswer: {a + b}",
             "final_answer": str(a + b), "family": "arithmetic"} for a in range(1, 5) for b in range(1, 4)]
    data = tmp_path / "rows.json"
    data.write_text(json.dumps(rows))
    settings = config.resolve("fast_test", "sft", device=config.DeviceInfo(), model_name=str(tiny_model_dir),
                              max_steps=1, batch_size=4, save_steps=1, eval_steps=1, max_train_examples=0)
    run = sft.train_sft(settings, data, data).run.root
    grpo_run = workbook_output / "grpo_x"
    grpo_run.mkdir()
    (grpo_run / "run.json").write_text(json.dumps({"stage": "grpo", "status": "completed"}))
    out = tmp_path / "headroom.json"
    assert main(["headroom", "--sft-model", str(run), "--train-data", str(data), "--prompts", "3", "--samples", "2",
                 "--temperature", "0.7", "--max-new-tokens", "4", "--record-in", str(grpo_run),
                 "--out", str(out)]) == 0
    written = json.loads(out.read_text())
    assert written["sft_model"] == str(run / "final_model")
    assert set(written["headroom"]) == {"reward-stage prompts, T 0.7", "reward-stage prompts, T 1", "transfer, T 1"}
    for room in written["headroom"].values():
        assert room["n_prompts"] == 3 and room["samples_per_prompt"] == 2 and set(room["pass_at_k"]) == {"pass@1", "pass@2"}
    record = json.loads((grpo_run / "run.json").read_text())
    assert record["headroom"] == written["headroom"] and record["stage"] == "grpo"
    assert "sharpening can add at most" in capsys.readouterr().out
