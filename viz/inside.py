"""Figures of the Inside page: units over tokens, the logit lens, layer norms, the neuron view, embedding maps.

Plotly from the plain results of ``explain.inside_types``; no torch.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explain.inside_types import (
    EmbeddingProjection,
    LayerNorms,
    LogitLens,
    LstmStates,
    Neighbours,
    NeuronView,
    PatternSearch,
    TopNeurons,
)
from explain.inside_views import QUANTITY_LABELS, SIDE_LABELS, norm_series, pick_units
from viz.curves import COLORS
from viz.heatmaps import DIVERGING, FONT, _axis, _height, _labels
from viz.tokens import prettify_token

MARGIN = {"l": 10, "r": 10, "t": 90, "b": 10}


def unit_heatmap(
    values: np.ndarray,
    tokens: Sequence[str],
    units: Sequence[int],
    title: str = "",
    signed: bool = True,
    value_name: str = "value",
    x_title: str = "unit",
    y_title: str = "token",
    mark: int | tuple[int, int] | None = None,
) -> go.Figure:
    """values [tokens, len(units)] as a heatmap: one row per token, one column per unit (labelled by number).

    ``signed``: a diverging scale centred at 0 (hidden states, candidates); else sequential from 0 (gates).
    ``mark``: a row (or a span of rows [start, end)) outlined, e.g. the selected token or pattern.
    """
    values = np.asarray(values, dtype=float)
    if values.shape != (len(tokens), len(units)):
        raise ValueError(f"values are {values.shape} but there are {len(tokens)} tokens × {len(units)} units")
    y = _labels(tokens)
    x = [str(int(u)) for u in units]
    peak = float(np.abs(values).max(initial=0.0)) or 1.0
    style = (
        {"zmin": -peak, "zmax": peak, "zmid": 0.0, "colorscale": DIVERGING}
        if signed
        else {"zmin": 0.0, "zmax": max(peak, 1e-6), "colorscale": "Blues"}
    )
    hover = [[f"{y[i]} · unit {x[j]}<br>{value_name} {values[i, j]:.3f}" for j in range(len(x))] for i in range(len(y))]
    fig = go.Figure(
        go.Heatmap(
            z=values,
            x=list(range(len(x))),
            y=list(range(len(y))),
            text=hover,
            hoverinfo="text",
            colorbar={"title": {"text": value_name}},
            **style,
        )
    )
    if mark is not None:
        start, end = (mark, mark + 1) if isinstance(mark, int) else mark
        fig.add_shape(
            type="rect", x0=-0.5, x1=len(x) - 0.5, y0=start - 0.5, y1=end - 0.5, line={"color": "#111", "width": 2}
        )
    fig.update_layout(
        title={"text": title, "y": 0.995, "yanchor": "top", "x": 0.0, "xanchor": "left"} if title else None,
        xaxis={**_axis(x, x_title, top=True), "tickangle": -90 if len(x) > 12 else 0},
        yaxis={**_axis(y, y_title), "autorange": "reversed"},
        height=_height(len(y), len(x)) + (30 if title else 0),
        margin={**MARGIN, "t": MARGIN["t"] + (30 if title else 0)},
        font=FONT,
    )
    return fig


def logit_lens_heatmap(lens: LogitLens, max_chars: int = 8) -> go.Figure:
    """Layers (rows, embeddings at the bottom) × output positions: each cell's text is the layer's top token,
    its colour the probability the layer gives the token the model finally produced."""
    n_rows, n_cols = lens.target_probs.shape
    tops = [[prettify_token(lens.top_tokens[i][t][0]) for t in range(n_cols)] for i in range(n_rows)]
    cell = [[html.escape(tok if len(tok) <= max_chars else tok[: max_chars - 1] + "…") for tok in row] for row in tops]
    produced = _labels(lens.tgt_tokens)
    hover = []
    for i in range(n_rows):
        row = []
        for t in range(n_cols):
            alts = "<br>".join(
                f"{html.escape(prettify_token(tok))} {p:.3f}"
                for tok, p in zip(lens.top_tokens[i][t], lens.top_probs[i, t], strict=True)
            )
            row.append(
                f"layer {i}, output {t} “{produced[t]}”<br>p(“{produced[t]}”) {lens.target_probs[i, t]:.3f}, "
                f"rank {int(lens.target_ranks[i, t]) + 1}<br>top tokens:<br>{alts}"
            )
        hover.append(row)
    layer_names = ["embeddings", *(str(i) for i in range(1, n_rows))]
    fig = go.Figure(
        go.Heatmap(
            z=lens.target_probs,
            x=list(range(n_cols)),
            y=list(range(n_rows)),
            text=cell,
            texttemplate="%{text}",
            textfont={"size": 10},
            hovertext=hover,
            hoverinfo="text",
            zmin=0.0,
            zmax=1.0,
            colorscale="Blues",
            colorbar={"title": {"text": "p(final token)"}},
        )
    )
    fig.update_layout(
        xaxis=_axis(produced, "output token (the one finally produced)", top=True),
        yaxis=_axis(layer_names, "layer"),
        height=min(1200, 170 + 28 * n_rows),
        margin=MARGIN,
        font=FONT,
    )
    return fig


def norm_curves(series: dict[str, tuple[np.ndarray, np.ndarray]], title: str = "") -> go.Figure:
    """Norms against the layer (``explain.inside_views.norm_series``), one line per quantity; a log scale when they
    span more than a factor of 30 (the stream of a large decoder-only model outgrows its embeddings by far)."""
    fig = go.Figure()
    values = np.concatenate([np.asarray(y, dtype=float) for _, y in series.values()]) if series else np.ones(1)
    positive = values[values > 0]
    log = len(positive) > 0 and positive.max() > 30 * positive.min()
    for i, (name, (x, y)) in enumerate(series.items()):
        fig.add_trace(go.Scatter(x=x, y=y, name=name, mode="lines+markers", line={"color": COLORS[i % len(COLORS)]}))
    fig.update_layout(
        title=title or None,
        xaxis={"title": "layer (0: embeddings)", "dtick": 1},
        yaxis={"title": "L2 norm" + (" (log scale)" if log else ""), "type": "log" if log else "linear"},
        height=380,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        legend={"orientation": "h", "y": -0.2},
        font=FONT,
    )
    return fig


def norm_heatmap(norms: LayerNorms) -> go.Figure:
    """The residual stream's norm at every layer (rows, 0: embeddings) and position (columns)."""
    x = _labels(norms.tokens)
    y = [str(i) for i in range(norms.residual.shape[0])]
    hover = [
        [f"layer {y[i]} · {x[j]}<br>‖stream‖ {norms.residual[i, j]:.2f}" for j in range(len(x))] for i in range(len(y))
    ]
    fig = go.Figure(
        go.Heatmap(
            z=norms.residual,
            x=list(range(len(x))),
            y=list(range(len(y))),
            text=hover,
            hoverinfo="text",
            colorscale="Viridis",
            colorbar={"title": {"text": "‖stream‖"}},
        )
    )
    fig.update_layout(
        xaxis=_axis(x, "position", top=True), yaxis=_axis(y, "layer"), height=_height(len(y), len(x)), margin=MARGIN
    )
    return fig


