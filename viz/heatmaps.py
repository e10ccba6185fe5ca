"""Heatmaps of attention and attribution (plotly figures from numpy data)."""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explain.types import Attribution
from viz.tokens import prettify_tokens

FONT = {"family": "Noto Sans, Noto Sans CJK SC, sans-serif"}
DIVERGING = "RdBu_r"  # red: pushes toward the output token, blue: away from it


def _labels(tokens: Sequence[str]) -> list[str]:
    # Plotly renders tick and hover text as HTML: escape tokens so "<script>" stays text.
    return [html.escape(t) for t in prettify_tokens(tokens)]


def _axis(labels: list[str], title: str, top: bool = False) -> dict:
    """Numeric axis with token tick text, so repeated tokens keep their own columns."""
    axis = {"tickmode": "array", "tickvals": list(range(len(labels))), "ticktext": labels, "title": title}
    if top:
        axis.update(side="top", tickangle=0 if max(map(len, labels), default=0) <= 3 else -45)
    return axis


def _trace(weights: np.ndarray, x: list[str], y: list[str], value_name: str, **style: object) -> go.Heatmap:
    hover = [[f"{y[i]} ← {x[j]}<br>{value_name} {weights[i, j]:.3f}" for j in range(len(x))] for i in range(len(y))]
    return go.Heatmap(
        z=weights,
        x=list(range(len(x))),
        y=list(range(len(y))),
        text=hover,
        hoverinfo="text",
        hovertemplate=None,
        **style,
    )


