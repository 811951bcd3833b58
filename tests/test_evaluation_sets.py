"""The evaluation every notebook reports: both sets, paired statistics, retention, the cached base model.

Hand-built reports check the statistics and the retention rule exactly; one
test on the tiny model checks that completions are cached by the weights'
fingerprint and that a cached run scores the same as a fresh one.
"""

from __future__ import annotations

import json
import math

import pytest

from helpers import evaluate
from helpers.evaluate import EvalReport


def _report(name: str, hits: list[bool], group: str = "dice", kind: str = "numeric") -> EvalReport:
    rows = [{"question": f"q{i}", "kind": kind, "group": group, "correct_strict": h, "correct_lenient": h,
             "completion": "x", "reference": "1", "format_ok": h, "truncated": False, "answer_tokens": 3}
            for i, h in enumerate(hits)]
    return EvalReport(name, rows, evaluate.summarize_rows(rows))


def test_mcnemar_matches_the_exact_binomial_tail():
    # 8 discordant pairs, 1 against: two-sided exact p = 2 * (C(8,0) + C(8,1)) / 2^8
    assert evaluate.mcnemar_p(7, 1) == pytest.approx(2 * (1 + 8) / 256, abs=1e-6)
    assert evaluate.mcnemar_p(0, 0) == 1.0 and evaluate.mcnemar_p(3, 3) == 1.0


def test_paired_comparison_counts_changes_by_question():
    before = _report("sft", [True, True, False, False, False, True])
    after = _report("grpo", [True, False, True, True, False, True])
    p = evaluate.paired_comparison(before, after, n_boot=500)
    assert (p["n"], p["newly_right"], p["newly_wrong"]) == (6, 2, 1)
    assert p["difference"] == pytest.approx(1 / 6, abs=1e-4)
    assert p["ci95"][0] <= p["difference"] <= p["ci95"][1]
    assert p["mcnemar_p"] == evaluate.mcnemar_p(2, 1)


def test_retention_flags_a_family_that_falls_below_ninety_percent():
    rows = (_report("sft", [True] * 10, "coins").rows
            + [dict(r, group="permutations", question="p" + r["question"])
               for r in _report("sft", [True] * 8 + [False] * 2).rows])
    result = evaluate.retention(EvalReport("sft", rows, {}))
    assert result["by_family"]["coins"] == {"n": 10, "kept": 10, "share": 1.0, "flagged": False}
    assert result["by_family"]["permutations"]["flagged"] and result["flagged"] == ["permutations"]
    assert result["share"] == 0.9 and result["n"] == 20
    table = evaluate.retention_table([result])
    assert table[-1]["family"] == "all" and "18/20" in table[-1]["sft"]


def test_concept_answers_count_as_right_by_meaning():
    assert evaluate.answered_right({"kind": "concept", "embedding_cosine": 0.8})
    assert not evaluate.answered_right({"kind": "concept", "embedding_cosine": 0.5})
    assert evaluate.answered_right({"kind": "concept", "token_f1": 0.6})  # no encoder installed
    assert not evaluate.answered_right({"kind": "numeric", "correct_lenient": False})


def test_scorecard_puts_transfer_first_with_intervals_and_retention():
    reports = {"in_distribution": [_report("base", [False] * 10), _report("sft", [True] * 6 + [False] * 4)],
               "transfer": [_report("base", [True] * 2 + [False] * 8), _report("sft", [True] * 4 + [False] * 6)]}
    kept = [evaluate.retention(_report("sft", [True, True, False]))]
    card = evaluate.scorecard(reports, kept)
    assert [r["model"] for r in card] == ["base", "sft"]
    assert list(card[1])[1:3] == ["transfer_strict", "transfer_95"]
    assert card[1]["transfer_strict"] == 0.4 and card[1]["in_distribution_strict"] == 0.6
    assert card[1]["transfer_95"] == evaluate.accuracy_interval(4, 10)
    assert card[1]["retention"] == pytest.approx(2 / 3, abs=1e-4) and "retention" not in card[0]
    text = evaluate.headline(card, "base", "sft")
    assert text.startswith("sft vs base: transfer 20.0% -> 40.0%") and "in distribution 0.0% -> 60.0%" in text
    paired = {"n": 320, "newly_right": 60, "newly_wrong": 2, "mcnemar_p": 0.0}
    assert ", paired: 60 newly right / 2 newly wrong, McNemar p < 1e-6;" in evaluate.headline(card, "base", "sft", paired)
    paired["mcnemar_p"] = 0.031
    assert ", McNemar p 0.031;" in evaluate.headline(card, "base", "sft", paired)


