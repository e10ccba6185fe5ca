"""Views of the Inside page's results (numpy only): which units to draw, in what order, and labels.

No torch: the plots and the page use these on cached results.
"""

from __future__ import annotations

import numpy as np

from explain.inside_types import LayerNorms, LogitLens

UNIT_ORDERS = {
    "variance": "most variable over the tokens",
    "position": "most active at the selected token",
    "magnitude": "largest mean |value|",
    "index": "unit number",
}
QUANTITY_LABELS = {
    "hidden": "hidden state h",
    "cell": "cell state c",
    "input": "input gate i",
    "forget": "forget gate f",
    "candidate": "cell candidate g",
    "output": "output gate o",
}
SIDE_LABELS = {
    "encoder_forward": "encoder, forward (reads left to right)",
    "encoder_backward": "encoder, backward (reads right to left)",
    "decoder": "decoder (reads the output so far)",
    "encoder": "encoder (source)",
    "causal": "prompt and output so far",
}
ATTENTION_KIND_LABELS = {
    "encoder": "encoder self-attention (source → source)",
    "decoder": "decoder self-attention (output → earlier output)",
    "cross": "cross-attention (output → source)",
    "causal": "self-attention (prompt and output → earlier tokens)",
}


def pick_units(
    values: np.ndarray, order: str = "variance", k: int = 32, position: int = 0, units: list[int] | None = None
) -> np.ndarray:
    """Unit indices to draw from values [steps, units]: the ``units`` given, else the top ``k`` by ``order``
    (``UNIT_ORDERS``); "index" keeps the first ``k`` units in their order."""
    n = values.shape[1]
    if units:
        return np.asarray([u for u in dict.fromkeys(units) if 0 <= u < n], dtype=int)
    k = max(1, min(int(k), n))
    if order == "index":
        return np.arange(k)
    if order == "variance":
        key = values.var(0)
    elif order == "position":
        key = values[min(max(position, 0), len(values) - 1)]
    elif order == "magnitude":
        key = np.abs(values).mean(0)
    else:
        raise ValueError(f"unknown unit order {order!r}; known: {', '.join(UNIT_ORDERS)}")
    return np.argsort(-key, kind="stable")[:k]


def parse_units(text: str, n_units: int) -> list[int]:
    """Unit numbers typed as "3, 17 40-42" -> [3, 17, 40, 41, 42]; ``ValueError`` naming what is wrong."""
    found: list[int] = []
    for part in text.replace(",", " ").split():
        lo, sep, hi = part.partition("-")
        try:
            first, last = int(lo), int(hi) if sep else int(lo)
        except ValueError:
            raise ValueError(f"{part!r} is not a unit number or a range such as 40-42") from None
        if not 0 <= first <= last < n_units:
            raise ValueError(f"units are numbered 0 to {n_units - 1}; {part!r} is outside")
        if last - first > 1024:
            raise ValueError(f"the range {part!r} is too long (at most 1024 units)")
        found.extend(range(first, last + 1))
    return list(dict.fromkeys(found))


def norm_series(norms: LayerNorms, position: int | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Curves of the norms against the layer: name -> (layers, values), mean over positions or at one position.
    The residual stream starts at layer 0 (the embeddings); what blocks add is at their layer, 1 to L."""
    pick = (lambda a: a.mean(1)) if position is None else (lambda a: a[:, position])
    n = norms.attention.shape[0]
    series = {
        "residual stream": (np.arange(n + 1), pick(norms.residual)),
        "self-attention output": (np.arange(1, n + 1), pick(norms.attention)),
    }
    if norms.cross is not None:
        series["cross-attention output"] = (np.arange(1, n + 1), pick(norms.cross))
    series["feed-forward output"] = (np.arange(1, n + 1), pick(norms.ffn))
    return series


def first_layer_on_top(lens: LogitLens) -> np.ndarray:
    """[T] for each output token, the first layer from which it is the lens's top token at every later layer
    (0: the embeddings already), or -1 where the last layer does not rank it first (beam search, sampling)."""
    on_top = lens.target_ranks == 0  # [layers + 1, T]
    stays = np.flip(np.logical_and.accumulate(np.flip(on_top, 0), 0), 0)  # on top here and at every later layer
    first = np.where(stays.any(0), stays.argmax(0), -1)
    return first.astype(int)
