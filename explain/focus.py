"""The source text's own tokens out of a prompt: what the pages show by default for a prompted model.

A base model prompted to translate (``models.prompting``) reads three example pairs, then the user's sentence;
its attributions and attention cover every prompt token (they are computed over all of them, and the
faithfulness measures use all of them), but a person asked about *their* sentence. These functions keep the
sentence's tokens (``src_span``) and say how much of the explanation the hidden part of the prompt holds, so
nothing is dropped silently. Numpy only.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from explain.types import Attribution


def focus_attribution(attr: Attribution) -> Attribution:
    """``attr`` over the source text's own tokens only (unchanged when it has no ``src_span``)."""
    if attr.src_span is None:
        return attr
    a, b = attr.src_span
    return dataclasses.replace(attr, src_tokens=attr.src_tokens[a:b], scores=attr.scores[:, a:b], src_span=None)


def hidden_share(attr: Attribution) -> np.ndarray:
    """[tgt] share of each output token's absolute source attribution that falls on the prompt outside the text
    (0 when there is no prompt around it)."""
    if attr.src_span is None:
        return np.zeros(len(attr.tgt_tokens), dtype=np.float32)
    a, b = attr.src_span
    total = np.abs(attr.scores).sum(1)
    inside = np.abs(attr.scores[:, a:b]).sum(1)
    return np.where(total > 0, 1 - inside / np.where(total > 0, total, 1), 0.0).astype(np.float32)


def focus_columns(
    weights: np.ndarray, cols: tuple[str, ...], span: tuple[int, int] | None, n_src: int
) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """Keep the columns of the text's tokens (``span`` of the first ``n_src`` columns) and every column after the
    source (the output so far); -> (weights [..., kept], their tokens, the weight each row gives the hidden
    columns [...]). Rows of attention then sum to 1 minus that hidden weight."""
    if span is None:
        return weights, cols, np.zeros(weights.shape[:-1], dtype=np.float32)
    keep = np.r_[span[0] : span[1], n_src : weights.shape[-1]].astype(int)
    hidden = weights.sum(-1) - weights[..., keep].sum(-1)
    return weights[..., keep], tuple(cols[i] for i in keep), hidden.astype(np.float32)
