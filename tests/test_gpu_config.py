"""What a GPU resolves to, checked at the config boundary (no GPU needed): a DeviceInfo describes the card.

Cards follow the seed's hardware tiers: 7B SFT on 8 GB needs 4-bit weights, GRPO needs 12-16 GB with
``low_memory``, 24 GB runs ``default``. Memory figures here are helpers.gpu_memory's estimates, not
measurements; benchmarks/gpu_bench.py prints them next to the measured peak on a real GPU.
"""

import pytest

from helpers import config
from helpers.check import recommend_preset
from helpers.config import DeviceInfo
from helpers.gpu_memory import DEEPSEEK_MATH_7B, QWEN25_1_5B, estimate_gpu_memory_gb, model_shape

SEVEN_B = "deepseek-ai/deepseek-math-7b-instruct"


def card(memory_gb, capability=(8, 9), vllm=False, flash_attn=False, bf16=True):
    return DeviceInfo(kind="cuda", name=f"{memory_gb} GB card", memory_gb=memory_gb, bf16_supported=bf16, count=1,
                      capability=capability, vllm=vllm, flash_attn=flash_attn)


def peak(settings, stage, device):
    return estimate_gpu_memory_gb(settings, model_shape(settings.model_name), stage, device.memory_gb)["total"]


# ----------------------------------------------------------------------------- generation path (issue 21, part 3)
@pytest.mark.parametrize("preset", config.GRPO_PRESETS)
def test_cpu_generates_with_plain_generate_and_sees_nothing_new(preset, cpu):
    s = config.resolve(preset, "grpo", device=cpu)
    assert s.generation == "generate" and s.attn_implementation == "sdpa"
    assert not any("generation" in n or "GPU memory" in n for n in s.notes)


def test_gpu_takes_the_fastest_generation_path_it_has():
    assert config.resolve("default", "grpo", device=card(80.0, vllm=True)).generation == "vllm_colocate"
    assert config.resolve("default", "grpo", device=card(80.0)).generation == "continuous_batching"
    # 4-bit weights were chosen to save memory; vLLM would hold a second copy of the model
    assert config.resolve("low_memory", "grpo", device=card(80.0, vllm=True)).generation == "continuous_batching"


def test_a_generation_path_that_cannot_run_falls_back_with_a_note(cpu):
    s = config.resolve("default", "grpo", device=card(80.0), generation="vllm_colocate")
    assert s.generation == "continuous_batching" and any("needs the vllm package" in n for n in s.notes)
    s = config.resolve("default", "grpo", device=cpu, generation="continuous_batching")
    assert s.generation == "generate" and any("needs a CUDA GPU" in n for n in s.notes)
    assert config.resolve("default", "grpo", device=card(80.0, vllm=True), generation="generate").generation == \
        "generate"
    with pytest.raises(ValueError, match="generation: must be one of"):
        config.resolve("default", "grpo", device=cpu, generation="fast")


# ----------------------------------------------------------------------------- numerics and attention (part 4)
def test_attention_is_flash_only_where_its_kernels_run(cpu):
    assert config.resolve("default", device=card(80.0, flash_attn=True)).attn_implementation == "flash_attention_2"
    assert config.resolve("default", device=card(80.0)).attn_implementation == "sdpa"  # package missing
    t4 = card(15.0, capability=(7, 5), flash_attn=True, bf16=False)
    s = config.resolve("default", device=t4)
    assert (s.attn_implementation, s.dtype) == ("sdpa", "float16")  # Turing: no FlashAttention-2, no bf16
    s = config.resolve("default", device=cpu, attn_implementation="flash_attention_2")
    assert s.attn_implementation == "sdpa" and any("flash_attn" in n for n in s.notes)


def test_low_memory_is_nf4_with_double_quantization_and_bf16_compute():
    from helpers.models import quantization_config

    s = config.resolve("low_memory", device=card(8.0))
    assert s.load_in_4bit and s.gradient_checkpointing and s.optim == "paged_adamw_8bit" and s.dtype == "bfloat16"
    q = quantization_config(s.load_in_4bit, compute_dtype=s.dtype)
    assert (q.bnb_4bit_quant_type, q.bnb_4bit_use_double_quant, str(q.bnb_4bit_compute_dtype)) == \
        ("nf4", True, "torch.bfloat16")


def test_each_process_loads_onto_its_own_gpu(monkeypatch):
    from helpers.models import cuda_device_map

    monkeypatch.setenv("LOCAL_RANK", "1")
    assert cuda_device_map("cuda", quantized=False) == {"": 1}
    assert cuda_device_map(None, quantized=True) == {"": 1}  # 4-bit weights cannot move after loading
    assert cuda_device_map("cuda:3") == {"": 3}
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    assert cuda_device_map("cuda") is None  # FSDP shards full-precision weights itself
    assert cuda_device_map("cpu") is None


