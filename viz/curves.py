"""Training curves from a history file's records (plain dicts)."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f")


def training_curves(records: Sequence[dict], title: str = "") -> go.Figure:
    """Loss (train and validation) and validation BLEU/chrF against the training step."""
    train = [r for r in records if r.get("kind") == "train"]
    val = [r for r in records if r.get("kind") == "val"]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss (per target token)", "validation scores"))
    fig.add_trace(
        go.Scatter(
            x=[r["step"] for r in train], y=[r["loss"] for r in train], name="train loss (label-smoothed)", mode="lines"
        ),
        1,
        1,
    )
    fig.add_trace(
        go.Scatter(
            x=[r["step"] for r in val], y=[r["val_loss"] for r in val], name="validation loss", mode="lines+markers"
        ),
        1,
        1,
    )
    fig.add_trace(
        go.Scatter(x=[r["step"] for r in val], y=[r["bleu"] for r in val], name="BLEU", mode="lines+markers"), 1, 2
    )
    fig.add_trace(
        go.Scatter(x=[r["step"] for r in val], y=[r["chrf"] for r in val], name="chrF", mode="lines+markers"), 1, 2
    )
    fig.update_xaxes(title_text="step")
    fig.update_layout(
        title=title or None,
        height=380,
        margin={"l": 10, "r": 10, "t": 60, "b": 10},
        legend={"orientation": "h", "y": -0.25},
    )
    return fig


def faithfulness_curves(
    fractions: Sequence[float], comprehensiveness: dict[str, Sequence[float]], sufficiency: dict[str, Sequence[float]]
) -> go.Figure:
    """Deletion (comprehensiveness) and keep-only (sufficiency) curves of several methods."""
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=(
            "removing the top k% of tokens: drop in p (higher = more faithful)",
            "keeping only the top k%: drop in p (lower = more faithful)",
        ),
    )
    x = [100 * f for f in fractions]
    for i, method in enumerate(comprehensiveness):
        color = COLORS[i % len(COLORS)]
        fig.add_trace(
            go.Scatter(
                x=x,
                y=list(comprehensiveness[method]),
                name=method,
                mode="lines+markers",
                line={"color": color},
                legendgroup=method,
            ),
            1,
            1,
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=list(sufficiency[method]),
                name=method,
                mode="lines+markers",
                line={"color": color},
                legendgroup=method,
                showlegend=False,
            ),
            1,
            2,
        )
    fig.update_xaxes(title_text="k (% of source tokens)")
    fig.update_layout(height=380, margin={"l": 10, "r": 10, "t": 60, "b": 10}, legend={"orientation": "h", "y": -0.25})
    return fig


def randomisation_curve(blocks: Sequence[str], similarity: Sequence[float], method: str) -> go.Figure:
    """Similarity to the original explanation as more of the model is randomised (top block first)."""
    fig = go.Figure(
        go.Scatter(
            x=list(range(1, len(blocks) + 1)),
            y=list(similarity),
            mode="lines+markers",
            hovertext=[f"randomised down to {b}" for b in blocks],
            hoverinfo="text+y",
        )
    )
    fig.update_layout(
        title=f"{method}: rank correlation with the explanation of the trained model",
        xaxis={
            "title": "blocks randomised, from the output down",
            "tickmode": "array",
            "tickvals": list(range(1, len(blocks) + 1)),
            "ticktext": list(blocks),
            "tickangle": -45,
        },
        yaxis={"title": "Spearman ρ", "range": [-1, 1]},
        height=380,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return fig


def bars(labels: Sequence[str], values: Sequence[float], title: str, y_title: str) -> go.Figure:
    fig = go.Figure(go.Bar(x=list(labels), y=list(values), marker_color=COLORS[0]))
    fig.update_layout(title=title, yaxis={"title": y_title}, height=320, margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig
