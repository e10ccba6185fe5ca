"""Attention maps from one teacher-forced pass over (source, generated target)."""

from __future__ import annotations

import numpy as np
import torch

from explain.types import AttentionMaps, Translation
from models.adapter import LanternModel


def _stack(layers: tuple[torch.Tensor, ...] | None) -> np.ndarray | None:
    """HF per-layer ``(1, heads, q, k)`` tensors -> ``[layers, heads, q, k]`` float32."""
    if not layers:
        return None
    return torch.cat([a.float() for a in layers], 0).cpu().numpy()


@torch.no_grad()
def extract_attention(lm: LanternModel, translation: Translation) -> AttentionMaps:
    """Cross-attention (and self-attention where the model has it) for ``translation``.

    The pass re-reads the generated tokens, so row t is the attention used to predict token t.
    Decoder-only models have no cross-attention: ``decoder_self`` then covers prompt + target prefix
    ([layers, heads, S + T - 1, S + T - 1]), and position S - 1 + t predicts target token t.
    """
    out = lm.score(list(translation.src_ids), list(translation.tgt_ids), output_attentions=True)
    if not lm.is_seq2seq():  # causal self-attention over prompt + target prefix
        return AttentionMaps(
            translation.src_tokens, translation.tgt_tokens, cross=None, decoder_self=_stack(out.attentions)
        )
    return AttentionMaps(
        src_tokens=translation.src_tokens,
        tgt_tokens=translation.tgt_tokens,
        cross=_stack(out.cross_attentions),
        encoder_self=_stack(out.encoder_attentions),
        decoder_self=_stack(out.decoder_attentions),
    )
