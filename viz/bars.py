"""Bar and line charts for one output token or one sequence (plotly from numpy)."""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explain.types import Attribution
from viz.heatmaps import FONT
from viz.tokens import prettify_tokens


def token_bars(attr: Attribution, row: int) -> go.Figure:
    """Scores of every input token (source, then target prefix) for output token ``row``."""
    tokens = [f"{i}:{t}" for i, t in enumerate(prettify_tokens(attr.src_tokens))]
    values = list(attr.scores[row])
    if attr.prefix_scores is not None:
        prefix = prettify_tokens(attr.prefix_tokens)[: row + 1]  # step t reads decoder inputs 0..t
        tokens += [f"⟨{i}⟩{t}" for i, t in enumerate(prefix)]
        values += list(attr.prefix_scores[row, : row + 1])
    labels = [html.escape(t) for t in tokens]
    colors = ["#c0392b" if v >= 0 else "#2471a3" for v in values]
    fig = go.Figure(go.Bar(x=list(range(len(values))), y=values, marker_color=colors,
                           hovertext=[f"{lab}: {v:.4f}" for lab, v in zip(labels, values, strict=True)],
                           hoverinfo="text"))  # fmt: skip
    target = html.escape(prettify_tokens([attr.tgt_tokens[row]])[0])
    fig.update_layout(
        title=f"What produced “{target}” (output token {row})",
        xaxis={"tickmode": "array", "tickvals": list(range(len(values))), "ticktext": labels, "tickangle": -45},
        yaxis={"title": "score", "zeroline": True}, height=340, margin={"l": 10, "r": 10, "t": 50, "b": 10},
        font=FONT,
    )  # fmt: skip
    return fig


def step_confidence(tokens: Sequence[str], logprobs: np.ndarray, entropy: np.ndarray) -> go.Figure:
    """Probability and entropy of each output token."""
    labels = [f"{i}:{html.escape(t)}" for i, t in enumerate(prettify_tokens(tokens))]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    x = list(range(len(labels)))
    fig.add_trace(go.Bar(x=x, y=np.exp(logprobs), name="probability", marker_color="#5d6d7e"), secondary_y=False)
    fig.add_trace(go.Scatter(x=x, y=entropy, name="entropy (nats)", mode="lines+markers",
                             line={"color": "#e67e22"}), secondary_y=True)  # fmt: skip
    fig.update_xaxes(tickmode="array", tickvals=x, ticktext=labels, tickangle=-45)
    fig.update_yaxes(title_text="probability", range=[0, 1], secondary_y=False)
    fig.update_yaxes(title_text="entropy", secondary_y=True)
    fig.update_layout(height=300, margin={"l": 10, "r": 10, "t": 30, "b": 10}, font=FONT,
                      legend={"orientation": "h", "y": 1.15})  # fmt: skip
    return fig


def agreement_bars(tokens: Sequence[str], rho: np.ndarray, names: tuple[str, str]) -> go.Figure:
    """Rank correlation of two explanations for each output token."""
    labels = [f"{i}:{html.escape(t)}" for i, t in enumerate(prettify_tokens(tokens))]
    values = np.nan_to_num(rho, nan=0.0)
    colors = ["#27ae60" if v >= 0 else "#8e44ad" for v in values]
    hover = [f"{lab}: ρ = {r:.2f}" for lab, r in zip(labels, rho, strict=True)]
    fig = go.Figure(
        go.Bar(x=list(range(len(labels))), y=values, marker_color=colors, hovertext=hover, hoverinfo="text")
    )
    fig.update_layout(
        title=f"Spearman ρ between {html.escape(names[0])} and {html.escape(names[1])}",
        xaxis={"tickmode": "array", "tickvals": list(range(len(labels))), "ticktext": labels, "tickangle": -45},
        yaxis={"range": [-1, 1], "title": "ρ"}, height=300, margin={"l": 10, "r": 10, "t": 50, "b": 10}, font=FONT,
    )  # fmt: skip
    return fig
