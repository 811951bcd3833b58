"""Preset resolution: device-aware values, overrides checked by name, type and range."""

import argparse

import pytest

from helpers import config
from helpers.config import DeviceInfo

H100 = DeviceInfo(kind="cuda", name="H100", memory_gb=80.0, bf16_supported=True, count=1)
T4 = DeviceInfo(kind="cuda", name="T4", memory_gb=15.0, bf16_supported=False, count=1)


@pytest.mark.parametrize("preset", config.PRESETS)
def test_cpu_presets_use_float32_without_checkpointing(preset, cpu):
    for stage in ("sft", "grpo"):
        s = config.resolve(preset, stage, device=cpu)
        assert (s.dtype, s.gradient_checkpointing, s.load_in_4bit) == ("float32", False, False)
        assert s.device == "cpu"


def test_cuda_presets_use_bf16_and_low_memory_is_4bit():
    assert config.resolve("default", device=H100).dtype == "bfloat16"
    low = config.resolve("low_memory", device=H100)
    assert low.load_in_4bit and low.gradient_checkpointing and low.optim == "paged_adamw_8bit"
    assert config.resolve("default", device=T4).dtype == "float16"


def test_low_memory_on_cpu_says_why_it_falls_back(cpu):
    s = config.resolve("low_memory", device=cpu)
    assert not s.load_in_4bit
    assert any("4-bit" in n and "CUDA" in n for n in s.notes)
    forced = config.resolve("default", device=cpu, load_in_4bit=True)
    assert not forced.load_in_4bit and forced.notes


def test_presets_are_frozen(cpu):
    import dataclasses

    s = config.resolve("fast_test", device=cpu)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.lr = 1.0


def test_overrides_apply_and_convert(cpu):
    s = config.resolve("default", device=cpu, lr=1, batch_size=2, target_modules=["q_proj", "v_proj"])
    assert s.lr == 1.0 and isinstance(s.lr, float)
    assert s.batch_size == 2
    assert s.target_modules == ("q_proj", "v_proj")
    g = config.resolve("from_sft", "grpo", device=cpu, reward_weights={"correctness": 1.0})
    assert g.reward_weights == (("correctness", 1.0),)


def test_unknown_names_list_the_valid_ones(cpu):
    with pytest.raises(ValueError) as err:
        config.resolve("default", device=cpu, learning_rat=1e-4)
    assert "learning_rat" in str(err.value) and "lr" in str(err.value) and "batch_size" in str(err.value)
    with pytest.raises(ValueError, match="preset: unknown preset 'fastest'.*fast_test"):
        config.resolve("fastest", device=cpu)
    with pytest.raises(ValueError, match="from_sft"):
        config.resolve("from_sft", "sft", device=cpu)


@pytest.mark.parametrize("name, value, exc, words", [
    ("lr", -1e-4, ValueError, "lr: must be > 0"),
    ("batch_size", 0, ValueError, "batch_size: must be > 0"),
    ("batch_size", 2.5, TypeError, "batch_size: expected an integer"),
    ("batch_size", True, TypeError, "batch_size: expected an integer"),
    ("lr", "fast", TypeError, "lr: expected a number"),
    ("lr", float("nan"), ValueError, "lr: must be a finite"),
    ("lora_dropout", 1.5, ValueError, "lora_dropout: must be in [0, 1)"),
    ("dtype", "float8", ValueError, "dtype: must be one of"),
    ("max_steps", 0, ValueError, "max_steps"),
    ("padding_free", "yes", TypeError, "padding_free: expected true/false"),
])
def test_bad_values_name_the_parameter(cpu, name, value, exc, words):
    with pytest.raises(exc) as err:
        config.resolve("default", device=cpu, **{name: value})
    assert str(err.value).startswith(words)


def test_command_line_flags_go_through_the_same_checks(cpu):
    parser = argparse.ArgumentParser()
    config.add_settings_arguments(parser, "grpo")
    args = parser.parse_args(["--num-samples", "4", "--kl-coef", "0.1", "--lr", "5e-6", "--batch-size", "4",
                              "--reward-weights", "correctness=1,format=0.5"])
    s = config.resolve("default", "grpo", device=cpu, **config.overrides_from_args(args, "grpo"))
    assert (s.num_generations, s.beta, s.lr, s.batch_size) == (4, 0.1, 5e-6, 4)
    assert s.reward_weights == (("correctness", 1.0), ("format", 0.5))
    bad = parser.parse_args(["--batch-size", "many"])
    with pytest.raises(TypeError, match="batch_size"):
        config.overrides_from_args(bad, "grpo")


