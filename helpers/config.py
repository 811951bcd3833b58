"""Presets: named, frozen training settings that know which device they run on.

Why this module exists: TRL's defaults are tuned for GPUs. On a CPU they turn
on bf16 and gradient checkpointing, which made an SFT step 14x slower on the
2-core machines this workbook is tested on. A preset here fixes every setting
that matters for the device at hand, and ``resolve`` is the one place where a
notebook parameter or a command-line flag can change one, checked by name, type
and range before any work starts.

Four presets for both stages (``fast_test``, ``default``, ``low_memory``,
``full_training``); GRPO adds ``from_sft``, which starts from an SFT adapter.

Introduced in 00_setup_check; used by every training notebook and by
``python -m helpers.sft`` / ``python -m helpers.grpo``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

PRESETS = ("fast_test", "default", "low_memory", "full_training")
GRPO_PRESETS = PRESETS + ("from_sft",)


@dataclass(frozen=True)
class DeviceInfo:
    """What the presets need to know about the machine."""

    kind: str = "cpu"  # "cpu" or "cuda"
    name: str = "cpu"
    memory_gb: float = 0.0  # GPU memory; 0 on CPU
    bf16_supported: bool = False  # bf16 in hardware (GPU: compute capability 8.0+; CPU: AVX512-BF16 or AMX)
    count: int = 0  # number of GPUs
    capability: tuple[int, int] = (0, 0)  # CUDA compute capability; FlashAttention-2 needs 8.0+
    flash_attn: bool = False  # the flash_attn package is installed
    vllm: bool = False  # the vllm package is installed (TRL's fastest GRPO generation)


def detect_device() -> DeviceInfo:
    """The device training will use: the first CUDA GPU when there is one, else the CPU.

    bf16 counts only when the GPU has it in hardware: ``torch.cuda.is_bf16_supported()``
    answers True on a T4 too (its default ``including_emulation=True`` accepts emulated
    bf16, which is slow and lacks cuBLAS kernels), so it is asked without emulation. On a
    CPU it counts when the CPU has AVX512-BF16 or AMX instructions: there a bf16 matmul ran
    3.8x faster than float32 (a 2-core AMD EPYC, 2026-12-08), while on a CPU without them
    it ran 8x slower (../shared/STACK-NOTES.md).
    """
    import importlib.util

    import torch

    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return DeviceInfo(
            kind="cuda",
            name=props.name,
            memory_gb=round(props.total_memory / 2**30, 1),
            bf16_supported=bool(torch.cuda.is_bf16_supported(including_emulation=False)),
            count=torch.cuda.device_count(),
            capability=(props.major, props.minor),
            flash_attn=importlib.util.find_spec("flash_attn") is not None,
            vllm=importlib.util.find_spec("vllm") is not None,
        )
    return DeviceInfo(bf16_supported=_cpu_has_bf16(torch))


def _cpu_has_bf16(torch) -> bool:
    """AVX512-BF16 or AMX on this CPU (torch's own dispatch checks; False where torch lacks them)."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


@dataclass(frozen=True)
class CommonSettings:
    """Settings both stages share. Every field can be overridden through ``resolve``."""

    preset: str = "default"
    device: str = "cpu"  # filled in by resolve from the detected device
    model_name: str = "embedded"  # "embedded", a local folder, or a hub id
    dtype: str = "float32"  # float32 | bfloat16 | float16: weights and compute
    # CPU SFT on a CPU with native bf16: matmuls in bf16 under torch.autocast, while the weights, the LoRA and
    # the optimizer stay float32 (1.46x the tokens/s, 1.89x with dropout 0; the same losses to 3 digits:
    # benchmarks/RESULTS.md)
    bf16_autocast: bool = False
    load_in_4bit: bool = False  # QLoRA: NF4 weights, double quantization (CUDA only)
    gradient_checkpointing: bool = False  # trades compute for memory; slow on CPU
    attn_implementation: str = "sdpa"  # sdpa | eager | flash_attention_2
    optim: str = "adamw_torch"  # paged_adamw_8bit saves memory on CUDA
    seed: int = 42
    lr: float = 2e-4
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    batch_size: int = 8  # per device
    grad_accum: int = 1
    max_steps: int = -1  # -1: train for `epochs`
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    logging_steps: int = 5
    save_steps: int = 50
    eval_steps: int = 50
    save_total_limit: int = 3
    max_train_examples: int = 0  # 0 = all rows of the training file
    max_val_examples: int = 200
    max_tokens_per_pass: int = 0  # forward+backward in row chunks of at most this many tokens (0: whole batch)
    mmap_threshold_kib: int = 0  # glibc: blocks of this size or more get their own mmap, freed at once (0: glibc's)
    max_minutes: float = 0.0  # stop at the step end nearest this many minutes of wall time (0: the plan decides)
    report_to: str = "none"  # none | tensorboard | trackio: TRL's report_to (training_log.txt and the PNGs stay)
    notes: tuple[str, ...] = ()  # why the preset differs from what was asked (e.g. 4-bit on CPU)


@dataclass(frozen=True)
class SFTSettings(CommonSettings):
    """Supervised fine-tuning with LoRA: loss on the worked solution only."""

    epochs: float = 2.0
    max_length: int = 384  # prompt + solution tokens; longer rows are dropped, never cut
    padding_free: bool = False  # one flat batch, no pad tokens (exact, but attention spans the whole flat batch)
    group_by_length: bool = True  # batches of similar lengths: little padding, attention per example


@dataclass(frozen=True)
class GRPOSettings(CommonSettings):
    """GRPO with LoRA: sample a group per prompt, reward, push towards the better ones."""

    sft_model: str = ""  # from_sft: path to an SFT run's final_model
    epochs: float = 1.0
    num_generations: int = 8  # group size: the samples compared with each other
    max_new_tokens: int = 160  # completion budget; truncated answers earn nothing
    temperature: float = 1.0
    top_p: float = 1.0
    beta: float = 0.02  # KL coefficient towards the reference policy
    epsilon: float = 0.2  # PPO-style clip range
    num_iterations: int = 1  # optimisation passes per generation batch
    loss_type: str = "dapo"
    scale_rewards: str = "group"
    mask_truncated_completions: bool = True
    reward_weights: tuple[tuple[str, float], ...] = (("correctness", 1.0), ("format", 0.2), ("length", 0.1))
    sample_table_every: int = 10
    # A greedy probe of held-out reward-stage prompts (probe_data, "": grpo_val.json; never the transfer set)
    # every probe_every steps, at the start and at the end; final_model/ holds the best probe's weights
    # (helpers.callbacks.ProbeCheckpoints). 0: no probe, final_model/ is the last step.
    probe_every: int = 0
    probe_size: int = 100
    probe_max_new_tokens: int = 192
    probe_data: str = ""
    generation: str = "auto"  # auto | vllm_colocate | continuous_batching | generate (see resolve_generation)
    difficulties: tuple[str, ...] = ()  # train only on prompts of these difficulties (easy/medium/hard); (): all
    skip_uninformative: bool = True  # train only on samples whose advantage is not 0 (see grpo.drop_uninformative_rows)
    train_samples_per_group: int = 0  # 0: all; else train on this many of each group, those whose rewards vary most
    # The reward stage's method: grpo (helpers.grpo) or rejection_sft (helpers.rejection_sft: sample, keep the
    # verified-right answers, fine-tune on them, repeat). The rs_* fields are read by rejection_sft only.
    # more_sft is the control: the same rounds on the same fresh prompts with the generator's worked solutions
    # (a perfect teacher) instead of sampled ones; 05_compare sets the three side by side at the same minutes.
    method: str = "grpo"  # grpo | rejection_sft | more_sft
    rs_rounds: int = 2  # sample -> keep -> fine-tune rounds, each on fresh prompts
    rs_prompts_per_round: int = 32  # fresh prompts sampled per round (never repeated until the pool runs out)
    rs_samples_per_prompt: int = 8  # k: completions sampled per prompt
    rs_keep_per_prompt: int = 2  # m: at most this many distinct right completions kept per prompt
    rs_temperature: float = 1.0  # sampling temperature of the rounds (top_p 1.0)
    rs_greedy_wrong_copies: int = 2  # kept answers of a prompt whose greedy answer is wrong enter this many times
    rs_sft_share: float = 0.25  # share of worked-solution rows (rs_sft_data) in each round's training mix
    rs_sft_data: str = ""  # SFT rows to mix in; "": data/training_data/sft_train.json
    rs_batch_size: int = 8  # rows per fine-tuning step
    rs_epochs: float = 1.0  # passes over each round's rows
    # > 0: rows without an answer key (concept questions) count as right when a sample's embedding cosine with the
    # row's reference answer reaches this (06's RAG round: answers written with the notes, kept when they match)
    rs_min_cosine: float = 0.0


_CPU_NOTE_4BIT = (
    "low_memory asks for 4-bit weights (bitsandbytes NF4), which only saves memory on a CUDA GPU; "
    "on this CPU the model stays in float32 and the preset only uses smaller batches and shorter lengths."
)

# Per-preset values that differ from the dataclass defaults. CPU values are
# measured to fit the times in the README on a 2-core machine; CUDA values
# follow the seed's hardware table.
_SFT_DEFAULT_CPU = dict(epochs=1.0, batch_size=8, lr=1e-3, lora_r=32, lora_alpha=64, max_length=384, save_steps=140,
                        eval_steps=140, max_train_examples=2240, max_val_examples=50, lora_dropout=0.0,
                        # same gradient in passes of <= 384 tokens: on the 6 longest batches 2.26 GB peak against
                        # 2.73 GB in passes of 512, at the same speed (228 vs 215 tokens/s; 2026-12-04, Intel Xeon)
                        max_tokens_per_pass=384)
_SFT_PRESETS: dict[str, dict[str, dict]] = {
    "fast_test": {
        "cpu": dict(max_steps=8, batch_size=4, max_length=256, lora_r=8, lora_alpha=16, logging_steps=1,
                    save_steps=4, eval_steps=4, max_train_examples=64, max_val_examples=16),
        "cuda": dict(max_steps=8, batch_size=8, max_length=256, lora_r=8, lora_alpha=16, logging_steps=1,
                     save_steps=4, eval_steps=4, max_train_examples=128, max_val_examples=32),
    },
    "default": {
        # CPU: one pass over 2,240 worked solutions with two validation passes of 50 examples: 21.0 min wall from
        # a new checkout (2026-12-07 21:20, the training files of 8,000 generated problems, a 2-core AMD EPYC with
        # AVX-512 at 210 tokens/s, peak 2.72 GB; transfer 21.6% of 320); 19.7 min the same afternoon (the files of
        # 4,000 problems at 3fe8a53, a 2-core Intel Xeon at 225 tokens/s, peak 2.48 GB; 23.6 min at 183 tokens/s an
        # hour before on the same machine; transfer 22.8% of 320), 16.9 min wall on
        # a fresh clone (2026-12-04 at b883ed4, a 2-core Intel Xeon training at 254 tokens/s, peak 2.64 GB; 16.4
        # min, 3.05 GB in passes of 512 at 92add7c at 01:25 the same day) and
        # 33.7 min on a fresh clone of a slower machine of the same kind (2026-12-03, a 2-core AMD EPYC at 128
        # tokens/s; transfer 19.4%); a LoRA of rank 32 at lr 1e-3 learns far more in those 280 steps than rank
        # 16 at 3e-4 (25% vs 16% held-out, measured); lr 2e-3 was within noise (transfer 20.6%).
        # LoRA dropout 0 since 2026-12-08: 8% faster in float32, and in bf16 the same transfer (row below).
        "cpu": _SFT_DEFAULT_CPU,
        # A CPU with AVX512-BF16 or AMX: bf16 matmuls under autocast (float32 weights) and LoRA dropout 0 train
        # at 1.9x the tokens/s (benchmarks/RESULTS.md), which buys more fresh worked solutions in the same time.
        # 2026-12-08, a 2-core AMD EPYC with AVX512-BF16, the same files: this recipe over 2,240 examples 11.8 min,
        # transfer 20.6% (float32 with dropout 0.05: 21.0 min, 21.6%; -0.9 paired, 13/16, p 0.71); over 4,480
        # 23.5 min, 27.5% (+5.9 over float32's 2,240, 32/13, p 0.007), too close to 25 min; over 3,840
        # (this row) 21.7 min at 353 tokens/s, 23.1% (+1.6, 23/18, p 0.53; 4.4 below 4,480's, p 0.04).
        "cpu_bf16": {**_SFT_DEFAULT_CPU, "max_train_examples": 3840, "save_steps": 160, "eval_steps": 160},
        "cuda": dict(epochs=2.0, batch_size=16, lr=2e-4, max_length=512, save_steps=200, eval_steps=200),
    },
    # CPU: the default's training (4 x 2 accumulated is the same batch of 8, the same rows in the same order, the
    # same loss normaliser; only the dropout masks are drawn per pass), in passes of at most 128 tokens, for a
    # machine with 4 GB: peak 1.74 GB over 20 steps, against 2.04 GB with passes of 256 (2026-12-03).
    "low_memory": {
        "cpu": dict(epochs=1.0, batch_size=4, grad_accum=2, lr=1e-3, lora_r=32, lora_alpha=64, max_length=320,
                    save_steps=140, eval_steps=140, max_train_examples=2240, max_val_examples=50, lora_dropout=0.0,
                    # float32 on every CPU: under bf16 autocast oneDNN keeps a primitive per matmul shape, and SFT
                    # default's peak rose from 2.7 to 4.4-4.5 GB (2026-12-08, benchmarks/RESULTS.md)
                    max_tokens_per_pass=128, bf16_autocast=False),
        "cuda": dict(epochs=2.0, batch_size=4, grad_accum=4, max_length=512, load_in_4bit=True,
                     gradient_checkpointing=True, optim="paged_adamw_8bit", save_steps=200, eval_steps=200),
    },
    # CPU: the default's recipe over twice the worked solutions, each seen once (fresh examples taught more than
    # repeated ones at every size measured): 560 steps of 4,480 examples, 40.7 min wall, peak 2.58 GB, transfer
    # 27.8% of 320 against default's 22.8% (+5.0, 32 newly right / 16 newly wrong, p 0.03; 2026-12-07, a 2-core
    # Intel Xeon at 220 tokens/s, the training files 01 writes since N_GENERATED 8000).
    # With bf16 autocast and dropout 0 (2026-12-08, an AMD EPYC with AVX512-BF16): 23.5 min, 4.51 GB, transfer 27.5%.
    "full_training": {
        "cpu": {**_SFT_DEFAULT_CPU, "max_train_examples": 4480},
        "cuda": dict(epochs=3.0, batch_size=16, max_length=1024, lora_r=64, lora_alpha=128,
                     save_steps=500, eval_steps=500),
    },
}

_GRPO_PRESETS: dict[str, dict[str, dict]] = {
    "fast_test": {
        "cpu": dict(max_steps=2, batch_size=4, num_generations=4, max_new_tokens=48, lr=1e-5, lora_r=8,
                    lora_alpha=16, logging_steps=1, save_steps=2, max_train_examples=8, sample_table_every=1,
                    rs_rounds=1, rs_prompts_per_round=4, rs_samples_per_prompt=4, rs_keep_per_prompt=2,
                    rs_batch_size=4, probe_every=2, probe_size=4, probe_max_new_tokens=48),
        "cuda": dict(max_steps=4, batch_size=8, num_generations=4, max_new_tokens=64, lr=1e-5, lora_r=8,
                     lora_alpha=16, logging_steps=1, save_steps=2, max_train_examples=32, sample_table_every=2,
                     rs_rounds=1, rs_prompts_per_round=8, rs_samples_per_prompt=4, rs_keep_per_prompt=2,
                     rs_batch_size=4),
    },
    # CPU: 8 prompts x 8 samples per step at temperature 0.7 (easy and medium prompts), the 4 samples of each
    # group whose rewards vary most trained on, rewards scaled by the batch's spread, 70 steps: 38.8 min on
    # 2 cores. Measured from the default SFT policy (39.0% held-out): 38.7% (-0.3, no change). The earlier
    # recipes (2 prompts per step, group scaling) lost 2 to 9 points. GRPO has not improved the SFT policy here.
    # 2026-12-07 (AMD EPYC, 20 min, same 208 prompts, transfer n 320): these options -0.3 points; Dr. GRPO's
    # (loss_type dr_grpo, scale_rewards none, beta 0, T 1.0) -3.4 (p 0.05); both +10 in distribution (n 40);
    # these options at lr 1e-3: -9.7 (p < 0.001), KL up to 0.57.
    "default": {
        "cpu": dict(max_steps=70, batch_size=64, num_generations=8, train_samples_per_group=4, max_new_tokens=128,
                    temperature=0.7, lr=2e-4, beta=0.04, num_iterations=1, scale_rewards="batch",
                    difficulties=("easy", "medium"), lora_dropout=0.0, lr_scheduler="constant_with_warmup",
                    logging_steps=1, save_steps=10, max_tokens_per_pass=512,  # same gradient, less memory
                    # method=rejection_sft: 3 rounds x 64 fresh prompts x 8 samples (1,536 completions, a third of
                    # the GRPO recipe's 4,480), m=2 kept per prompt. Not measured yet: chosen, not tuned.
                    rs_rounds=3, rs_prompts_per_round=64, rs_samples_per_prompt=8, rs_keep_per_prompt=2),
        "cuda": dict(max_steps=300, batch_size=64, num_generations=8, max_new_tokens=256, lr=5e-5, beta=0.04,
                     lora_dropout=0.0, lr_scheduler="constant_with_warmup", logging_steps=1, save_steps=50,
                     probe_every=50),
    },
    # CPU: 2 prompts x 4 samples for a machine with 4 GB, passes of <= 128 tokens (peak 1.89 GB over a 12-minute
    # run, against 2.19 GB with passes of 256) and glibc's mmap threshold fixed at 128 KiB (1.49 GB over a 12-minute
    # run of the same samples, 22 steps instead of 25: about 18% slower; helpers.memory.fix_mmap_threshold). 2026-12-03.
    "low_memory": {
        "cpu": dict(max_steps=50, batch_size=8, num_generations=4, max_new_tokens=128, lr=1e-4, beta=0.04,
                    lr_scheduler="constant_with_warmup", logging_steps=1, save_steps=10, max_tokens_per_pass=128,
                    mmap_threshold_kib=128),
        "cuda": dict(max_steps=300, batch_size=8, num_generations=4, max_new_tokens=256, lr=5e-5, beta=0.04,
                     lr_scheduler="constant_with_warmup", load_in_4bit=True, gradient_checkpointing=True,
                     optim="paged_adamw_8bit", logging_steps=1, save_steps=50),
    },
    "full_training": {
        "cpu": dict(max_steps=150, batch_size=32, num_generations=8, max_new_tokens=160, lr=1e-4, beta=0.04,
                    lr_scheduler="constant_with_warmup", logging_steps=1, save_steps=25),
        "cuda": dict(max_steps=1000, batch_size=128, num_generations=16, max_new_tokens=512, lr=5e-5, beta=0.04,
                     lr_scheduler="constant_with_warmup", logging_steps=1, save_steps=100, probe_every=100),
    },
}
_GRPO_PRESETS["from_sft"] = _GRPO_PRESETS["default"]

# Range rules checked by resolve: the parameter names a user will see in errors.
_POSITIVE = {"lr", "batch_size", "grad_accum", "lora_r", "lora_alpha", "logging_steps", "save_steps",
             "eval_steps", "max_length", "epochs", "num_generations", "max_new_tokens", "temperature",
             "max_grad_norm", "save_total_limit", "sample_table_every", "num_iterations", "rs_rounds",
             "rs_prompts_per_round", "rs_samples_per_prompt", "rs_keep_per_prompt", "rs_temperature",
             "rs_greedy_wrong_copies", "rs_batch_size", "rs_epochs", "probe_size", "probe_max_new_tokens"}
_NON_NEGATIVE = {"max_train_examples", "max_val_examples", "beta", "weight_decay", "seed", "epsilon",
                 "train_samples_per_group", "max_tokens_per_pass", "mmap_threshold_kib", "max_minutes",
                 "probe_every"}
_UNIT_INTERVAL = {"lora_dropout", "warmup_ratio", "rs_sft_share", "rs_min_cosine"}
_CHOICES = {
    "device": ("cpu", "cuda"),
    "dtype": ("float32", "bfloat16", "float16"),
    "attn_implementation": ("sdpa", "eager", "flash_attention_2"),
    "lr_scheduler": ("linear", "cosine", "constant", "constant_with_warmup"),
    "loss_type": ("grpo", "dapo", "dr_grpo", "bnpo"),
    "scale_rewards": ("group", "batch", "none"),
    "report_to": ("none", "tensorboard", "trackio"),
    "generation": ("auto", "vllm_colocate", "continuous_batching", "generate"),
    "method": ("grpo", "rejection_sft", "more_sft"),
}


def preset_names(stage: str = "sft") -> tuple[str, ...]:
    """The presets a stage accepts (GRPO adds ``from_sft``)."""
    return GRPO_PRESETS if stage == "grpo" else PRESETS


def _settings_class(stage: str):
    if stage == "sft":
        return SFTSettings
    if stage == "grpo":
        return GRPOSettings
    raise ValueError(f"stage: must be 'sft' or 'grpo', got {stage!r}")


def _preset_values(rows: dict, device: DeviceInfo) -> dict:
    """A preset's values for this device: ``cpu_bf16`` where the CPU has bf16 and the preset has such a row."""
    if device.kind == "cpu" and device.bf16_supported and "cpu_bf16" in rows:
        return rows["cpu_bf16"]
    return rows[device.kind]


def _device_values(device: DeviceInfo) -> dict:
    """Numerics per device: float32 weights on CPU (SFT adds bf16 autocast where the CPU has bf16), bf16 on GPUs.

    On a GPU, attention is FlashAttention-2 when the ``flash_attn`` package is installed and the GPU
    has compute capability 8.0 or more (its kernels need Ampere or newer), else PyTorch's SDPA.
    """
    if device.kind == "cuda":
        dtype = "bfloat16" if device.bf16_supported else "float16"
        attn = "flash_attention_2" if device.flash_attn and tuple(device.capability) >= (8, 0) else "sdpa"
        return dict(device="cuda", dtype=dtype, attn_implementation=attn)
    return dict(device="cpu", dtype="float32", gradient_checkpointing=False, load_in_4bit=False,
                optim="adamw_torch")


def _check_value(name: str, value, expected_type):
    """Type and range check for one override; returns the value in its canonical type."""
    origin = getattr(expected_type, "__origin__", None)
    if expected_type is bool or expected_type == "bool":
        if not isinstance(value, bool):
            raise TypeError(f"{name}: expected true/false, got {type(value).__name__} {value!r}")
    elif expected_type in (int, "int"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name}: expected an integer, got {type(value).__name__} {value!r}")
    elif expected_type in (float, "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name}: expected a number, got {type(value).__name__} {value!r}")
        value = float(value)
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{name}: must be a finite number, got {value!r}")
    elif expected_type in (str, "str"):
        if not isinstance(value, str):
            raise TypeError(f"{name}: expected text, got {type(value).__name__} {value!r}")
    elif origin is tuple or str(expected_type).startswith("tuple"):
        if isinstance(value, dict):
            value = tuple(value.items())
        if isinstance(value, str):
            value = tuple(v.strip() for v in value.split(",") if v.strip())
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{name}: expected a list, got {type(value).__name__} {value!r}")
        value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
    if name in _POSITIVE and value <= 0:
        raise ValueError(f"{name}: must be > 0, got {value!r}")
    if name in _NON_NEGATIVE and value < 0:
        raise ValueError(f"{name}: must be >= 0, got {value!r}")
    if name in _UNIT_INTERVAL and not 0 <= value < 1:
        raise ValueError(f"{name}: must be in [0, 1), got {value!r}")
    if name == "max_steps" and (value == 0 or value < -1):
        raise ValueError(f"{name}: must be -1 (use epochs) or > 0, got {value!r}")
    if name in _CHOICES and value not in _CHOICES[name]:
        raise ValueError(f"{name}: must be one of {', '.join(_CHOICES[name])}; got {value!r}")
    return value


def resolve(preset: str, stage: str = "sft", device: DeviceInfo | None = None, **overrides):
    """The settings for ``preset`` on this device, with ``overrides`` applied and checked.

    Unknown names raise ``ValueError`` listing the valid ones; wrong types raise
    ``TypeError``; out-of-range values raise ``ValueError``. Each message starts
    with the parameter's name. ``device`` defaults to the detected one.

    >>> resolve("fast_test", device=DeviceInfo()).dtype
    'float32'
    """
    cls = _settings_class(stage)
    valid_presets = preset_names(stage)
    if preset not in valid_presets:
        raise ValueError(f"preset: unknown preset {preset!r}; valid presets: {', '.join(valid_presets)}")
    device = device or detect_device()
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        valid = ", ".join(sorted(n for n in fields if n not in ("preset", "notes")))
        raise ValueError(f"unknown parameter(s) {', '.join(unknown)}; valid names: {valid}")

    table = _SFT_PRESETS if stage == "sft" else _GRPO_PRESETS
    values: dict = {"preset": preset}
    values.update(_preset_values(table[preset], device))
    values.update(_device_values(device))
    if device.kind == "cpu" and stage == "sft" and "bf16_autocast" not in values:  # a preset may keep float32
        values["bf16_autocast"] = device.bf16_supported
    notes: list[str] = []
    if preset == "low_memory" and device.kind != "cuda":
        notes.append(_CPU_NOTE_4BIT)
    if device.kind == "cuda" and device.count > 1:
        notes.append(f"{device.count} GPUs seen: the notebook trains on one; use `accelerate launch` for all.")

    for name, value in overrides.items():
        if value is None:
            continue
        values[name] = _check_value(name, value, fields[name].type)
    if values.get("load_in_4bit") and device.kind != "cuda":
        values["load_in_4bit"] = False
        if _CPU_NOTE_4BIT not in notes:
            notes.append("load_in_4bit was asked for, but 4-bit weights need a CUDA GPU; using float32 on CPU.")
    if values.get("bf16_autocast") and device.kind == "cuda":
        values["bf16_autocast"] = False
        notes.append("bf16_autocast is for CPUs; on a GPU dtype sets the numerics.")
    elif values.get("bf16_autocast") and not device.bf16_supported:
        notes.append("bf16_autocast was asked for, but this CPU has no AVX512-BF16 or AMX: its bf16 matmuls are "
                     "emulated and slower than float32.")
    if values.get("dtype") == "bfloat16" and device.kind == "cuda" and not device.bf16_supported:
        values["dtype"] = "float16"
        notes.append("this GPU has no bf16; using float16.")
    if values.get("attn_implementation") == "flash_attention_2" and not (
            device.kind == "cuda" and device.flash_attn and tuple(device.capability) >= (8, 0)):
        values["attn_implementation"] = "sdpa"
        notes.append("flash_attention_2 needs the flash_attn package and a GPU of compute capability 8.0+; "
                     "using sdpa.")
    if stage == "grpo":
        values["generation"], note = resolve_generation(values.get("generation", "auto"), device,
                                                        bool(values.get("load_in_4bit")))
        if note:
            notes.append(note)
    settings = cls(**values, notes=())
    if device.kind == "cuda":  # the estimated peak must fit the card (helpers.gpu_memory)
        from helpers.gpu_memory import fit_to_card

        settings, note = fit_to_card(settings, stage, device, {k for k, v in overrides.items() if v is not None})
        if note:
            notes.append(note)
    if values.get("difficulties"):
        from helpers.problems import DIFFICULTIES

        unknown = set(values["difficulties"]) - set(DIFFICULTIES)
        if unknown:
            raise ValueError(f"difficulties: expected {', '.join(DIFFICULTIES[:-1])} or {DIFFICULTIES[-1]}, "
                             f"got {sorted(unknown)}")
    if values.get("report_to", "none") != "none":
        import importlib.util

        if importlib.util.find_spec(values["report_to"]) is None:
            raise ValueError(f"report_to: {values['report_to']} is not installed; pip install "
                             + ("-e '.[tracking]'" if values["report_to"] == "tensorboard" else "trackio"))
    if stage == "grpo" and preset == "from_sft" and not values.get("sft_model"):
        notes.append("from_sft needs sft_model (an SFT run's final_model); the notebook finds the newest one.")
    return dataclasses.replace(settings, notes=tuple(notes))


def resolve_generation(asked: str, device: DeviceInfo, load_in_4bit: bool = False) -> tuple[str, str | None]:
    """How GRPO samples its completions on this device: (path, note or None). Used by ``resolve``.

    ``auto`` picks the fastest path TRL 1.16 offers that fits: on a GPU, vLLM in
    colocate mode (``use_vllm=True, vllm_mode="colocate"``: vLLM shares the
    training GPU) when ``vllm`` is installed, except with 4-bit weights, where
    vLLM would hold a second copy of the model in the memory that 4-bit was
    chosen to save; else transformers' continuous batching
    (``use_transformers_continuous_batching=True``, paged KV cache, finished
    sequences replaced at once); on a CPU always plain ``generate``, the path
    every CPU figure in the README was measured with.

    >>> resolve_generation("auto", DeviceInfo())
    ('generate', None)
    >>> resolve_generation("auto", DeviceInfo(kind="cuda", memory_gb=80.0, vllm=True))[0]
    'vllm_colocate'
    """
    if device.kind != "cuda":
        note = None if asked in ("auto", "generate") else f"generation={asked} needs a CUDA GPU; using generate."
        return "generate", note
    if asked == "auto":
        return ("vllm_colocate" if device.vllm and not load_in_4bit else "continuous_batching"), None
    if asked == "vllm_colocate" and not device.vllm:
        return "continuous_batching", "generation=vllm_colocate needs the vllm package; using continuous_batching."
    return asked, None


def as_dict(settings) -> dict:
    """Settings as plain JSON-friendly values (for run.json and tables)."""
    out = dataclasses.asdict(settings)
    for key, value in out.items():
        if isinstance(value, tuple):
            out[key] = [list(v) if isinstance(v, tuple) else v for v in value]
    return out


# The seed's command-line names for a few settings: --num-samples 4 --kl-coef 0.1.
_FLAG_ALIASES = {"num_generations": ["--num-samples"], "beta": ["--kl-coef"], "grad_accum": ["--gradient-accumulation"]}
_NOT_FLAGS = {"preset", "notes", "device"}


def add_settings_arguments(parser, stage: str = "sft") -> None:
    """One ``--flag`` per settings field (``batch_size`` -> ``--batch-size``), all optional.

    Values are parsed as text and checked by ``resolve``, so a command line and a
    notebook parameter fail with the same message.
    """
    group = parser.add_argument_group("settings (override the preset)")
    for f in dataclasses.fields(_settings_class(stage)):
        if f.name in _NOT_FLAGS:
            continue
        flags = ["--" + f.name.replace("_", "-")] + _FLAG_ALIASES.get(f.name, [])
        if f.type in (bool, "bool"):
            group.add_argument(*flags, dest=f.name, default=None, type=_parse_bool, metavar="true|false")
        else:
            group.add_argument(*flags, dest=f.name, default=None, metavar=f.name.upper())


def _parse_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _parse_flag(name: str, text: str, expected_type):
    if not isinstance(text, str):
        return text
    try:
        if expected_type in (int, "int"):
            return int(text)
        if expected_type in (float, "float"):
            return float(text)
    except ValueError:
        raise TypeError(f"{name}: expected a number, got {text!r}") from None
    if "tuple[tuple" in str(expected_type):
        pairs = []
        for item in text.split(","):
            key, _, weight = item.partition("=")
            try:
                pairs.append((key.strip(), float(weight)))
            except ValueError:
                raise TypeError(f"{name}: expected name=weight,name=weight; got {text!r}") from None
        return tuple(pairs)
    return text


def overrides_from_args(args, stage: str = "sft") -> dict:
    """The settings a parsed command line sets (flags left out keep the preset's value)."""
    out = {}
    for f in dataclasses.fields(_settings_class(stage)):
        value = getattr(args, f.name, None)
        if f.name in _NOT_FLAGS or value is None:
            continue
        out[f.name] = _parse_flag(f.name, value, f.type)
    return out


def overrides_from_parameters(namespace: dict, stage: str = "sft") -> dict:
    """The settings a notebook's parameters cell sets: each upper-case parameter named after a settings field
    (``LR`` -> ``lr``, ``NUM_GENERATIONS`` -> ``num_generations``) and not left at ``None``.

    Notebook parameters are named as the fields, so a notebook passes ``globals()`` here instead of remapping
    names by hand; parameters that are not settings (``PRESET``, ``TRAIN_DATA``, ...) are ignored.

    >>> overrides_from_parameters({"LR": 2e-4, "BATCH_SIZE": None, "TRAIN_DATA": "x.json"}, "sft")
    {'lr': 0.0002}
    """
    fields = {f.name for f in dataclasses.fields(_settings_class(stage))} - {"preset", "device", "notes"}
    return {name.lower(): value for name, value in namespace.items()  # {} / [] also mean "the preset's"
            if name.isupper() and name.lower() in fields and value is not None and value != {} and value != []}
