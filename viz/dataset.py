"""Dataset explorer charts: a metric per group (with its interval) and a histogram. Plain numbers in, figures out."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go


def group_bars(
    groups: Sequence[str], means: Sequence[float], ci: Sequence[float], counts: Sequence[int], metric: str, by: str
) -> go.Figure:
    """Mean ``metric`` per group with 95 % intervals; the count of each group under its bar."""
    labels = [f"{g}<br>n={n:,}" for g, n in zip(groups, counts, strict=True)]
    fig = go.Figure(
        go.Bar(
            x=labels,
            y=list(means),
            error_y={"type": "data", "array": list(ci), "visible": True},
            marker_color="#1f77b4",
            hovertemplate=f"%{{x}}<br>mean {metric}: %{{y:.3f}}<extra></extra>",
        )
    )
    fig.update_layout(
        title=f"{metric} by {by}",
        xaxis_title=by,
        yaxis_title=f"mean {metric}",
        height=340,
        margin={"l": 50, "r": 20, "t": 50, "b": 60},
    )
    return fig


def histogram(values: Sequence[float], metric: str, bins: int = 30) -> go.Figure:
    fig = go.Figure(go.Histogram(x=list(values), nbinsx=bins, marker_color="#2ca02c"))
    fig.update_layout(
        title=f"{metric}: distribution over the rows shown",
        xaxis_title=metric,
        yaxis_title="sentences",
        height=340,
        bargap=0.05,
        margin={"l": 50, "r": 20, "t": 50, "b": 50},
    )
    return fig
