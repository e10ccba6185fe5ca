"""Agreement between two explanations of the same output (numpy only)."""

from __future__ import annotations

import numpy as np

from explain.types import Attribution


def rankdata(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank (as scipy.stats.rankdata)."""
    values = np.asarray(values, dtype=float)
    order = values.argsort(kind="mergesort")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    for v in np.unique(values):  # average the ranks of ties
        tied = values == v
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation; NaN when either side is constant."""
    ra, rb = rankdata(a), rankdata(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def rank_agreement(a: Attribution, b: Attribution, absolute: bool = True) -> np.ndarray:
    """Spearman correlation of the source scores of each output token -> [tgt].

    ``absolute`` compares importance regardless of sign, the usual reading when a signed method is
    compared with attention or saliency.
    """
    if a.src_tokens != b.src_tokens or a.tgt_tokens != b.tgt_tokens:
        raise ValueError("the two explanations are of different sentences or outputs")
    x, y = (np.abs(a.scores), np.abs(b.scores)) if absolute else (a.scores, b.scores)
    return np.array([spearman(x[t], y[t]) for t in range(len(a.tgt_tokens))])
