"""A model you can run elsewhere (helpers.export): merged safetensors, GGUF, model card, portable base name.

The run is a real SFT run of a few steps on the tiny model (tests/conftest.py), so the card the trainer writes
is checked too. The GGUF file is read back with transformers' own GGUF loader.
"""

from __future__ import annotations

import json
import re

import pytest
import torch

from helpers import config, export, models, sft
from helpers.__main__ import main as cli

QUESTIONS = ["What is 2 + 3?", "A fair coin is tossed twice. What is the probability of two heads?"]


@pytest.fixture
def trained_run(tiny_model_dir, tmp_path, workbook_output):
    rows = [{"question": f"What is {a} + {b}?", "answer": f"{a} + {b} = {a + b}.\nAnswer: {a + b}",
             "final_answer": str(a + b)} for a in range(1, 6) for b in range(1, 5)]
    train = tmp_path / "train.json"
    train.write_text(json.dumps(rows))
    settings = config.resolve("fast_test", "sft", device=config.DeviceInfo(), model_name=str(tiny_model_dir),
                              max_steps=3, lr=2e-2, batch_size=4, logging_steps=1, warmup_ratio=0.0,
                              lr_scheduler="constant", max_train_examples=0, save_steps=10)
    result = sft.train_sft(settings, train, None)
    assert result.status == "completed"
    return result.run.root


ABSOLUTE = re.compile(r"(?<![\w.~-])/(?:home|work|tmp|root|Users|mnt|var|private|opt)/")


def test_final_model_gets_the_workbook_card_not_peft_template(trained_run, tmp_path):
    card = (trained_run / "final_model" / "README.md").read_text()
    assert "More Information Needed" not in card and "Model Card for Model ID" not in card
    assert "PeftModel.from_pretrained(base" in card and "Not evaluated yet" in card
    assert "AMD" in card or "cores" in card  # the machine, from run.json
    assert str(tmp_path) not in card and not ABSOLUTE.search(card), card


def test_export_merged_logits_equal_base_plus_adapter_and_gguf_answers_the_same(trained_run, tiny_model_dir,
                                                                               workbook_output, tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    (trained_run / "metrics.json").write_text(json.dumps({
        "models": {"base": {"accuracy_strict": 0.0, "n": 12}, "sft": {"accuracy_strict": 0.25, "n": 12}},
        "transfer": {"sft": {"accuracy_strict": 0.125}}, "retention": {"sft": 0.9}, "rows": {},
        "eval_data": str(tmp_path / "val.json")}))
    report = export.export_run(trained_run, workbook_output / "export_test")
    out = workbook_output / "export_test"
    assert report["gguf"]["type"] == "q8_0" and (out / report["gguf"]["file"]).stat().st_size == report["gguf"]["bytes"]
    assert json.loads((out / "export.json").read_text())["merged"]["bytes"] > 0

    ids = AutoTokenizer.from_pretrained(str(out))("What is 2 + 3?", return_tensors="pt").input_ids
    merged = AutoModelForCausalLM.from_pretrained(str(out)).eval()  # plain transformers, no PEFT
    with torch.no_grad():
        stacked = models.load_adapter(models.load_base_model(str(tiny_model_dir)), trained_run / "final_model")
        expected = stacked(ids).logits
        assert not torch.allclose(models.load_base_model(str(tiny_model_dir))(ids).logits, expected, atol=1e-3)
        assert torch.allclose(merged(ids).logits, expected, atol=1e-4)
        assert merged.get_parameter("model.layers.0.self_attn.q_proj.weight").dtype == torch.float32

    rows = export.compare_gguf_answers(out, report["gguf"]["file"], QUESTIONS, max_new_tokens=6)
    assert all(r["same"] for r in rows), rows
    gguf_path = out / report["gguf"]["file"]
    assert gguf_path.parent.name == "gguf" and [p.name for p in gguf_path.parent.iterdir()] == [gguf_path.name]
    gguf_model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name).eval()
    with torch.no_grad():
        diff = (gguf_model(ids).logits - merged(ids).logits).abs().max().item()
    assert diff < 0.05 * merged(ids).logits.abs().max().item(), diff  # q8_0: within a few percent

    card = (out / "README.md").read_text()
    for text in ("base_model:", "library_name: transformers", "transfer", "retention", "0.25", report["gguf"]["file"],
                 "sha256", "from_pretrained", "llama-server", "Ollama"):
        assert text in card, text
    assert str(tmp_path) not in card and not ABSOLUTE.search(card), card
    assert "val.json" in card  # the evaluation file by name only
    snippet = re.findall(r"```python\n(.*?)```", card, re.S)[1]  # the merged model's snippet runs as written
    monkeypatch.chdir(workbook_output)
    exec(snippet.replace("max_new_tokens=128", "max_new_tokens=4"), {})
    with pytest.raises(export.ExportError, match="not empty"):
        export.export_run(trained_run, out)