# ----------------------------------------------------------------------------- the seed's hardware tiers (part 4)
def test_8_gb_card_trains_7b_sft_in_4_bit_and_grpo_only_with_half_batches():
    device = card(8.0)
    assert recommend_preset(device)[0] == "low_memory"
    sft = config.resolve("low_memory", "sft", device=device, model_name=SEVEN_B)
    assert sft.load_in_4bit and sft.gradient_checkpointing and sft.optim == "paged_adamw_8bit"
    assert (sft.batch_size, sft.grad_accum) == (4, 4) and peak(sft, "sft", device) <= 8.0
    bf16 = config.resolve("default", "sft", device=device, model_name=SEVEN_B)
    assert peak(bf16, "sft", device) > 8.0 and any("use the low_memory preset" in n for n in bf16.notes)
    grpo = config.resolve("low_memory", "grpo", device=device, model_name=SEVEN_B)
    assert (grpo.batch_size, grpo.grad_accum, grpo.num_generations) == (4, 2, 4)  # one group per micro-batch
    assert peak(grpo, "grpo", device) <= 8.0 and any("batch_size 8 -> 4" in n for n in grpo.notes)


def test_16_gb_card_runs_7b_grpo_with_low_memory_as_it_is():
    device = card(15.6)  # what a 16 GB card reports in GiB
    assert recommend_preset(device)[0] == "low_memory"
    for stage in ("sft", "grpo"):
        s = config.resolve("low_memory", stage, device=device, model_name=SEVEN_B)
        preset = config.resolve("low_memory", stage, device=card(80.0), model_name=SEVEN_B)
        assert (s.batch_size, s.grad_accum) == (preset.batch_size, preset.grad_accum) and s.load_in_4bit
        assert peak(s, stage, device) <= 15.6 and not any("GPU memory" in n for n in s.notes)
    assert config.resolve("low_memory", "grpo", device=device, model_name=SEVEN_B).max_new_tokens == 256


def test_24_gb_card_runs_default_and_checkpoints_only_a_model_that_needs_it():
    device = card(23.6)
    assert recommend_preset(device)[0] == "default"
    small = config.resolve("default", "sft", device=device)  # the embedded 135M model
    assert small.dtype == "bfloat16" and not small.gradient_checkpointing and small.batch_size == 16
    assert not any("GPU memory" in n for n in small.notes)
    big = config.resolve("default", "sft", device=device, model_name=SEVEN_B)
    assert big.gradient_checkpointing and (big.batch_size, big.grad_accum) == (16, 1) and not big.load_in_4bit
    assert peak(big, "sft", device) <= 23.6 and any("gradient checkpointing on" in n for n in big.notes)
    grpo = config.resolve("default", "grpo", device=device, model_name=SEVEN_B)
    assert peak(grpo, "grpo", device) > 23.6 and any("use the low_memory preset" in n for n in grpo.notes)


def test_values_the_user_set_are_never_changed_to_fit():
    s = config.resolve("default", "sft", device=card(23.6), model_name=SEVEN_B, gradient_checkpointing=False,
                       batch_size=16)
    assert (s.gradient_checkpointing, s.batch_size, s.grad_accum) == (False, 16, 1)
    assert any("still about" in n for n in s.notes)


def test_shapes_are_the_real_models():
    assert round(DEEPSEEK_MATH_7B.params() / 1e9, 2) == 6.91  # deepseek-math-7b: 6.91B parameters
    assert round(QWEN25_1_5B.params() / 1e9, 2) == 1.54  # Qwen2.5-1.5B: 1.54B (tied head)
    assert model_shape("embedded").hidden == 576 and model_shape("no/such-model") is None


def test_a_local_folder_is_read_from_its_config(tmp_path):
    import json

    (tmp_path / "config.json").write_text(json.dumps({**DEEPSEEK_MATH_7B.config_dict(), "model_type": "llama"}))
    assert model_shape(str(tmp_path)).params() == DEEPSEEK_MATH_7B.params()


# ----------------------------------------------------------------------------- GPU code paths that run on a CPU too
def _grpo_args(tmp_path, **kwargs):
    from trl import GRPOConfig

    return GRPOConfig(output_dir=str(tmp_path), num_generations=4, per_device_train_batch_size=4,
                      max_completion_length=6, max_steps=1, use_cpu=True, report_to=[], save_strategy="no",
                      gradient_checkpointing=False, **kwargs)


