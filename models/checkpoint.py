"""Checkpoint folders written atomically, trainer state for resuming, and fp16 export.

A checkpoint folder is a Hugging Face model folder (``config.json``, ``generation_config.json``,
``model.safetensors``) with the source tokenizer beside it (``tokenizer.json``...), so
``AutoTokenizer.from_pretrained(folder)`` gives the tokenizer for the model's inputs; when the
target vocabulary differs it is in ``target_tokenizer/``.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

TARGET_TOKENIZER_DIR = "target_tokenizer"
STATE_FILE = "trainer_state.pt"
TRAINING_COUNTS = "training_counts.json"  # token -> occurrences in the training split, per side


@contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield a temporary folder that replaces ``path`` only once the block completes.

    A crash inside the block leaves ``path`` as it was; a crash between the two renames leaves
    ``path.old``, which ``existing_dir`` still finds.
    """
    path = Path(path)
    tmp, old = path.with_name(path.name + ".tmp"), path.with_name(path.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    yield tmp
    if path.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def existing_dir(path: Path) -> Path | None:
    """``path`` if complete, else the ``.old`` copy an interrupted ``atomic_dir`` left, else None."""
    path = Path(path)
    for candidate in (path, path.with_name(path.name + ".old")):
        if (candidate / "config.json").exists():
            return candidate
    return None


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


def write_json(path: Path, data: Any) -> None:
    """Write JSON via a temporary file and a rename, so readers never see half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)
