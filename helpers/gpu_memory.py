"""What a model needs on a GPU, estimated from its shape before anything loads.

Why this module exists: the seed's users train deepseek-math-7b on one GPU of
8 to 24 GB, and a preset that does not fit fails only after minutes of loading.
The shape of a model (its ``config.json``) is enough to say roughly what a
preset will need: weights, the LoRA adapter with its gradients and optimizer
state, the activations kept for the backward pass, the LM head's tiles and,
for GRPO, the KV cache while sampling. ``helpers.config.resolve`` adds a note
when the estimate exceeds the card, and ``benchmarks/gpu_bench.py`` prints the
estimate next to the measured peak, so the estimate can be checked on a GPU.

It is an estimate, counted tensor by tensor below, not a measurement.

Used by helpers.config (``resolve``) and benchmarks/gpu_bench.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

GIB = 2**30


@dataclass(frozen=True)
class ModelShape:
    """The numbers of a decoder-only transformer that decide its memory and FLOPs."""

    name: str
    model_type: str  # llama | qwen2 (what transformers' AutoConfig.for_model takes)
    hidden: int
    layers: int
    intermediate: int
    vocab: int
    heads: int
    kv_heads: int
    tied: bool = False  # LM head shares the input embedding
    extra: tuple[tuple[str, object], ...] = ()  # other config values (rope_theta, biases, ...)

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    def module_shapes(self) -> dict[str, tuple[int, int]]:
        """(in, out) features of each linear module of one layer, by its name in transformers' Llama/Qwen2."""
        kv = self.kv_heads * self.head_dim
        h, i = self.hidden, self.intermediate
        return {"q_proj": (h, h), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (h, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}

    def linear_params(self) -> int:
        """Parameters in the layers' linear modules (what 4-bit quantizes and LoRA adapts)."""
        return self.layers * sum(a * b for a, b in self.module_shapes().values())

    def embedding_params(self) -> int:
        """Input embedding plus LM head (once when tied): kept in 16-bit even with 4-bit weights."""
        return self.vocab * self.hidden * (1 if self.tied else 2)

    def params(self) -> int:
        return self.linear_params() + self.embedding_params() + (2 * self.layers + 1) * self.hidden

    def lora_params(self, rank: int, target_modules) -> int:
        """Parameters of a LoRA adapter of ``rank`` on ``target_modules``: rank x (in + out) per module."""
        return self.layers * sum(rank * (a + b) for n, (a, b) in self.module_shapes().items() if n in target_modules)

    def config_dict(self) -> dict:
        """Keyword arguments for ``transformers.AutoConfig.for_model(self.model_type, **...)``."""
        return dict(hidden_size=self.hidden, num_hidden_layers=self.layers, intermediate_size=self.intermediate,
                    vocab_size=self.vocab, num_attention_heads=self.heads, num_key_value_heads=self.kv_heads,
                    tie_word_embeddings=self.tied, **dict(self.extra))

    @classmethod
    def from_config(cls, config: dict, name: str = "") -> "ModelShape":
        """The shape in a model's ``config.json`` (Llama, Qwen2, Mistral and alike)."""
        heads = config["num_attention_heads"]
        return cls(name=name or config.get("_name_or_path", "") or config.get("model_type", "model"),
                   model_type=config.get("model_type", "llama"), hidden=config["hidden_size"],
                   layers=config["num_hidden_layers"], intermediate=config["intermediate_size"],
                   vocab=config["vocab_size"], heads=heads, kv_heads=config.get("num_key_value_heads") or heads,
                   tied=bool(config.get("tie_word_embeddings", False)))


# deepseek-math-7b keeps the shape of DeepSeek-LLM 7B, from which it descends (via DeepSeek-Coder-v1.5 7B):
# a Llama with 30 layers of width 4096, MLP 11008, 32 heads without grouped KV, vocabulary 102400, untied head.
DEEPSEEK_MATH_7B = ModelShape("deepseek-math-7b", "llama", hidden=4096, layers=30, intermediate=11008,
                              vocab=102400, heads=32, kv_heads=32, tied=False,
                              extra=(("max_position_embeddings", 4096), ("rope_theta", 10000.0),
                                     ("rms_norm_eps", 1e-6)))
# Qwen2.5-1.5B's config.json: 28 layers of width 1536, MLP 8960, 12 query heads sharing 2 KV heads,
# vocabulary 151936, LM head tied to the embedding, biases on q/k/v.
QWEN25_1_5B = ModelShape("Qwen2.5-1.5B", "qwen2", hidden=1536, layers=28, intermediate=8960, vocab=151936,
                         heads=12, kv_heads=2, tied=True,
                         extra=(("max_position_embeddings", 32768), ("rope_theta", 1000000.0),
                                ("rms_norm_eps", 1e-6)))
SMOLLM2_135M = ModelShape("SmolLM2-135M", "llama", hidden=576, layers=30, intermediate=1536, vocab=49152,
                          heads=9, kv_heads=3, tied=True)
KNOWN_SHAPES = {
    "deepseek-ai/deepseek-math-7b-instruct": DEEPSEEK_MATH_7B, "deepseek-ai/deepseek-math-7b-base": DEEPSEEK_MATH_7B,
    "deepseek-ai/deepseek-math-7b-rl": DEEPSEEK_MATH_7B, "Qwen/Qwen2.5-1.5B": QWEN25_1_5B,
    "Qwen/Qwen2.5-1.5B-Instruct": QWEN25_1_5B, "HuggingFaceTB/SmolLM2-135M-Instruct": SMOLLM2_135M,
}


def model_shape(model_name: str) -> ModelShape | None:
    """The shape of ``model_name`` without loading it: a local folder's config.json, the embedded model,
    a known hub id, or a hub id's config.json already in the local Hugging Face cache; None otherwise."""
    if model_name in KNOWN_SHAPES:
        return KNOWN_SHAPES[model_name]
    if model_name == "embedded":
        from helpers.models import embedded_model_dir

        folder = embedded_model_dir()
        return _shape_from_file(folder / "config.json", SMOLLM2_135M.name) or SMOLLM2_135M
    path = Path(str(model_name)).expanduser()
    if path.is_dir():
        return _shape_from_file(path / "config.json", path.name)
    if str(model_name).count("/") == 1:
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(str(model_name), "config.json")
        except Exception:  # noqa: BLE001 - no cache, no hub: no estimate
            return None
        if isinstance(cached, str):
            return _shape_from_file(Path(cached), str(model_name))
    return None


def _shape_from_file(path: Path, name: str) -> ModelShape | None:
    try:
        return ModelShape.from_config(json.loads(path.read_text()), name)
    except (OSError, ValueError, KeyError, TypeError):
        return None


#: Prompt tokens assumed for a GRPO question in the chat template (the workbook's questions take 40-150).
GRPO_PROMPT_TOKENS = 160
#: TRL's fused LM head scores tokens in tiles of at most this many tokens x vocabulary entries (float32).
HEAD_TILE = (4096, 32768)
#: bitsandbytes NF4: 4 bits per weight plus one absmax per block of 64, itself 8-bit with double
#: quantization (one float32 per 256 absmax values): 4 + 8/64 + 32/(64*256) bits; without it 4 + 32/64.
NF4_BITS = {True: 4 + 8 / 64 + 32 / (64 * 256), False: 4 + 32 / 64}
#: Bytes of optimizer state per trainable parameter: two float32 moments, or two 8-bit moments.
OPTIMIZER_BYTES = {"adamw_torch": 8, "adamw_torch_fused": 8, "paged_adamw_8bit": 2, "adamw_8bit": 2}
#: CUDA context and allocator slack, which torch.cuda.max_memory_allocated does not see.
OVERHEAD_GB, OVERHEAD_FRACTION = 0.5, 0.10


def activation_bytes_per_token(shape: ModelShape, dtype_bytes: int, lora_dropout: bool) -> int:
    """Bytes one layer keeps per token for the backward pass of a LoRA model (no checkpointing).

    Counted tensors, 16-bit unless said: the attention norm's output, q and k after RoPE, v, the
    attention output (o_proj's input), the MLP norm's output (each about ``hidden`` wide; q, k, v
    narrower with grouped KV), gate, up, SiLU(gate) and their product (down_proj's input,
    ``intermediate`` wide), the two norms' float32 inputs, and with LoRA dropout one dropped-out copy of
    each adapted module's input.
    """
    h, i, kv = shape.hidden, shape.intermediate, shape.kv_heads * shape.head_dim
    elements = 4 * h + 2 * kv + 4 * i
    if lora_dropout:
        elements += 6 * h + i
    return elements * dtype_bytes + 2 * h * 4


def estimate_gpu_memory_gb(settings, shape: ModelShape, stage: str = "sft", card_gb: float = 0.0) -> dict:
    """Peak GPU memory of one training process for ``settings`` on a model of ``shape``, in GiB, by part.

    Weights (4-bit NF4 for the linear layers with ``load_in_4bit``, embedding and head in 16-bit),
    the LoRA adapter in float32 with its gradient and optimizer state, activations for the tokens of one
    micro-batch (all layers, or with gradient checkpointing each layer's input plus one layer being
    recomputed), one tile of TRL's fused LM head, and for GRPO the larger of sampling (KV cache of every
    sample; vLLM colocate reserves its share of the card instead) and training. ``card_gb`` is needed for
    vLLM's share. Returns the parts and ``total`` (parts plus CUDA context and allocator slack).
    """
    dtype_bytes = 4 if settings.dtype == "float32" else 2
    if settings.load_in_4bit:
        weights = shape.linear_params() * NF4_BITS[True] / 8 + (shape.params() - shape.linear_params()) * dtype_bytes
    else:
        weights = shape.params() * dtype_bytes
    lora = shape.lora_params(settings.lora_r, settings.target_modules)
    adapter = lora * (4 + 4 + OPTIMIZER_BYTES.get(settings.optim, 8))
    if stage == "sft":
        sequence = settings.max_length
    else:
        sequence = GRPO_PROMPT_TOKENS + settings.max_new_tokens
    tokens = settings.batch_size * sequence
    per_layer = activation_bytes_per_token(shape, dtype_bytes, settings.lora_dropout > 0)
    if settings.gradient_checkpointing:
        activations = tokens * (shape.layers * shape.hidden * dtype_bytes + per_layer)
    else:
        activations = tokens * shape.layers * per_layer
    head = min(tokens, HEAD_TILE[0]) * min(shape.vocab, HEAD_TILE[1]) * 4 * 3  # logits, probabilities, gradient
    parts = {"weights": weights, "adapter_and_optimizer": adapter, "activations": activations, "lm_head_tile": head}
    if stage == "grpo":
        generation = getattr(settings, "generation", "generate")
        if generation == "vllm_colocate":
            sampling = 0.3 * card_gb * GIB  # TRL's vllm_gpu_memory_utilization default, held for the whole run
            parts["vllm_share"] = sampling
        else:  # continuous batching sizes its paged cache to what is free, so count plain generate's cache
            sampling = tokens * settings.grad_accum * shape.layers * 2 * shape.kv_heads * shape.head_dim * dtype_bytes
            parts["kv_cache"] = sampling
            # sampling and training do not overlap: only the larger of the two counts at the peak
            if sampling > activations + head:
                parts["activations"], parts["lm_head_tile"] = 0, 0
            else:
                parts["kv_cache"] = 0
    gb = {k: round(v / GIB, 2) for k, v in parts.items()}
    gb["total"] = round(sum(parts.values()) / GIB * (1 + OVERHEAD_FRACTION) + OVERHEAD_GB, 1)
    return gb


def fit_to_card(settings, stage: str, device, fixed=()) -> tuple[object, str | None]:
    """Settings whose estimated peak fits the GPU, and a note saying what changed; used by ``config.resolve``.

    When the estimate for ``settings.model_name`` exceeds the card, gradient checkpointing is turned on
    first (about a third more compute), then the per-device batch is halved and the accumulation doubled
    (the same effective batch; for GRPO only while a half still holds whole groups) until it fits.
    Names in ``fixed`` (set by the user) are left alone. Unknown shapes and CPUs are left as they are.
    """
    import dataclasses

    shape = model_shape(settings.model_name)
    if shape is None or device.kind != "cuda" or device.memory_gb <= 0:
        return settings, None

    def total(s):
        return estimate_gpu_memory_gb(s, shape, stage, device.memory_gb)["total"]

    before = total(settings)
    if before <= device.memory_gb:
        return settings, None
    changes = []
    if not settings.gradient_checkpointing and "gradient_checkpointing" not in fixed:
        settings = dataclasses.replace(settings, gradient_checkpointing=True)
        changes.append("gradient checkpointing on")
    group, batch, accum = getattr(settings, "num_generations", 1), settings.batch_size, settings.grad_accum
    while (total(settings) > device.memory_gb and not {"batch_size", "grad_accum"} & set(fixed)
           and settings.batch_size % 2 == 0 and (settings.batch_size // 2) % group == 0):
        settings = dataclasses.replace(settings, batch_size=settings.batch_size // 2,
                                       grad_accum=settings.grad_accum * 2)
    if settings.batch_size != batch:
        changes.append(f"batch_size {batch} -> {settings.batch_size} and grad_accum {accum} -> "
                       f"{settings.grad_accum} (the same effective batch)")
    after = total(settings)
    head = (f"{shape.name}: the preset's settings need about {before} GB of GPU memory (estimated from the "
            f"model's shape by helpers.gpu_memory) and this GPU has {device.memory_gb} GB")
    if after <= device.memory_gb:
        return settings, f"{head}; with {', '.join(changes)}: about {after} GB."
    advice = ("use the low_memory preset (4-bit weights, paged 8-bit AdamW)" if not settings.load_in_4bit else
              "use fewer samples or new tokens, or a GPU with more memory")
    done = f" after {', '.join(changes)}" if changes else ""
    return settings, f"{head}; still about {after} GB{done}: {advice}."