def _height(n_rows: int, n_cols: int) -> int:
    side = max(18, min(40, 700 // max(n_cols, 1)))
    return min(1200, 170 + side * n_rows)


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
    """weights [y, x] as a heatmap with token tick labels and hover text; first row at the top."""
    weights = np.asarray(weights, dtype=float)
    if weights.shape != (len(y_tokens), len(x_tokens)):
        raise ValueError(f"weights are {weights.shape} but there are {len(y_tokens)} × {len(x_tokens)} tokens")
    x, y = _labels(x_tokens), _labels(y_tokens)
    style = {"zmin": zmin, "zmax": zmax, "colorscale": colorscale, "colorbar": {"title": {"text": value_name}}}
    fig = go.Figure(_trace(weights, x, y, value_name, **style))
    fig.update_layout(
        title=title or None,
        xaxis=_axis(x, x_title, top=True),
        yaxis={**_axis(y, y_title), "autorange": "reversed"},
        height=_height(len(y), len(x)),
        margin={"l": 10, "r": 10, "t": 90, "b": 10},
        font=FONT,
    )
    return fig


def attribution_heatmap(attr: Attribution, signed: bool | None = None, title: str = "") -> go.Figure:
    """Output tokens × source tokens, and × target prefix beside it, on one colour scale.

    Signed methods (``attr.signed``, unless ``signed`` says otherwise) use a diverging scale centred at 0;
    unsigned ones a sequential scale from 0.
    """
    signed = attr.signed if signed is None else signed
    y = _labels(attr.tgt_tokens)
    panels = [(attr.scores, _labels(attr.src_tokens), "source")]
    if attr.prefix_scores is not None:
        panels.append((attr.prefix_scores, _labels(attr.prefix_tokens), "target prefix"))
    peak = max(float(np.abs(p[0]).max()) for p in panels) or 1.0
    style = (
        {"zmin": -peak, "zmax": peak, "zmid": 0.0, "colorscale": DIVERGING}
        if signed
        else {"zmin": 0.0, "zmax": peak, "colorscale": "Blues"}
    )
    widths = [len(p[1]) for p in panels]
    fig = make_subplots(rows=1, cols=len(panels), shared_yaxes=True, column_widths=widths, horizontal_spacing=0.03)
    for i, (weights, x, name) in enumerate(panels, start=1):
        fig.add_trace(_trace(np.asarray(weights, float), x, y, "score", showscale=i == 1, **style), 1, i)
        fig.update_xaxes(**_axis(x, name, top=True), row=1, col=i)
    fig.update_yaxes(**_axis(y, "output"), autorange="reversed", row=1, col=1)
    fig.update_layout(
        title=title or None,
        height=_height(len(y), sum(widths)),
        margin={"l": 10, "r": 10, "t": 90, "b": 10},
        font=FONT,
    )
    return fig


def attention_grid(
    stack: np.ndarray, x_tokens: Sequence[str], y_tokens: Sequence[str], layers: Sequence[int] | None = None
) -> go.Figure:
    """Every layer × head of an attention stack [layers, heads, rows, cols] as small multiples.

    One colour scale for all panels (0 to the largest weight shown), so panels compare directly;
    hover gives the tokens and the weight.
    """
    layers = list(range(stack.shape[0])) if layers is None else list(layers)
    n_heads = stack.shape[1]
    x, y = _labels(x_tokens), _labels(y_tokens)
    titles = [f"L{layer} H{h}" for layer in layers for h in range(n_heads)]
    fig = make_subplots(
        rows=len(layers),
        cols=n_heads,
        subplot_titles=titles,
        horizontal_spacing=0.01,
        vertical_spacing=0.04 / max(1, len(layers) / 4),
    )
    peak = float(stack[layers].max()) or 1.0
    for r, layer in enumerate(layers, start=1):
        for h in range(n_heads):
            trace = _trace(np.asarray(stack[layer, h], float), x, y, f"L{layer} H{h}", coloraxis="coloraxis")
            fig.add_trace(trace, r, h + 1)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False, autorange="reversed")
    side = max(90, min(200, 1100 // n_heads))
    fig.update_layout(
        coloraxis={"colorscale": "Blues", "cmin": 0.0, "cmax": peak, "colorbar": {"title": {"text": "weight"}}},
        height=60 + side * len(layers),
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        font=FONT,
    )
    fig.update_annotations(font_size=10)
    return fig


def beam_tree(nodes: Sequence, n_hypotheses: int) -> go.Figure:
    """The beam's hypotheses as a tree: one lane per hypothesis (best at the top), shared prefixes merged.

    ``nodes``: ``explain.beam.Node`` objects (id, parent, step, token, prob, ranks).
    """
    lane = {n.id: min(n.ranks) for n in nodes}
    fig = go.Figure()
    for n in nodes:
        if n.parent >= 0:
            p = nodes[n.parent]
            fig.add_trace(
                go.Scatter(
                    x=[p.step, n.step],
                    y=[lane[p.id], lane[n.id]],
                    mode="lines",
                    line={"color": "#bbbbbb", "width": 1 + 3 * n.prob},
                    hoverinfo="skip",
                    showlegend=False,
                )
            )
    best = [n for n in nodes if 0 in n.ranks]
    others = [n for n in nodes if 0 not in n.ranks]
    for group, color, name in ((best, "#c0392b", "best hypothesis"), (others, "#2471a3", "other hypotheses")):
        if not group:
            continue
        fig.add_trace(
            go.Scatter(
                x=[n.step for n in group],
                y=[lane[n.id] for n in group],
                mode="markers+text",
                name=name,
                text=[html.escape(prettify_tokens([n.token])[0]) for n in group],
                textposition="top center",
                marker={"size": [8 + 14 * n.prob for n in group], "color": color},
                hovertext=[
                    f"{html.escape(n.token)}: p = {n.prob:.3f}; hypotheses {', '.join(str(r + 1) for r in n.ranks)}"
                    for n in group
                ],
                hoverinfo="text",
            )
        )
    fig.update_layout(
        xaxis={"title": "output step"},
        yaxis={
            "title": "hypothesis",
            "tickmode": "array",
            "tickvals": list(range(n_hypotheses)),
            "ticktext": [str(i + 1) for i in range(n_hypotheses)],
            "autorange": "reversed",
        },
        height=140 + 70 * n_hypotheses,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        font=FONT,
    )
    return fig
