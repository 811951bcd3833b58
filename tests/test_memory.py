"""The memory savers change nothing that is trained: same log-probs, loss, gradient and logged metrics as TRL's."""

import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

from helpers import config, grpo, memory, sft
from helpers.models import load_base_model, load_tokenizer


def _rows(n=12):
    rows = [{"question": f"What is {a} + {b}?", "answer": f"{a} + {b} = {a + b}.\nAnswer: {a + b}",
             "final_answer": str(a + b), "family": "arithmetic"} for a in range(1, 5) for b in range(1, 4)]
    rows[3] = {**rows[3], "answer": "Add them step by step. " * 6 + rows[3]["answer"]}  # one long row
    return rows[:n]


def _fused_model(model_dir):
    from trl.trainer.utils import add_fused_lm_head

    model = load_base_model(str(model_dir))
    add_fused_lm_head(model, outputs=("log_probs", "entropy", "is_top1"))
    return model


def _batch(model_dir):
    tok = load_tokenizer(str(model_dir), padding_side="right")
    texts = ["What is 2 + 3? 2 + 3 = 5.", "What is 10 + 7? Ten plus seven is 17, so 17.", "Hi"]
    enc = tok(texts, return_tensors="pt", padding=True)
    labels = enc.input_ids.masked_fill(enc.attention_mask == 0, -100)
    labels[:, :4] = -100  # a "prompt" without labels
    return enc.input_ids, enc.attention_mask, labels


@pytest.mark.parametrize("chunks", [(memory.TOKEN_CHUNK, memory.VOCAB_CHUNK), (5, 1000)])
def test_labelled_only_head_equals_trls_fused_head_and_its_gradient(tiny_model_dir, chunks):
    ids, mask, labels = _batch(tiny_model_dir)
    results = []
    for patched in (False, True):
        model = _fused_model(tiny_model_dir)
        if patched:
            memory.score_labelled_tokens_only(types.SimpleNamespace(model=model), token_chunk=chunks[0],
                                              vocab_chunk=chunks[1])
        out = model(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True, num_items_in_batch=11)
        out.loss.backward()
        grads = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
        results.append((out, grads))
    (trl_out, trl_grads), (out, grads) = results
    torch.testing.assert_close(out.log_probs, trl_out.log_probs, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.entropy, trl_out.entropy, atol=1e-5, rtol=1e-5)
    assert torch.equal(out.is_top1, trl_out.is_top1) and torch.equal(out.label_mask, trl_out.label_mask)
    torch.testing.assert_close(out.loss, trl_out.loss, atol=1e-6, rtol=1e-6)
    assert grads.keys() == trl_grads.keys() and len(grads) > 10
    for name in grads:
        torch.testing.assert_close(grads[name], trl_grads[name], atol=1e-6, rtol=1e-4)


def test_labelled_only_loss_is_the_plain_cross_entropy_of_the_full_logits(tiny_model_dir):
    ids, mask, labels = _batch(tiny_model_dir)
    model = _fused_model(tiny_model_dir)
    memory.score_labelled_tokens_only(types.SimpleNamespace(model=model), token_chunk=4, vocab_chunk=5000)
    loss = model(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True).loss
    logits = model(input_ids=ids, attention_mask=mask).logits  # the unpatched path: full logits
    expected = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), labels[:, 1:].reshape(-1))
    torch.testing.assert_close(loss, expected, atol=1e-5, rtol=1e-5)


def test_split_rows_caps_tokens_and_cuts_padding():
    mask = torch.tensor([[1] * 6 + [0] * 2, [1] * 8, [1] * 3 + [0] * 5, [1] * 2 + [0] * 6])
    batch = {"input_ids": torch.arange(32).reshape(4, 8), "attention_mask": mask, "labels": torch.zeros(4, 8),
             "num_items": 7}
    chunks = memory.split_rows(batch, 10)
    assert [rows for _, rows in chunks] == [1, 1, 2]
    assert [tuple(c["input_ids"].shape) for c, _ in chunks] == [(1, 6), (1, 8), (2, 3)]
    assert all(c["num_items"] == 7 for c, _ in chunks)
    assert torch.equal(torch.cat([c["input_ids"][:, :3] for c, _ in chunks]), batch["input_ids"][:, :3])


def _sft_trainer(model_dir, tmp_path, max_tokens):
    settings = config.resolve("fast_test", "sft", device=config.DeviceInfo(), model_name=str(model_dir),
                              batch_size=6, lora_dropout=0.0, max_steps=1)
    tok = load_tokenizer(str(model_dir), padding_side="right")
    trainer = sft.build_sft_trainer(settings, load_base_model(str(model_dir)), tok, _rows(), [], tmp_path)
    return memory.train_in_token_chunks(trainer, max_tokens)


