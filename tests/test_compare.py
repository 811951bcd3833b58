"""05's budget-matched comparison: which runs it finds, which pairs it tests, and what it says (no model)."""

import json

from helpers import compare


def _run(out, name, stage, started, **record):
    folder = out / name
    (folder / "final_model").mkdir(parents=True)
    (folder / "final_model" / "adapter_config.json").write_text("{}")
    (folder / "run.json").write_text(json.dumps({"stage": stage, "status": "completed", "started": started,
                                                 **record}))
    return folder


def test_reward_stage_runs_are_the_newest_of_each_method_from_the_same_sft_run(workbook_output):
    sft = _run(workbook_output, "sft_a", "sft", "2026-12-02T10:00", settings={})
    other = _run(workbook_output, "sft_b", "sft", "2026-12-02T11:00", settings={})
    start = {"sft_model": str(sft / "final_model")}
    old = _run(workbook_output, "grpo_1", "grpo", "2026-12-02T12:00", settings={**start, "method": "grpo"})
    new = _run(workbook_output, "grpo_2", "grpo", "2026-12-02T13:00", settings={**start, "method": "grpo"})
    control = _run(workbook_output, "grpo_3", "grpo", "2026-12-02T14:00", settings={"sft_model": str(sft),
                                                                                    "method": "more_sft"})
    _run(workbook_output, "grpo_4", "grpo", "2026-12-02T15:00",
         settings={"sft_model": str(other / "final_model"), "method": "rejection_sft"})
    found = compare.reward_stage_runs(sft)
    assert found == {"grpo": new, "more_sft": control}  # a run folder or its final_model both name the start
    assert compare.reward_stage_runs(sft, given=str(old))["grpo"] == old
    assert list(compare.models_to_compare(sft, found)) == ["base", "sft", "grpo", "more_sft"]
    # no run from this SFT run: the newest reward-stage run stands in, named by its method
    lone = _run(workbook_output, "sft_c", "sft", "2026-12-02T16:00", settings={})
    assert list(compare.reward_stage_runs(lone)) == ["rejection_sft"]


def test_pairs_set_each_method_against_sft_and_the_rewards_against_the_control():
    assert compare.comparison_pairs(["base", "sft", "grpo"]) == [("base", "sft"), ("sft", "grpo")]
    pairs = compare.comparison_pairs(["base", "sft", "rejection_sft", "more_sft"])
    assert ("more_sft", "rejection_sft") in pairs and ("sft", "more_sft") in pairs and len(pairs) == 4


def _row(method, minutes, d_transfer, p):
    return {"method": method, "minutes": minutes, "transfer_vs_sft": d_transfer, "transfer_p": p,
            "in_distribution_vs_sft": 0.0}


def test_the_verdict_names_a_winner_only_when_it_beats_the_control_beyond_noise():
    rows = [_row("grpo", 20.0, 0.02, 0.6), _row("rejection_sft", 21.0, 0.09, 0.01), _row("more_sft", 19.5, 0.03, 0.4)]
    paired = {"grpo vs more_sft": {"transfer": {"n": 100, "difference": -0.01, "mcnemar_p": 0.9}},
              "rejection_sft vs more_sft": {"transfer": {"n": 100, "difference": 0.06, "mcnemar_p": 0.03}}}
    room = {"n_prompts": 300, "greedy_wrong_some_right": {"pass@1": 0.0, "pass@16": 0.21}}
    lines = compare.budget_verdict(rows, paired, room)
    assert lines[0].startswith("Budget-matched: each run took 19.5-21.0 min")
    assert any(line.startswith("rejection_sft vs the control") and "earns its place" in line for line in lines)
    assert any(line.startswith("grpo vs the control") and "does not beat" in line for line in lines)
    assert "Best on transfer: rejection_sft (+9.0%)." in lines
    assert "at most about 21 points" in lines[-1]


def test_the_verdict_says_when_runs_are_not_budget_matched_or_nothing_moved():
    rows = [_row("grpo", 40.0, 0.01, 0.8), _row("more_sft", 10.0, -0.01, 0.9)]
    lines = compare.budget_verdict(rows, {})
    assert lines[0].startswith("Not run from this SFT policy yet: rejection_sft")
    assert lines[1].startswith("Not budget-matched: the runs took grpo 40.0 min, more_sft 10.0 min")
    assert lines[-1].endswith("no method moved transfer accuracy beyond noise at this size.")
    assert compare.budget_verdict([], {})[0].startswith("No reward-stage run started from this SFT run")