def test_f16_gguf_matches_the_merged_model_closely(trained_run, workbook_output):
    from transformers import AutoModelForCausalLM

    report = export.export_run(trained_run, workbook_output / "export_f16", gguf_type="f16")
    out = workbook_output / "export_f16"
    merged = AutoModelForCausalLM.from_pretrained(str(out)).eval()
    gguf_path = out / report["gguf"]["file"]
    from_gguf = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name).eval()
    ids = torch.tensor([[1, 20, 300, 4000, 123]])
    with torch.no_grad():
        assert torch.allclose(from_gguf(ids).logits, merged(ids).logits, atol=2e-3)


def test_adapter_names_a_portable_base_that_still_loads_here(tiny_model_dir, tmp_path, monkeypatch):
    from peft import LoraConfig, PeftModel, get_peft_model

    base = models.load_base_model(str(tiny_model_dir))
    peft = get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights=False))
    folder = tmp_path / "run" / "final_model"
    peft.save_pretrained(folder)
    cfg_path = folder / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["base_model_name_or_path"] = models.EMBEDDED_HUB_ID
    cfg_path.write_text(json.dumps(cfg))
    # the seed's snippet: the user passes the base, PEFT never looks the name up (no hub needed)
    PeftModel.from_pretrained(models.load_base_model(str(tiny_model_dir)), str(folder))
    assert models.adapter_base_name(folder) == models.EMBEDDED  # the hub id means the embedded copy here
    (folder.parent / "run.json").write_text(json.dumps({"settings": {"model_name": str(tiny_model_dir)}}))
    assert models.adapter_base_name(folder) == str(tiny_model_dir)  # the run's own base comes first
    assert models.portable_base_name("embedded") == models.EMBEDDED_HUB_ID
    assert models.portable_base_name(str(models.embedded_model_dir())) == models.EMBEDDED_HUB_ID
    assert models.portable_base_name("org/model") == "org/model"


def test_gguf_refuses_what_it_does_not_cover(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    with pytest.raises(export.ExportError, match="convert_hf_to_gguf"):
        export.write_gguf(tmp_path, tmp_path / "x.gguf")
    with pytest.raises(export.ExportError, match="gguf_type"):
        export.write_gguf(tmp_path, tmp_path / "x.gguf", gguf_type="q4_k")
    assert not list(tmp_path.glob("*.gguf"))


def test_export_cli_errors_are_one_line(tmp_path, workbook_output, capsys):
    run = workbook_output / "sft_broken"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"stage": "sft", "status": "failed", "settings": {}}))
    assert cli(["export", "--run", str(run), "--to", str(workbook_output / "export_x")]) == 2
    assert "error: run:" in capsys.readouterr().err and not (workbook_output / "export_x").exists()


def test_card_reads_whatever_metrics_exist(tmp_path):
    """The scorecard layout of 03/05 (transfer, in-distribution, retention) and an older flat one; no metrics."""
    run = tmp_path / "sft_x"
    (run / "final_model").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"stage": "sft", "run": "sft_x", "status": "completed",
                                              "settings": {"model_name": "embedded", "lr": 1e-3}}))
    (run / "final_model" / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "/abs/cache"}))
    export.write_model_card(run)
    card = (run / "final_model" / "README.md").read_text()
    assert "Not evaluated yet" in card and "base_model: HuggingFaceTB/SmolLM2-135M-Instruct" in card
    assert json.loads((run / "final_model" / "adapter_config.json").read_text())["base_model_name_or_path"] == \
        models.EMBEDDED_HUB_ID
    (run / "metrics.json").write_text(json.dumps({
        "sets": {"transfer": {"models": {"sft": {"accuracy_strict": 0.125}}, "rows": {"sft": [{"completion": "x"}]}}},
        "models": {"sft": {"accuracy_strict": 0.39}},
        "scorecard": [{"model": "sft", "transfer_strict": 0.125, "transfer_95": [0.09, 0.16],
                       "in_distribution_strict": 0.39, "retention": 0.93}],
        "retention": [{"model": "sft", "kept": 0.93, "n": 45}], "eval_seed": 0}))
    export.write_model_card(run)
    card = (run / "final_model" / "README.md").read_text()
    for text in ("transfer_strict", "0.09 to 0.16", "in_distribution_strict", "0.93", "**transfer set**", "eval_seed 0"):
        assert text in card, text
    assert card.index("**scorecard**") < card.index("**transfer set**")
