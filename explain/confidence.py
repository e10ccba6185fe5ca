"""Attention-based confidence (Rikters, Fishel & Bojar 2017), beside the model's own probabilities.

From the cross-attention α [tgt, src] (averaged over layers and heads):
- per output token: the entropy of its attention row (a diffuse row: the decoder did not know where to look);
- per sentence: the coverage deviation penalty CDP = −1/S Σ_j log(1 + (1 − Σ_t α_tj)²) (0 when every
  source token received attention 1 in total), APout = mean row entropy, APin = mean entropy of the
  attention each source token received.
"""

from __future__ import annotations

import numpy as np


def attention_confidence(cross: np.ndarray) -> dict[str, object]:
    """``cross`` [tgt, src], rows summing to 1."""
    eps = 1e-12
    row_entropy = -(cross * np.log(cross + eps)).sum(1)
    coverage = cross.sum(0)
    cdp = -np.mean(np.log1p((1 - coverage) ** 2))
    ap_in = -np.mean((cross * np.log(cross + eps)).sum(0))
    return {
        "token_entropy": row_entropy,
        "coverage": coverage,
        "CDP": float(cdp),
        "APout": float(row_entropy.mean()),
        "APin": float(ap_in),
    }
