"""Heatmaps of attention (plotly figures from numpy data)."""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from explain.types import AttentionMaps
from viz.tokens import prettify_tokens


def token_heatmap(
    weights: np.ndarray,
    x_tokens: Sequence[str],
    y_tokens: Sequence[str],
    title: str = "",
    x_title: str = "source",
    y_title: str = "target",
    zmin: float | None = 0.0,
    zmax: float | None = 1.0,
    colorscale: str = "Blues",
    value_name: str = "weight",
) -> go.Figure:
    """weights [y, x] as a heatmap with token tick labels and hover text.

    Numeric axes with tick text, so repeated tokens keep their own columns; the first target token
    is at the top, as in reading order.
    """
    weights = np.asarray(weights, dtype=float)
    if weights.shape != (len(y_tokens), len(x_tokens)):
        raise ValueError(f"weights are {weights.shape} but there are {len(y_tokens)} × {len(x_tokens)} tokens")
    xs, ys = prettify_tokens(x_tokens), prettify_tokens(y_tokens)
    # Plotly renders hover text as HTML: escape tokens so "<script>" stays text.
    hx, hy = [html.escape(t) for t in xs], [html.escape(t) for t in ys]
    hover = [[f"{hy[i]} ← {hx[j]}<br>{value_name} {weights[i, j]:.3f}" for j in range(len(xs))] for i in range(len(ys))]
    fig = go.Figure(
        go.Heatmap(
            z=weights,
            x=list(range(len(xs))),
            y=list(range(len(ys))),
            zmin=zmin,
            zmax=zmax,
            colorscale=colorscale,
            text=hover,
            hoverinfo="text",
            hovertemplate=None,
            colorbar={"title": {"text": value_name}},
        )
    )
    side = max(18, min(40, 700 // max(len(xs), 1)))
    fig.update_layout(
        title=title or None,
        xaxis={
            "tickmode": "array",
            "tickvals": list(range(len(xs))),
            "ticktext": hx,
            "title": x_title,
            "side": "top",
            "tickangle": 0 if max(map(len, xs), default=0) <= 3 else -45,
        },
        yaxis={
            "tickmode": "array",
            "tickvals": list(range(len(ys))),
            "ticktext": hy,
            "title": y_title,
            "autorange": "reversed",
        },
        height=min(1200, 160 + side * len(ys)),
        margin={"l": 10, "r": 10, "t": 90, "b": 10},
        font={"family": "Noto Sans, Noto Sans CJK SC, sans-serif"},
    )
    return fig


def attention_heatmap(maps: AttentionMaps, layer: int = 0, head: int | str = 0, title: str = "") -> go.Figure:
    """Cross-attention of one layer: one head, or ``head="mean"`` / ``"max"`` over heads."""
    if maps.cross is None:
        raise ValueError("this model has no cross-attention")
    layer_weights = maps.cross[layer]  # [heads, tgt, src]
    if head == "mean":
        weights = layer_weights.mean(0)
    elif head == "max":
        weights = layer_weights.max(0)
    else:
        weights = layer_weights[int(head)]
    return token_heatmap(weights, maps.src_tokens, maps.tgt_tokens, title=title)
