"""Shared fixtures: a tiny Llama built in the test with the real SmolLM2 tokenizer.

The tiny model has the embedded model's architecture and vocabulary but two
layers of width 64, so training and generation tests take seconds. Every test
writes under a temporary output folder (WORKBOOK_OUTPUT), never into output/.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


def pytest_collection_modifyitems(session, config, items):
    """tests/test_executed_notebooks.py reads what tests/test_notebooks.py executed, so it runs last."""
    items.sort(key=lambda item: item.path.name == "test_executed_notebooks.py")


def build_tiny_model(folder: Path, seed: int = 0) -> Path:
    """Save a 2-layer Llama with the SmolLM2 tokenizer to ``folder`` (safetensors)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from helpers.models import load_tokenizer

    tok = load_tokenizer("embedded")
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=2048,
        tie_word_embeddings=True, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture
def workbook_output(tmp_path, monkeypatch) -> Path:
    out = tmp_path / "output"
    out.mkdir()
    monkeypatch.setenv("WORKBOOK_OUTPUT", str(out))
    return out


@pytest.fixture
def cpu():
    from helpers.config import DeviceInfo

    return DeviceInfo()
