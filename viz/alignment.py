"""Word alignments as figures: two rows of words joined by a line per link, and the word-score heatmap with the
links marked (plotly figures from plain numbers; no torch, no streamlit).

Links are (source word, output word) pairs, 0-based, as ``explain.alignment`` gives them. With gold links, the
predicted ones are coloured by whether a person marked them sure, possible or not at all, and the gold links the
explanation missed are drawn dashed (sure) or dotted (possible).
"""

from __future__ import annotations

import html
from collections.abc import Collection, Sequence

import numpy as np
import plotly.graph_objects as go

from viz.heatmaps import DIVERGING, FONT, token_heatmap

Link = tuple[int, int]

# category -> (legend label, colour, line dash, line width); drawn in this order (predicted links on top)
STYLES: dict[str, tuple[str, str, str, float]] = {
    "missed_possible": ("gold possible, not found", "#b0b0b0", "dot", 1.5),
    "missed_sure": ("gold sure, not found", "#606060", "dash", 2.0),
    "link": ("link", "#1f77b4", "solid", 2.5),
    "wrong": ("link not in the gold", "#d62728", "solid", 2.5),
    "possible": ("link, gold possible", "#98c56b", "solid", 2.5),
    "sure": ("link, gold sure", "#2ca02c", "solid", 3.0),
}


def link_categories(
    links: Collection[Link], sure: Collection[Link] | None = None, possible: Collection[Link] | None = None
) -> dict[str, list[Link]]:
    """Each category of ``STYLES`` -> its links, sorted. Without gold every predicted link is a plain "link";
    ``possible`` includes ``sure`` (as ``explain.alignment.GoldAlignment``)."""
    links = set(links)
    if sure is None and possible is None:
        return {"link": sorted(links)}
    sure = set(sure or ())
    possible = set(possible or ()) | sure
    return {
        "missed_possible": sorted(possible - sure - links),
        "missed_sure": sorted(sure - links),
        "wrong": sorted(links - possible),
        "possible": sorted((links & possible) - sure),
        "sure": sorted(links & sure),
    }


def _positions(n: int, width: float) -> np.ndarray:
    """x of n words spread evenly over [0, width], each in the middle of its share."""
    return (np.arange(n) + 0.5) * width / max(n, 1)


def alignment_lines(
    src_words: Sequence[str],
    tgt_words: Sequence[str],
    links: Collection[Link],
    sure: Collection[Link] | None = None,
    possible: Collection[Link] | None = None,
    title: str = "",
) -> go.Figure:
    """Source words on the top row, output words on the bottom row, a line per link (one trace per category)."""
    width = float(max(len(src_words), len(tgt_words), 1))
    xs, xt = _positions(len(src_words), width), _positions(len(tgt_words), width)
    src = [html.escape(w) for w in src_words]  # plotly renders text as HTML
    tgt = [html.escape(w) for w in tgt_words]
    fig = go.Figure()
    for category, found in link_categories(links, sure, possible).items():
        label, colour, dash, line_width = STYLES[category]
        x, y, hover = [], [], []
        for s, t in found:
            if not (0 <= s < len(src) and 0 <= t < len(tgt)):
                raise ValueError(f"link {s}-{t} is outside {len(src)} source and {len(tgt)} output words")
            x += [xs[s], xt[t], None]
            y += [1.0, 0.0, None]
            text = f"{src[s]} ↔ {tgt[t]} ({s}-{t})<br>{label}"
            hover += [text, text, None]
        fig.add_trace(
            go.Scatter(
                x=x,
                y=y,
                mode="lines+markers",
                name=f"{label} ({len(found)})",
                line={"color": colour, "dash": dash, "width": line_width},
                marker={"size": 5, "color": colour},
                hovertext=hover,
                hoverinfo="text",
                meta=category,
            )
        )
    tilt = max(len(src), len(tgt)) > 12 or max(map(len, [*src, *tgt]), default=0) > 10
    for words, x, y, anchor in ((src, xs, 1.0, "bottom"), (tgt, xt, 0.0, "top")):
        for i, w in enumerate(words):
            fig.add_annotation(
                x=x[i],
                y=y,
                text=w,
                showarrow=False,
                yanchor=anchor,
                yshift=6 if anchor == "bottom" else -6,
                textangle=-90 if tilt else 0,  # upright words of long sentences would overlap
                font={"size": 14},
            )
    fig.update_layout(
        title=title or None,
        xaxis={"visible": False, "range": [-0.2, width + 0.2]},
        yaxis={
            "range": [-1.1 if tilt else -0.45, 2.1 if tilt else 1.45],
            "tickmode": "array",
            "tickvals": [0, 1],
            "ticktext": ["output", "source"],
            "showgrid": False,
            "zeroline": False,
        },
        height=480 if tilt else 300,
        margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
        legend={"orientation": "h", "y": -0.05},
        font=FONT,
        plot_bgcolor="white",
    )
    return fig


def alignment_heatmap(
    scores: np.ndarray,
    src_words: Sequence[str],
    tgt_words: Sequence[str],
    links: Collection[Link],
    sure: Collection[Link] | None = None,
    possible: Collection[Link] | None = None,
    signed: bool = False,
    specials: str | None = None,
) -> go.Figure:
    """Word scores [output words, source words] (with ``specials``, a label: one more row and column holding the
    special tokens), predicted links as dots, gold sure links as squares, possible ones as diamonds."""
    scores = np.asarray(scores, dtype=float)
    cols, rows = list(src_words), list(tgt_words)
    if specials:
        cols, rows = [*cols, specials], [*rows, specials]
    peak = float(np.abs(scores).max()) if scores.size and np.isfinite(scores).all() else 1.0
    peak = peak or 1.0
    style = {"zmin": -peak, "zmax": peak, "colorscale": DIVERGING} if signed else {"zmin": 0.0, "zmax": peak}
    fig = token_heatmap(scores, cols, rows, x_title="source", y_title="output", value_name="score", **style)
    marks = [("link", list(links), "circle", "#ff7f0e", 9)]
    if sure is not None or possible is not None:
        sure = set(sure or ())
        marks += [
            ("gold possible", sorted(set(possible or ()) - sure), "diamond-open", "#606060", 16),
            ("gold sure", sorted(sure), "square-open", "#000000", 20),
        ]
    for name, found, symbol, colour, size in marks:
        fig.add_trace(
            go.Scatter(
                x=[s for s, _ in found],
                y=[t for _, t in found],
                mode="markers",
                name=name,
                marker={"symbol": symbol, "color": colour, "size": size, "line": {"width": 2, "color": colour}},
                hoverinfo="skip",
                meta=name,
            )
        )
    fig.update_layout(legend={"orientation": "h", "y": -0.02, "yanchor": "top"}, showlegend=True)
    return fig