def test_as_dict_is_json_friendly(cpu):
    import json

    values = config.as_dict(config.resolve("from_sft", "grpo", device=cpu, reward_weights={"correctness": 1.0}))
    assert json.loads(json.dumps(values)) == values  # nothing is lost or changed on the way through JSON
    assert values["target_modules"][0] == "q_proj" and values["reward_weights"] == [["correctness", 1.0]]


def test_cpu_memory_settings_are_those_benchmarks_results_measured(cpu):
    """benchmarks/RESULTS.md measured these settings (2026-12-02/03): SFT default in passes of 384 tokens (2.26 GB on its 6 longest batches, 2026-12-04; 2.73 in passes of 512),
    SFT low_memory as default's batch in 4 x 2 passes of 128 (1.73 GB, the same adapter with dropout off), GRPO
    default in passes of 512 (3.6 GB), GRPO low_memory in passes of 128 with glibc's mmap threshold fixed at 128 KiB (1.49 GB); changing one means measuring again."""
    sft_default, sft_low = config.resolve("default", "sft", device=cpu), config.resolve("low_memory", "sft", device=cpu)
    assert sft_default.max_tokens_per_pass == 384 and sft_low.max_tokens_per_pass == 128
    assert (sft_low.batch_size * sft_low.grad_accum, sft_low.lr, sft_low.lora_r) == \
        (sft_default.batch_size * sft_default.grad_accum, sft_default.lr, sft_default.lora_r)
    assert config.resolve("default", "grpo", device=cpu).max_tokens_per_pass == 512
    assert config.resolve("low_memory", "grpo", device=cpu).max_tokens_per_pass == 128  # 1.49 GB over a 12-min run
    assert config.resolve("low_memory", "grpo", device=cpu).mmap_threshold_kib == 128  # with this; 1.89 without


def test_bf16_autocast_follows_the_cpu_and_only_for_sft():
    """A CPU with AVX512-BF16 or AMX trains SFT under bf16 autocast (1.9x the tokens/s with dropout off,
    benchmarks/RESULTS.md); GRPO's sampling stays float32, and a CPU without bf16 never gets it unasked."""
    bf16_cpu, plain_cpu = DeviceInfo(bf16_supported=True), DeviceInfo(bf16_supported=False)
    for preset in config.PRESETS:
        assert config.resolve(preset, "sft", device=bf16_cpu).bf16_autocast == (preset != "low_memory")
        assert not config.resolve(preset, "sft", device=plain_cpu).bf16_autocast
        assert not config.resolve(preset, "grpo", device=bf16_cpu).bf16_autocast
        assert config.resolve(preset, "sft", device=bf16_cpu).dtype == "float32"  # the weights stay float32
    assert not config.resolve("default", "sft", device=bf16_cpu, bf16_autocast=False).bf16_autocast
    asked = config.resolve("default", "sft", device=plain_cpu, bf16_autocast=True)
    assert asked.bf16_autocast and any("emulated" in n for n in asked.notes)
    on_gpu = config.resolve("default", "sft", device=H100, bf16_autocast=True)
    assert not on_gpu.bf16_autocast and on_gpu.dtype == "bfloat16"


def test_bf16_autocast_turns_on_the_trainers_mixed_precision():
    from helpers.training import trainer_arguments

    on = config.resolve("default", "sft", device=DeviceInfo(bf16_supported=True))
    off = config.resolve("default", "sft", device=DeviceInfo())
    assert trainer_arguments(on)["bf16"] and trainer_arguments(on)["use_cpu"]
    assert not trainer_arguments(off)["bf16"] and not trainer_arguments(off)["fp16"]


def test_cpu_sft_presets_spend_bf16_speed_on_examples_not_on_a_different_recipe():
    """README "bf16 matmuls on a CPU that has them": on such a CPU default trains 3,840 examples instead of 2,240;
    everything else of its recipe is the float32 default's, and full_training is the same on both."""
    bf16_cpu, plain_cpu = DeviceInfo(bf16_supported=True), DeviceInfo(bf16_supported=False)
    fast, plain = config.resolve("default", "sft", device=bf16_cpu), config.resolve("default", "sft", device=plain_cpu)
    assert (fast.max_train_examples, plain.max_train_examples) == (3840, 2240)
    same = ("lr", "batch_size", "grad_accum", "lora_r", "lora_alpha", "lora_dropout", "epochs", "max_length",
            "max_tokens_per_pass", "lr_scheduler", "warmup_ratio")
    assert {k: getattr(fast, k) for k in same} == {k: getattr(plain, k) for k in same}
    assert fast.lora_dropout == 0.0
    full = [config.resolve("full_training", "sft", device=d) for d in (bf16_cpu, plain_cpu)]
    assert full[0].max_train_examples == full[1].max_train_examples == 4480
    assert config.resolve("low_memory", "sft", device=bf16_cpu).max_train_examples == 2240