def test_write_metrics_keeps_both_sets_and_the_top_level_models(tmp_path):
    reports = {"transfer": [_report("base", [False])], "in_distribution": [_report("base", [True])]}
    data = evaluate.write_metrics(tmp_path / "m.json", reports, {"scorecard": []})
    stored = json.loads((tmp_path / "m.json").read_text())
    assert stored == json.loads(json.dumps(data))
    assert set(stored["sets"]) == {"transfer", "in_distribution"}
    assert stored["models"]["base"]["accuracy_strict"] == 1.0  # in distribution at the top level


def test_evaluation_plan_checks_names_and_keeps_the_preset_for_none():
    plan = evaluate.evaluation_plan("fast_test", n_transfer=None, max_new_tokens=64)
    assert plan["n_transfer"] == evaluate.EVAL_PRESETS["fast_test"]["n_transfer"] and plan["max_new_tokens"] == 64
    with pytest.raises(ValueError, match="n_tranfer"):
        evaluate.evaluation_plan("fast_test", n_tranfer=3)
    with pytest.raises(ValueError, match="PRESET"):
        evaluate.evaluation_plan("fastest")


def test_load_retention_set_refuses_another_base_model(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"model": "embedded", "records": [
        {"question": f"q{i}", "final_answer": "1", "family": fam} for i, fam in enumerate("aabbbc")]}))
    with pytest.raises(FileNotFoundError, match="python -m helpers retention"):
        evaluate.load_retention_set("some/other-model", path=path)
    picked = evaluate.load_retention_set("embedded", n=3, path=path)
    assert sorted(r["family"] for r in picked) == ["a", "b", "c"]  # spread over families


def test_the_committed_retention_set_is_for_the_embedded_model():
    data = json.loads(evaluate.RETENTION_FILE.read_text())
    assert data["model"] == "embedded" and data["kept"] == len(data["records"]) > 0
    assert all(r["family"] and r["question"] and r.get("base_completion") for r in data["records"])
    transfer = {r["question"] for r in evaluate.transfer_records()}
    assert not transfer & {r["question"] for r in data["records"]}


def test_cached_generations_are_reused_only_for_the_same_weights(tiny_model_dir, workbook_output):
    from helpers.models import load_base_model, load_tokenizer

    model, tok = load_base_model(str(tiny_model_dir)), load_tokenizer(str(tiny_model_dir))
    records = [{"question": "What is 2 + 2?", "final_answer": "4", "family": "arithmetic"},
               {"question": "What is 3 + 5?", "final_answer": "8", "family": "arithmetic"}]
    gen = evaluate.GenerationSettings(max_new_tokens=6, batch_size=2)
    fp = evaluate.model_fingerprint(str(tiny_model_dir))
    first = evaluate.evaluate_model(model, tok, records, "base", gen, use_embeddings=False, fingerprint=fp)
    cached = list((workbook_output / ".eval_cache").glob("*.json"))
    assert len(cached) == 1
    again = evaluate.evaluate_model(None, tok, records, "base", gen, use_embeddings=False, fingerprint=fp)
    assert again.rows == first.rows  # no model needed: the completions came from the cache
    evaluate.evaluate_model(model, tok, records, "base", gen, use_embeddings=False, fingerprint=fp + "-other")
    assert len(list((workbook_output / ".eval_cache").glob("*.json"))) == 2
    assert not math.isnan(first.summary["format_rate"])


def test_an_adapter_rescaled_in_its_config_alone_is_another_model(tmp_path, tiny_model_dir):
    """Same weights, another lora_alpha: another fingerprint, so no cached answers of the first are reused."""
    import json

    first, second = tmp_path / "a", tmp_path / "b"
    for folder, alpha in ((first, 16), (second, 8)):
        folder.mkdir()
        (folder / "adapter_model.safetensors").write_bytes(b"the same weights")
        (folder / "adapter_config.json").write_text(json.dumps({"r": 8, "lora_alpha": alpha}))
    fingerprints = {evaluate.model_fingerprint(str(tiny_model_dir), folder) for folder in (first, second)}
    assert len(fingerprints) == 2
    assert evaluate.model_fingerprint(str(tiny_model_dir), first) == evaluate.model_fingerprint(str(tiny_model_dir),
                                                                                                  first)