def _prompts():
    from datasets import Dataset

    return Dataset.from_list([{"prompt": [{"role": "user", "content": f"What is {i} + 1?"}]} for i in range(8)])


def _reward(completions, **kwargs):
    return [float(len(c[0]["content"]) % 3) for c in completions]


@pytest.mark.slow
def test_float32_lm_head_for_sampling_works_with_a_tied_head(tiny_model_dir, tmp_path):
    """GPU GRPO in bf16 sets cast_lm_head_to_fp32; with tied embeddings and PEFT, TRL 1.16 alone raises."""
    from peft import LoraConfig
    from trl import GRPOTrainer

    from helpers.grpo import tied_head_visible_to_trl
    from helpers.models import load_base_model, load_tokenizer

    tok, peft = load_tokenizer(str(tiny_model_dir)), LoraConfig(r=4, target_modules=["q_proj"], task_type="CAUSAL_LM")
    args = _grpo_args(tmp_path, cast_lm_head_to_fp32=True)
    with pytest.raises(AttributeError, match="embed_tokens"):  # TRL's own path (if this fails, TRL fixed it)
        GRPOTrainer(model=load_base_model(str(tiny_model_dir)), reward_funcs=[_reward], args=args,
                    train_dataset=_prompts(), processing_class=tok, peft_config=peft)
    model = load_base_model(str(tiny_model_dir))
    with tied_head_visible_to_trl(model, True):
        trainer = GRPOTrainer(model=model, reward_funcs=[_reward], args=args, train_dataset=_prompts(),
                              processing_class=tok, peft_config=peft)
    assert "embed_tokens" not in model.__dict__ and not any(k.startswith("embed_tokens") for k in model.state_dict())
    trainer.train()
    assert trainer.model.get_base_model().lm_head.weight.dtype.is_floating_point


@pytest.mark.slow
def test_continuous_batching_keeps_the_adapter_in_float32(tiny_model_dir, tmp_path):
    """TRL casts the model to bf16 for continuous batching; the workbook's trainer puts the adapter back."""
    import torch
    from peft import LoraConfig

    from helpers.grpo_trainer import WorkbookGRPOTrainer
    from helpers.models import load_base_model, load_tokenizer

    tok = load_tokenizer(str(tiny_model_dir))
    trainer = WorkbookGRPOTrainer(model=load_base_model(str(tiny_model_dir)), reward_funcs=[_reward],
                                  args=_grpo_args(tmp_path, bf16=True, use_transformers_continuous_batching=True),
                                  train_dataset=_prompts(), processing_class=tok,
                                  peft_config=LoraConfig(r=4, target_modules=["q_proj"], task_type="CAUSAL_LM"))
    ids = [tok.apply_chat_template([{"role": "user", "content": "What is 2 + 2?"}], add_generation_prompt=True,
                                   tokenize=True, return_dict=False)] * 4
    completions, _ = trainer._generate_single_turn([list(i) for i in ids], None, {}, 4)
    assert len(completions) == 4
    assert {p.dtype for p in trainer.model.parameters() if p.requires_grad} == {torch.float32}


@pytest.mark.slow
def test_gradient_checkpointing_is_non_reentrant_with_peft_input_grads(tiny_model_dir, tmp_path, workbook_output):
    """What low_memory turns on for a GPU, run here on the CPU: transformers 5.24 checkpoints with
    use_reentrant=False (no kwargs given), TRL enables PEFT's input-grad hook, and a step trains the adapter."""
    import json

    from helpers import config, sft

    rows = [{"question": f"What is {i} + 1?", "answer": f"{i} + 1 = {i + 1}.\nAnswer: {i + 1}"} for i in range(8)]
    data = tmp_path / "train.json"
    data.write_text(json.dumps(rows))
    settings = config.resolve("fast_test", device=config.DeviceInfo(), model_name=str(tiny_model_dir), max_steps=1,
                              gradient_checkpointing=True, max_train_examples=0, save_steps=10, warmup_ratio=0.0,
                              lr_scheduler="constant", lr=1e-2)
    stage = sft.SFTStage(data)
    stage.load_data(settings)
    stage.load_model(settings)
    trainer = stage.build(settings, tmp_path / "run", [])
    assert trainer.args.gradient_checkpointing and not trainer.args.gradient_checkpointing_kwargs
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    trainer.train()
    layer = trainer.model.get_base_model().model.layers[0]
    assert layer.gradient_checkpointing and layer._gradient_checkpointing_func.keywords == {"use_reentrant": False}
    assert trainer.model.get_input_embeddings()._forward_hooks, "PEFT's input-grad hook is missing"
    after = dict(trainer.model.named_parameters())
    assert any(not (after[n] == before[n]).all() for n in before), "the adapter did not train"
