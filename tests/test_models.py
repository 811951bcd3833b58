"""Model loading: the embedded model cache, local folders, hub ids (offline), adapters."""

import json
import shutil
import time

import pytest
import torch

from helpers import models


def test_embedded_model_is_converted_once(monkeypatch):
    folder = models.prepare_embedded_model()
    stamp = json.loads((folder / "converted_from.json").read_text())
    assert stamp["gguf"] == models.EMBEDDED_GGUF
    mtime = (folder / "model.safetensors").stat().st_mtime

    def no_conversion(*a, **k):
        raise AssertionError("the cached model was converted again")

    import transformers

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", no_conversion)
    start = time.time()
    assert models.prepare_embedded_model() == folder
    assert time.time() - start < 1
    assert (folder / "model.safetensors").stat().st_mtime == mtime
    assert models.resolve_model_path("embedded") == str(folder)


def test_embedded_tokenizer_has_chat_template_and_pad():
    tok = models.load_tokenizer("embedded")
    assert tok.pad_token is not None and tok.padding_side == "left"
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert text.endswith("<|im_start|>assistant\n")


def test_local_folder_loads_safetensors_only(tiny_model_dir):
    model = models.load_base_model(str(tiny_model_dir))
    assert model.config.num_hidden_layers == 2
    assert model.dtype == torch.float32


def test_hub_id_loads_from_the_hub_cache_offline(tiny_model_dir, tmp_path, monkeypatch):
    """The hub path, without a hub: a snapshot laid out as huggingface_hub caches it."""
    cache = tmp_path / "hub"
    snapshot = cache / "models--tiny-org--tiny-math" / "snapshots" / ("0" * 40)
    shutil.copytree(tiny_model_dir, snapshot)
    (cache / "models--tiny-org--tiny-math" / "refs").mkdir()
    (cache / "models--tiny-org--tiny-math" / "refs" / "main").write_text("0" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True)
    model = models.load_base_model("tiny-org/tiny-math")
    tok = models.load_tokenizer("tiny-org/tiny-math")
    assert model.config.hidden_size == 64 and tok.eos_token == "<|im_end|>"


def test_unreachable_hub_id_names_the_embedded_default(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True)
    with pytest.raises(models.ModelLoadError, match="embedded"):
        models.load_base_model("deepseek-ai/deepseek-math-7b-instruct")


@pytest.mark.parametrize("name", ["", "./no/such/folder", "not a model"])
def test_bad_model_names_are_explained(name):
    with pytest.raises(models.ModelLoadError, match="model_name"):
        models.resolve_model_path(name)


def test_quantized_loading_needs_cuda(tiny_model_dir):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(models.ModelLoadError, match="CUDA"):
        models.load_base_model(str(tiny_model_dir), load_in_4bit=True)


def test_adapter_round_trip_and_merge(tiny_model_dir, tmp_path):
    from peft import LoraConfig, get_peft_model

    base = models.load_base_model(str(tiny_model_dir))
    peft = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    tok = models.load_tokenizer(str(tiny_model_dir))
    ids = torch.tensor([[1, 2, 3, 4]])
    expected = peft(ids).logits
    peft.save_pretrained(tmp_path / "adapter")
    reloaded = models.load_adapter(models.load_base_model(str(tiny_model_dir)), tmp_path / "adapter")
    assert torch.allclose(reloaded(ids).logits, expected, atol=1e-5)
    merged_dir = models.merge_and_save(reloaded, tok, tmp_path / "merged")
    merged = models.load_base_model(str(merged_dir))
    assert torch.allclose(merged(ids).logits, expected, atol=1e-4)
    with pytest.raises(models.ModelLoadError, match="adapter_config.json"):
        models.load_adapter(base, tmp_path)
