"""Attention editing: scale (or zero) the attention one output step pays to one source token, and see
what the model writes instead.

The edit is applied to a private copy of the model (``models.editing``: each architecture provides the
hook), never the shared one. The weight is multiplied by ``scale`` and the row is renormalised, so
attention taken from one token goes to the others (scale 0 removes the token from that step's view).
Tokens before the edited step are kept as the model first wrote them; decoding continues from there
under the edit, and every probability shown is the edited model's.
"""

from __future__ import annotations

import dataclasses
import threading

from explain.generation import translate
from explain.types import Translation
from models.adapter import Decoding, LanternModel
from models.editing import edited_copy as edited_model
from models.lstm_attention import AttentionEdit
from models.threads import under_policy


def edited_copy(lm: LanternModel, step: int, src_index: int, scale: float) -> LanternModel:
    """A private copy of ``lm`` whose attention at output ``step`` to source token ``src_index`` is scaled."""
    with lm.lock:
        model = edited_model(lm.model, AttentionEdit(step, src_index, scale))
    return dataclasses.replace(lm, model=model, lock=threading.RLock())


@under_policy
def edit_attention(
    lm: LanternModel, text: str, original: Translation, step: int, src_index: int, scale: float,
    decoding: Decoding | None = None,
) -> Translation:  # fmt: skip
    """Re-decode ``text`` from output ``step`` with the attention edit in place."""
    if not 0 <= step < len(original.tgt_ids):
        raise ValueError(f"step {step} is outside the output (0..{len(original.tgt_ids) - 1})")
    if not 0 <= src_index < len(original.src_ids):
        raise ValueError(f"source position {src_index} is outside the input (0..{len(original.src_ids) - 1})")
    edited = edited_copy(lm, step, src_index, scale)
    decoding = decoding or Decoding(max_new_tokens=max(64, len(original.tgt_ids) + 8))
    out = translate(edited, text, decoding, prefix=original.tgt_ids[:step])
    return dataclasses.replace(out, decoding=f"attention to source token {src_index} × {scale:g} at step {step}")