def test_sft_token_chunks_give_the_batchs_loss_gradient_and_metrics(tiny_model_dir, tmp_path):
    runs = {}
    for max_tokens in (0, 60):
        torch.manual_seed(0)  # the same LoRA initialisation for both
        trainer = _sft_trainer(tiny_model_dir, tmp_path / str(max_tokens), max_tokens)
        torch.manual_seed(0)
        batch = next(iter(trainer.get_train_dataloader()))
        n_items = (batch["labels"][:, 1:] != -100).sum()
        calls = []
        compute = trainer.compute_loss
        trainer.compute_loss = lambda *a, **k: calls.append(a[1]["input_ids"].shape) or compute(*a, **k)
        loss = trainer.training_step(trainer.model, batch, n_items)
        grads = {k: p.grad.clone() for k, p in trainer.model.named_parameters() if p.grad is not None}
        runs[max_tokens] = loss, grads, {k: list(v) for k, v in trainer._metrics["train"].items()}, calls
    (loss, grads, metrics, calls), (c_loss, c_grads, c_metrics, c_calls) = runs[0], runs[60]
    assert len(calls) == 1 and len(c_calls) > 2 and all(r * c <= 60 or r == 1 for r, c in c_calls)
    torch.testing.assert_close(c_loss, loss, atol=1e-6, rtol=1e-5)
    assert grads.keys() == c_grads.keys() and grads
    for name in grads:
        torch.testing.assert_close(c_grads[name], grads[name], atol=1e-7, rtol=1e-4)
    for key in ("entropy", "mean_token_accuracy", "num_tokens"):
        assert len(c_metrics[key]) == 1, key
        assert c_metrics[key][0] == pytest.approx(metrics[key][0], rel=1e-5), key


def test_grpo_token_chunks_give_the_batchs_loss_and_gradient(tiny_model_dir, tmp_path):
    settings = config.resolve("fast_test", "grpo", device=config.DeviceInfo(), model_name=str(tiny_model_dir),
                              batch_size=8, num_generations=4, max_new_tokens=6, beta=0.05, lora_dropout=0.0)
    results = {}
    for max_tokens in (0, 40):
        model, tokenizer, _ = grpo.load_policy(settings, None)
        torch.manual_seed(0)  # the same LoRA initialisation for both
        trainer = grpo.build_grpo_trainer(settings, model, tokenizer, _rows(8), tmp_path / str(max_tokens))
        memory.grpo_loss_in_token_chunks(trainer, max_tokens)
        trainer.model.train()
        trainer.current_gradient_accumulation_steps = 1  # set by Trainer.train's loop
        g = torch.Generator().manual_seed(1)
        inputs = {"prompt_ids": torch.randint(5, 200, (8, 4), generator=g), "prompt_mask": torch.ones(8, 4, dtype=torch.long),
                  "completion_ids": torch.randint(5, 200, (8, 6), generator=g),
                  "completion_mask": (torch.rand(8, 6, generator=g) > 0.2).long(),
                  "advantages": torch.randn(8, generator=g), "num_items_in_batch": torch.tensor(40.0),
                  "ref_per_token_logps": -torch.rand(8, 6, generator=g) * 5}
        inputs["prompt_mask"][0, :2] = 0
        loss = trainer.compute_loss(trainer.model, inputs)
        loss.backward()
        grads = {k: p.grad.clone() for k, p in trainer.model.named_parameters() if p.grad is not None}
        results[max_tokens] = loss.detach(), grads, {k: list(v) for k, v in trainer._metrics["train"].items()}
    (loss, grads, metrics), (c_loss, c_grads, c_metrics) = results[0], results[40]
    torch.testing.assert_close(c_loss, loss, atol=1e-6, rtol=1e-5)
    assert grads
    for name in grads:
        torch.testing.assert_close(c_grads[name], grads[name], atol=1e-7, rtol=1e-4)
    for key in ("kl", "entropy", "clip_ratio/region_mean"):
        assert len(c_metrics[key]) == 1 and c_metrics[key][0] == pytest.approx(metrics[key][0], rel=1e-5, abs=1e-7)


def test_dropout_keeping_bits_draws_the_same_masks_and_gives_the_same_gradient():
    x = torch.randn(6, 50, requires_grad=True)
    results = []
    for bits in (False, True):
        holder = torch.nn.Module()
        holder.lora_dropout = torch.nn.ModuleDict({"default": torch.nn.Dropout(0.05)})
        if bits:
            assert memory.keep_dropout_masks_as_bits(holder) == 1
        drop = holder.lora_dropout["default"]
        assert isinstance(drop, torch.nn.Dropout) and drop.p == 0.05
        saved = []
        torch.manual_seed(7)
        with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
            out = drop(x)
        (grad,) = torch.autograd.grad((out * torch.arange(50.0)).sum(), x)
        results.append((out, grad, sum(t.numel() * t.element_size() for t in saved)))
    (out, grad, nbytes), (b_out, b_grad, b_nbytes) = results
    assert torch.equal(out, b_out) and torch.equal(grad, b_grad)
    assert (out == 0).any(), "p=0.05 over 300 values should drop some"
    assert b_nbytes * 4 == nbytes == 300 * 4


_HALF_FREED = """
import sys, torch
from helpers.memory import fix_mmap_threshold
applied = fix_mmap_threshold(int(sys.argv[1]))
def rss_mb():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS")) / 1024
torch.empty(512 * 1024, dtype=torch.uint8).fill_(1)  # one block freed: glibc's own threshold moves up to it
blocks = [torch.empty(512 * 1024, dtype=torch.uint8).fill_(1) for _ in range(200)]  # 100 MB
before = rss_mb()
del blocks[::2]  # every other block freed: holes in a heap cannot go back to the system
print(applied, round(before - rss_mb()))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_fixed_mmap_threshold_gives_freed_blocks_back_and_glibcs_own_keeps_them():
    """Why GRPO low_memory sets mmap_threshold_kib: 50 MB freed in holes comes back with it, not without it."""
    def freed_mb(kib):
        out = subprocess.run([sys.executable, "-c", _HALF_FREED, str(kib)], capture_output=True, text=True,
                             check=True, cwd=Path(__file__).resolve().parents[1]).stdout.split()
        return out[0] == "True", int(out[1])

    assert freed_mb(128) == (True, pytest.approx(50, abs=8))
    applied, freed = freed_mb(0)
    assert not applied and freed < 10