def neuron_view_figure(view: NeuronView) -> go.Figure:
    """BertViz's neuron view: the query vector, each allowed key vector, q ∘ k, and the attention each key gets."""
    keys = _labels(view.key_tokens)
    keys = [f"{p}:{k}" for p, k in zip(view.key_positions.tolist(), keys, strict=True)]
    products = view.products
    d = view.query.shape[0]
    peak = float(max(np.abs(view.keys).max(initial=0), np.abs(view.query).max(initial=0))) or 1.0
    peak_p = float(np.abs(products).max(initial=0)) or 1.0
    fig = make_subplots(
        rows=2,
        cols=3,
        row_heights=[0.12, 0.88],
        column_widths=[0.4, 0.4, 0.2],
        specs=[[{}, None, None], [{}, {}, {}]],
        shared_yaxes=False,
        horizontal_spacing=0.03,
        vertical_spacing=min(0.15, 60 / (260 + 24 * len(keys))),  # room for the second row's titles
        subplot_titles=(f"query q of “{_labels([view.query_token])[0]}”", "keys k", "q ∘ k", "attention"),
    )
    style = {"zmin": -peak, "zmax": peak, "zmid": 0.0, "colorscale": DIVERGING, "showscale": False}
    fig.add_trace(go.Heatmap(z=view.query[None, :], hovertemplate="q[%{x}] = %{z:.3f}<extra></extra>", **style), 1, 1)
    fig.add_trace(
        go.Heatmap(z=view.keys, y=list(range(len(keys))), hovertemplate="k[%{x}] = %{z:.3f}<extra></extra>", **style),
        2,
        1,
    )
    fig.add_trace(
        go.Heatmap(
            z=products,
            y=list(range(len(keys))),
            zmin=-peak_p,
            zmax=peak_p,
            zmid=0.0,
            colorscale=DIVERGING,
            showscale=False,
            hovertemplate="q∘k[%{x}] = %{z:.3f}<extra></extra>",
        ),
        2,
        2,
    )
    fig.add_trace(
        go.Bar(
            x=view.attention,
            y=list(range(len(keys))),
            orientation="h",
            marker_color=COLORS[0],
            hovertext=[f"score {s:.3f} → attention {a:.3f}" for s, a in zip(view.scores, view.attention, strict=True)],
            hoverinfo="text",
        ),
        2,
        3,
    )
    for col in (1, 2, 3):
        fig.update_yaxes(autorange="reversed", row=2, col=col, tickmode="array", tickvals=list(range(len(keys))))
    fig.update_yaxes(ticktext=keys, row=2, col=1)
    fig.update_yaxes(showticklabels=False, row=2, col=2)
    fig.update_yaxes(showticklabels=False, row=2, col=3)
    fig.update_yaxes(showticklabels=False, row=1, col=1)
    fig.update_xaxes(showticklabels=False, row=1, col=1)
    fig.update_xaxes(title_text=f"dimension (of {d})", row=2, col=1)
    fig.update_xaxes(title_text="dimension", row=2, col=2)
    fig.update_xaxes(range=[0, 1], title_text="weight", row=2, col=3)
    fig.update_layout(
        height=min(1400, 260 + 24 * len(keys)), margin={"l": 10, "r": 10, "t": 50, "b": 10}, font=FONT, showlegend=False
    )
    return fig


