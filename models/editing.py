"""Attention editing, per architecture: a private copy of a model whose cross-attention at one output
position to one source token is scaled (``AttentionEdit``; the row is renormalised).

- Lantern's LSTM owns the hook: its attention module applies the edit at absolute output positions,
  with or without the decoder cache (``LstmAttnForConditionalGeneration.with_attention_edit``).
- Marian (Lantern's Transformer) is transformers' architecture, whose extension point for attention is the
  attention-function interface: the copy selects an eager attention function that applies the edit on the
  cross-attention modules it is given (``set_attn_implementation``, the public switch). The function is
  registered the first time an edit is asked for, never on import, and no other model selects it. The
  copy decodes without a key/value cache so that query rows are absolute output positions.

The shared model is never touched: every edit works on a deep copy.
"""

from __future__ import annotations

import copy

import torch
from transformers import AttentionInterface, AttentionMaskInterface, MarianMTModel, PreTrainedModel
from transformers.masking_utils import eager_mask

from models.lstm_attention import AttentionEdit, LstmAttnForConditionalGeneration

EDITED_EAGER = "lantern_edited_eager"
_registered = False


def _edited_eager(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """Eager attention; a module carrying ``attention_edit`` gets the edit applied to its weights."""
    scaling = query.size(-1) ** -0.5 if scaling is None else scaling
    weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        weights = weights + attention_mask
    weights = weights.softmax(-1)
    edit: AttentionEdit | None = getattr(module, "attention_edit", None)
    if edit is not None:
        weights = edit.apply(weights)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


def _register() -> None:
    global _registered
    if not _registered:
        AttentionInterface.register(EDITED_EAGER, _edited_eager)
        AttentionMaskInterface.register(EDITED_EAGER, eager_mask)  # additive float masks, as for "eager"
        _registered = True


def supports_attention_edit(model: PreTrainedModel) -> bool:
    return isinstance(model, LstmAttnForConditionalGeneration | MarianMTModel)


def edited_copy(model: PreTrainedModel, edit: AttentionEdit) -> PreTrainedModel:
    """A deep copy of ``model`` with ``edit`` applied to its cross-attention (``ValueError`` for other models)."""
    if not supports_attention_edit(model):
        raise ValueError("attention editing works on Lantern's own LSTM and Transformer models")
    edited = copy.deepcopy(model)
    if isinstance(edited, LstmAttnForConditionalGeneration):
        return edited.with_attention_edit(edit)
    _register()
    for layer in edited.get_decoder().layers:
        layer.encoder_attn.attention_edit = edit
    edited.set_attn_implementation(EDITED_EAGER)
    edited.generation_config.use_cache = False  # query rows must be absolute output positions
    return edited
