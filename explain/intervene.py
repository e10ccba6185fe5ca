"""Attention editing: scale (or zero) the attention one output step pays to one source token, and see
what the model writes instead.

The edit is applied to a copy of the model, never the shared one: for Lantern's LSTM a forward hook on
the copy's attention module, for Lantern's Transformer (Marian) an attention function registered with
transformers that the copy's config selects. The weight is multiplied by ``scale`` and the row is
renormalised, so attention taken from one token goes to the others (scale 0 removes the token from
that step's view). Tokens before the edited step are kept as the model first wrote them; decoding
continues from there under the edit, and every probability shown is the edited model's.
"""

from __future__ import annotations

import copy
import dataclasses
import threading

import torch
from transformers import AttentionInterface, AttentionMaskInterface, MarianMTModel
from transformers.masking_utils import eager_mask

from explain.translate import translate
from explain.types import Translation
from models.adapter import Decoding, LanternModel
from models.lstm_attention import LstmAttnForConditionalGeneration

EDIT = "lantern_edited_eager"


def _rescale(weights: torch.Tensor, step: int, col: int, scale: float) -> torch.Tensor:
    """weights [..., q, k]: row ``step`` with column ``col`` scaled by ``scale``, renormalised."""
    if weights.shape[-2] <= step:
        return weights
    w = weights.clone()
    w[..., step, col] = w[..., step, col] * scale
    total = w[..., step, :].sum(-1, keepdim=True).clamp(min=1e-12)
    w[..., step, :] = w[..., step, :] / total
    return w


def _edited_eager(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """Eager attention; cross-attention modules carrying ``_lantern_edit`` get the edit applied."""
    scaling = query.size(-1) ** -0.5 if scaling is None else scaling
    weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        weights = weights + attention_mask
    weights = weights.softmax(-1)
    edit = getattr(module, "_lantern_edit", None)
    if edit is not None:
        weights = _rescale(weights, *edit)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


AttentionInterface.register(EDIT, _edited_eager)
AttentionMaskInterface.register(EDIT, eager_mask)  # additive float masks, as for "eager"


def edited_copy(lm: LanternModel, step: int, src_index: int, scale: float) -> LanternModel:
    """A private copy of ``lm`` whose attention at output ``step`` to source token ``src_index`` is scaled."""
    if not 0 <= src_index < 4096 or scale < 0:
        raise ValueError("the source position must be a token of the input and the scale non-negative")
    with lm.lock:
        model = copy.deepcopy(lm.model)
    if isinstance(model, LstmAttnForConditionalGeneration):

        def hook(module, inputs, output):
            _, keys, _ = inputs
            alphas = _rescale(output[1], step, src_index, scale)
            return alphas @ keys, alphas

        model.decoder.attention.register_forward_hook(hook)
    elif isinstance(model, MarianMTModel):
        for layer in model.get_decoder().layers:
            layer.encoder_attn._lantern_edit = (step, src_index, scale)
        model.config._attn_implementation = EDIT
        model.generation_config.use_cache = False  # rows must be absolute output positions
    else:
        raise ValueError("attention editing works on Lantern's own LSTM and Transformer models")
    return dataclasses.replace(lm, name=lm.name, model=model, lock=threading.RLock())


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
