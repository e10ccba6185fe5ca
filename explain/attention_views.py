"""Views of attention maps: one layer or the mean, one head or the mean/max, rollout, words (numpy only).

The maps come from ``explain.attention.extract_attention``; these functions never touch a model, so the
plots and the notebook display can use them without torch.
"""

from __future__ import annotations

import numpy as np

from explain.aggregate import word_spans, word_text
from explain.focus import focus_columns
from explain.types import AttentionMaps

HEAD_AGGREGATIONS = ("mean", "max")


def select(stack: np.ndarray, layer: int | str = "mean", head: int | str = "mean") -> np.ndarray:
    """One map from a [layers, heads, q, k] stack: a layer or the mean over layers; a head, or mean/max over heads."""
    per_layer = stack.mean(0) if layer == "mean" else stack[int(layer)]  # [heads, q, k]
    if head == "mean":
        return per_layer.mean(0)
    if head == "max":
        return per_layer.max(0)
    return per_layer[int(head)]


def rollout(self_attention: np.ndarray, residual: float = 0.5) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema 2020) through self-attention layers -> [q, k].

    Each layer's head-averaged attention is mixed with the identity for the residual connection,
    renormalised, and the layers are multiplied from the first up: row i says how much of position i's
    final representation traces back to each input token.
    """
    n = self_attention.shape[-1]
    out = np.eye(n)
    for layer in self_attention.mean(1):  # [q, k] per layer
        mixed = residual * np.eye(n) + (1 - residual) * layer
        mixed /= mixed.sum(-1, keepdims=True)
        out = mixed @ out
    return out


def cross_rollout(maps: AttentionMaps) -> np.ndarray:
    """Cross-attention routed back to the source tokens through encoder self-attention -> [tgt, src].

    The decoder attends to encoder outputs, which already mix source tokens; multiplying the
    (layer- and head-averaged) cross-attention by the encoder's rollout undoes that mixing. Without
    encoder self-attention (an LSTM) this is the cross-attention itself. Rows sum to 1.
    """
    if maps.cross is None:
        raise ValueError("rollout into cross-attention needs an encoder-decoder model")
    cross = maps.cross.mean((0, 1))
    if maps.encoder_self is None:
        return cross
    return cross @ rollout(maps.encoder_self)


def merge_attention_words(
    weights: np.ndarray, q_tokens: tuple[str, ...], k_tokens: tuple[str, ...]
) -> tuple[np.ndarray, tuple[str, ...], tuple[str, ...]]:
    """Attention between words: sum over a word's keys (rows keep summing to 1), mean over its queries."""
    q_spans, k_spans = word_spans(q_tokens), word_spans(k_tokens)
    cols = np.stack([weights[:, a:b].sum(1) for a, b in k_spans], 1)
    rows = np.stack([cols[a:b].mean(0) for a, b in q_spans], 0)
    return rows, tuple(word_text(q_tokens, s) for s in q_spans), tuple(word_text(k_tokens, s) for s in k_spans)


KIND_LABELS = {
    "cross": "cross-attention (output → source)",
    "rollout": "rollout (cross-attention through the encoder's self-attention)",
    "encoder": "encoder self-attention (source → source)",
    "decoder": "decoder self-attention (output → earlier output)",
    "causal": "self-attention of each generating position (→ prompt and earlier output)",
    "causal_rollout": "rollout through all layers (→ prompt and earlier output)",
}


def available_kinds(maps: AttentionMaps) -> list[str]:
    """The views this model's attention supports, in the order the page offers them."""
    if maps.cross is None:
        return ["causal", "causal_rollout"] if maps.decoder_self is not None else []
    kinds = ["cross", "rollout"]
    if maps.encoder_self is not None:
        kinds.append("encoder")
    if maps.decoder_self is not None:
        kinds.append("decoder")
    return kinds


def attention_stack(maps: AttentionMaps, kind: str) -> tuple[np.ndarray, tuple[str, ...], tuple[str, ...]]:
    """(stack [layers, heads, rows, cols], column tokens, row tokens) of one kind of attention."""
    if kind == "cross" and maps.cross is not None:
        return maps.cross, maps.src_tokens, maps.tgt_tokens
    if kind == "encoder" and maps.encoder_self is not None:
        return maps.encoder_self, maps.src_tokens, maps.src_tokens
    if kind == "decoder" and maps.decoder_self is not None and maps.cross is not None:
        return maps.decoder_self, maps.prefix_tokens, maps.tgt_tokens
    if kind == "causal" and maps.decoder_self is not None and maps.cross is None:
        s = len(maps.src_tokens)  # position s - 1 + t predicts output token t
        return maps.decoder_self[:, :, s - 1 :], (*maps.src_tokens, *maps.prefix_tokens), maps.tgt_tokens
    raise ValueError(f"this model has no {kind!r} attention; it offers {', '.join(available_kinds(maps))}")


def attention_view(
    maps: AttentionMaps,
    kind: str,
    layer: int | str = "mean",
    head: int | str = "mean",
    words: bool = False,
    whole_prompt: bool = True,
) -> tuple[np.ndarray, tuple[str, ...], tuple[str, ...]]:
    """One map to draw: (weights [rows, cols], column tokens, row tokens); rows sum to 1.

    ``whole_prompt=False``: of a prompted model's prompt, only the source text's columns (``maps.src_span``) and
    the output's are kept (``explain.focus.focus_columns``); rows then sum to 1 minus what the rest of the prompt
    got."""
    if kind == "rollout":
        weights, cols, rows = cross_rollout(maps), maps.src_tokens, maps.tgt_tokens
    elif kind == "causal_rollout":
        s = len(maps.src_tokens)
        weights = rollout(maps.decoder_self)[s - 1 :]
        cols, rows = (*maps.src_tokens, *maps.prefix_tokens), maps.tgt_tokens
    else:
        stack, cols, rows = attention_stack(maps, kind)
        weights = select(stack, layer, head)
    if not whole_prompt and kind in ("causal", "causal_rollout"):
        weights, cols, _ = focus_columns(weights, cols, maps.src_span, len(maps.src_tokens))
    if words:
        weights, rows, cols = merge_attention_words(weights, rows, cols)
    return weights, cols, rows
