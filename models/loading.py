"""Loading a model folder (Lantern's own or any local Hugging Face seq2seq folder)."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, PreTrainedModel
from transformers import logging as hf_logging
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

import models.lstm_attention  # noqa: F401  (registers the LSTM with the Auto classes)
from models.checkpoint import TARGET_TOKENIZER_DIR

hf_logging.disable_progress_bar()


class CheckpointError(RuntimeError):
    """A model folder is missing, incomplete or unreadable."""


def load_seq2seq_folder(
    folder: str | Path, device: str = "cpu", dtype: torch.dtype = torch.float32
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, PreTrainedTokenizerBase]:
    """(model in eval mode, source tokenizer, target tokenizer) from a checkpoint folder.

    Weights come only from safetensors; remote code is never trusted.
    """
    folder = Path(folder)
    if not (folder / "config.json").exists():
        raise CheckpointError(f"no model at {folder}: config.json is missing")
    if not (folder / "model.safetensors").exists():
        raise CheckpointError(f"no weights at {folder}: model.safetensors is missing")
    try:
        model = AutoModelForSeq2SeqLM.from_pretrained(  # eager: SDPA returns no attention weights
            folder, dtype=dtype, use_safetensors=True, trust_remote_code=False, attn_implementation="eager"
        )
        src_tok = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
        tgt_dir = folder / TARGET_TOKENIZER_DIR
        tgt_tok = AutoTokenizer.from_pretrained(tgt_dir) if tgt_dir.exists() else src_tok
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as err:
        raise CheckpointError(f"could not load the model at {folder}: {err}") from err
    model.to(device).eval()
    for p in model.parameters():  # shared read-only: explanations take input gradients only
        p.requires_grad_(False)
    return model, src_tok, tgt_tok
