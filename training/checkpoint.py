"""Saving model folders (see ``models.folder``) and the trainer state needed to resume a run."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from models.folder import TARGET_TOKENIZER_DIR

STATE_FILE = "trainer_state.pt"


def save_model_dir(
    folder: Path,
    model: PreTrainedModel,
    src_tok: PreTrainedTokenizerBase,
    tgt_tok: PreTrainedTokenizerBase,
    dtype: torch.dtype | None = None,
) -> None:
    """Weights (optionally cast, e.g. fp16 to halve the file), config and tokenizers."""
    to_save = model
    if dtype is not None:
        to_save = copy.deepcopy(model).to(dtype)
    to_save.save_pretrained(folder)
    src_tok.save_pretrained(folder)
    if tgt_tok is not src_tok:
        tgt_tok.save_pretrained(Path(folder) / TARGET_TOKENIZER_DIR)


def save_trainer_state(folder: Path, state: dict[str, Any]) -> None:
    torch.save(state, Path(folder) / STATE_FILE)


def load_trainer_state(folder: Path) -> dict[str, Any]:
    return torch.load(Path(folder) / STATE_FILE, weights_only=True)