def embedding_scatter(proj: EmbeddingProjection, title: str = "") -> go.Figure:
    """The sample in grey, the highlighted tokens in red with their labels; hover gives token and count."""
    fig = go.Figure()
    tokens = _labels(proj.tokens)
    for mask, name, color, size in (
        (~proj.highlighted, "vocabulary sample", "#9aa5b1", 5),
        (proj.highlighted, "this sentence", "#c0392b", 10),
    ):
        idx = np.flatnonzero(mask)
        if not len(idx):
            continue
        counts = [f", seen {c:,}×" if c >= 0 else "" for c in proj.counts[idx]]
        fig.add_trace(
            go.Scatter(
                x=proj.coords[idx, 0],
                y=proj.coords[idx, 1],
                mode="markers+text" if name == "this sentence" else "markers",
                name=name,
                text=[tokens[i] for i in idx] if name == "this sentence" else None,
                textposition="top center",
                marker={"size": size, "color": color, "opacity": 0.9 if name == "this sentence" else 0.5},
                hovertext=[f"{tokens[i]} (id {proj.ids[i]}{c})" for i, c in zip(idx, counts, strict=True)],
                hoverinfo="text",
            )
        )
    fig.update_layout(
        title=title or None,
        xaxis={"title": f"PC 1 ({proj.explained[0]:.1%} of the variance)", "zeroline": False},
        yaxis={"title": f"PC 2 ({proj.explained[1]:.1%})", "zeroline": False},
        height=560,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"orientation": "h", "y": -0.15},
        font=FONT,
    )
    return fig


def pattern_heatmap(search: PatternSearch) -> go.Figure:
    """The selected units' hidden states over the current sentence, the selected span outlined."""
    return unit_heatmap(
        search.values.T,
        search.tokens,
        search.units.tolist(),
        title=f"units on over the selection (≥ {search.threshold:g}) and off around it",
        value_name="h",
        mark=search.span,
    )


def top_neurons_heatmap(top: TopNeurons) -> go.Figure:
    """Tokens × the FFN neurons most active at the selected position (columns in that order)."""
    return unit_heatmap(
        top.activations.T,
        top.tokens,
        top.neurons.tolist(),
        title=f"layer {top.layer}: the {len(top.neurons)} most active of {top.n_neurons} neurons at position "
        f"{top.position}",
        value_name="activation",
        x_title="neuron",
        mark=top.position,
    )


def lstm_heatmap(states: LstmStates, side: str, quantity: str, units: Sequence[int], layer: int = -1) -> go.Figure:
    """One LSTM side's quantity (state or gate) over its tokens for the chosen units."""
    run = states.run(side)
    values = run.values(quantity, layer)[:, list(units)]
    signed = quantity in ("hidden", "cell", "candidate")
    return unit_heatmap(
        values,
        run.tokens,
        units,
        title=f"{QUANTITY_LABELS[quantity]}, {SIDE_LABELS[side]}",
        signed=signed,
        value_name=quantity,
    )


def inside_figure(result: object) -> go.Figure | None:
    """The first figure the Inside page draws for a result (the notebook display), or None for other objects."""
    if isinstance(result, LogitLens):
        return logit_lens_heatmap(result)
    if isinstance(result, LayerNorms):
        return norm_curves(norm_series(result), f"{result.side}: mean over positions")
    if isinstance(result, NeuronView):
        return neuron_view_figure(result)
    if isinstance(result, TopNeurons):
        return top_neurons_heatmap(result)
    if isinstance(result, LstmStates):
        units = pick_units(result.encoder_forward.values("hidden"), "variance", 32)
        return lstm_heatmap(result, "encoder_forward", "hidden", units.tolist())
    if isinstance(result, PatternSearch):
        return pattern_heatmap(result)
    if isinstance(result, EmbeddingProjection):
        return embedding_scatter(result)
    if isinstance(result, Neighbours):
        fig = go.Figure(go.Bar(x=_labels(result.tokens), y=result.similarity, marker_color=COLORS[0]))
        fig.update_layout(
            title=f"nearest to “{html.escape(prettify_token(result.token))}”",
            yaxis={"title": "cosine similarity"},
            height=320,
            margin={"l": 10, "r": 10, "t": 50, "b": 10},
            font=FONT,
        )
        return fig
    return None
