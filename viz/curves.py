"""Training curves from a history file's records (plain dicts)."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots


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
