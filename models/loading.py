"""Loading any model into a ``LanternModel``: the one entry point.

    load_model("lstm-zh-en")                    # a model Lantern ships (or trained here)
    load_model("smollm2-135m-instruct")         # a packaged GGUF model, converted once
    load_model("checkpoints/my-model")          # a model folder under a model root
    load_model("Helsinki-NLP/opus-mt-zh-en")    # a hub id, from the local Hugging Face cache

Weights come only from safetensors; remote code is never trusted; attention is eager (SDPA returns no
attention weights). Models load in eval mode with frozen weights: they are shared and never mutated.
"""

from __future__ import annotations

import threading
import weakref
from pathlib import Path

import torch
from safetensors import SafetensorError
from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer, PreTrainedModel
from transformers import logging as hf_logging
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

import models.lstm_attention  # noqa: F401  (registers the LSTM with the Auto classes)
from models.adapter import LanternModel
from models.decoding import CheckpointError
from models.folder import TARGET_TOKENIZER_DIR
from models.pretrained import check_model_size, load_pretrained, packaged_folder
from models.prompting import FEW_SHOT
from models.registry import ModelSpec, resolve
from models.sources import PACKAGED, packaged_variant

hf_logging.disable_progress_bar()


def load_seq2seq_folder(
    folder: str | Path, device: str = "cpu", dtype: torch.dtype = torch.float32
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, PreTrainedTokenizerBase]:
    """(model in eval mode, source tokenizer, target tokenizer) from a Lantern checkpoint folder."""
    folder = Path(folder)
    if not (folder / "config.json").exists():
        raise CheckpointError(f"no model at {folder}: config.json is missing")
    if not (folder / "model.safetensors").exists():
        raise CheckpointError(f"no weights at {folder}: model.safetensors is missing")
    try:
        config = AutoConfig.from_pretrained(folder, trust_remote_code=False)
    except (OSError, ValueError, KeyError) as err:
        raise CheckpointError(f"could not load the model at {folder}: {err}") from err
    check_model_size(config, str(folder))
    try:
        model = AutoModelForSeq2SeqLM.from_pretrained(
            folder, dtype=dtype, use_safetensors=True, trust_remote_code=False, attn_implementation="eager"
        )
        src_tok = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
        tgt_dir = folder / TARGET_TOKENIZER_DIR
        tgt_tok = AutoTokenizer.from_pretrained(tgt_dir) if tgt_dir.exists() else src_tok
    except (OSError, ValueError, KeyError, RuntimeError, MemoryError, SafetensorError) as err:
        raise CheckpointError(f"could not load the model at {folder}: {err}") from err
    model.to(device).eval()
    for p in model.parameters():  # shared read-only: explanations take input gradients only
        p.requires_grad_(False)
    return model, src_tok, tgt_tok


def load_model(model: str | ModelSpec, device: str = "cpu") -> LanternModel:
    """Load a model by name, folder, hub id or ``ModelSpec`` (see the module docstring).

    Raises ``PretrainedModelError`` (unknown name, missing from the cache, not safetensors...) or
    ``CheckpointError`` (a broken Lantern checkpoint), each saying what to do.
    """
    spec = model if isinstance(model, ModelSpec) else resolve(model)
    if spec.kind == "checkpoint":
        net, src_tok, tgt_tok = load_seq2seq_folder(spec.path, device=device)
        limit = getattr(net.config, "max_source_tokens", None) or 128
        return LanternModel(spec.name, net, src_tok, tgt_tok, max_source_tokens=limit)
    if spec.kind == "packaged":
        packaged, pair = packaged_variant(spec.name) or (PACKAGED[spec.name], "")
        net, tok, lock = _shared(str(packaged_folder(packaged)), device)
        template = FEW_SHOT[pair] if pair else None
        chat = packaged.chat and template is None and bool(getattr(tok, "chat_template", None))
        limit = min(512, getattr(tok, "model_max_length", 512) or 512)
        return LanternModel(
            spec.name,
            net,
            tok,
            tok,
            max_source_tokens=limit,
            chat=chat,
            lock=lock,
            template=template,
            stop_ids=_line_ends(tok) if template is not None else (),
        )
    net, tok = load_pretrained(spec.source, device=device)
    limit = min(512, getattr(tok, "model_max_length", 512) or 512)
    chat = not net.config.is_encoder_decoder and bool(getattr(tok, "chat_template", None))
    return LanternModel(spec.name, net, tok, tok, max_source_tokens=limit, chat=chat)


# One packaged model serves several names (its few-shot prompts): they share its weights and its lock (a 1 GB
# model is loaded once while any of them is in use).
_SHARED: dict[tuple[str, str], tuple[weakref.ref, PreTrainedTokenizerBase, threading.RLock]] = {}
_SHARED_LOCK = threading.Lock()


def _shared(folder: str, device: str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, threading.RLock]:
    with _SHARED_LOCK:
        held = _SHARED.get((folder, device))
        net = held[0]() if held is not None else None
        if net is not None:
            return net, held[1], held[2]
        net, tok = load_pretrained(folder, device=device)
        lock = threading.RLock()
        _SHARED[(folder, device)] = (weakref.ref(net), tok, lock)
        return net, tok, lock


def _line_ends(tok: PreTrainedTokenizerBase) -> tuple[int, ...]:
    """Ids of the tokens made of line breaks only (a prompted model's output ends at the end of its line)."""
    return tuple(sorted(i for t, i in tok.get_vocab().items() if t and set(t) == {"\n"}))
