"""Attention maps from one teacher-forced pass over (source, generated target).

Views of the maps (one layer or head, rollout, words) are numpy functions in ``explain.attention_views``.
"""

from __future__ import annotations

import numpy as np
import torch

from explain.generation import translate
from explain.types import AttentionMaps, Translation
from models.adapter import Decoding, LanternModel
from models.threads import under_policy


def _stack(layers: tuple[torch.Tensor, ...] | None) -> np.ndarray | None:
    """HF per-layer ``(1, heads, q, k)`` tensors -> ``[layers, heads, q, k]`` float32."""
    if not layers:
        return None
    return torch.cat([a.float() for a in layers], 0).cpu().numpy()


@torch.no_grad()
def attention_stacks(
    lm: LanternModel, src_ids: list[int], tgt_ids: list[int]
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """(cross, encoder self, decoder self) attention of one teacher-forced pass, each [layers, heads, q, k].

    Decoder-only models have no cross-attention: decoder self-attention then covers prompt + target prefix.
    """
    out = lm.score(list(src_ids), list(tgt_ids), output_attentions=True)
    if not lm.is_seq2seq():
        return None, None, _stack(out.attentions)
    return _stack(out.cross_attentions), _stack(out.encoder_attentions), _stack(out.decoder_attentions)


@under_policy
def extract_attention(
    lm: LanternModel, translation: Translation | str, decoding: Decoding | None = None
) -> AttentionMaps:
    """Cross-attention (and self-attention where the model has it) for ``translation``.

    ``translation``: an output from ``explain.generation``, or a text, translated first with ``decoding``.
    The pass re-reads the generated tokens, so row t is the attention used to predict token t.
    Decoder-only models have no cross-attention: ``decoder_self`` then covers prompt + target prefix
    ([layers, heads, S + T - 1, S + T - 1]), and position S - 1 + t predicts target token t.
    """
    if isinstance(translation, str):
        translation = translate(lm, translation, decoding)
    cross, encoder_self, decoder_self = attention_stacks(lm, translation.src_ids, translation.tgt_ids)
    prefix = tuple(lm.target_tokens(lm.decoder_inputs(list(translation.tgt_ids))))
    return AttentionMaps(
        src_tokens=translation.src_tokens,
        tgt_tokens=translation.tgt_tokens,
        cross=cross,
        encoder_self=encoder_self,
        decoder_self=decoder_self,
        prefix_tokens=prefix,
        src_span=translation.src_span,
    )
