"""Results shown inline in Jupyter: the same plotly figures the app draws, as one HTML fragment.

``Translation``, ``AttentionMaps`` and ``Attribution`` call ``to_html`` from their ``_repr_html_``. plotly.js
(about 4.6 MB) is embedded in the first figure a kernel shows and reused by the later ones, so notebooks
work offline without growing by megabytes per cell; ``include_plotlyjs`` forces it into every figure
(for HTML files meant to be opened on their own).
"""

from __future__ import annotations

import html

import plotly.graph_objects as go

from explain.attention_views import KIND_LABELS, attention_view, available_kinds
from explain.types import AttentionMaps, Attribution, Translation
from viz.bars import step_confidence
from viz.heatmaps import attribution_heatmap, token_heatmap
from viz.inside import inside_figure
from viz.tokens import prettify_tokens

_plotlyjs_sent = False


def figure_html(fig: go.Figure, include_plotlyjs: bool | None = None) -> str:
    """A figure as an HTML fragment; plotly.js is included the first time (or when asked)."""
    global _plotlyjs_sent
    include = include_plotlyjs if include_plotlyjs is not None else not _plotlyjs_sent
    _plotlyjs_sent = _plotlyjs_sent or include
    return fig.to_html(full_html=False, include_plotlyjs=bool(include), config={"displaylogo": False})


def _header(title: str, lines: list[str]) -> str:
    body = "".join(f"<div>{html.escape(line)}</div>" for line in lines)
    return f"<div style='font-family:sans-serif;margin:4px 0'><b>{html.escape(title)}</b>{body}</div>"


def translation_html(tr: Translation, include_plotlyjs: bool | None = None) -> str:
    """The output with its decoding, then each token's probability and entropy (the Attributions page's chart)."""
    head = _header(
        f"{tr.model}: {tr.text}",
        [f"{tr.decoding}; {len(tr.tgt_tokens)} tokens; log-probability {float(tr.logprobs.sum()):.2f}"],
    )
    return head + figure_html(step_confidence(tr.tgt_tokens, tr.logprobs, tr.entropy), include_plotlyjs)


def attention_html(maps: AttentionMaps, include_plotlyjs: bool | None = None) -> str:
    """The first view the Attention page shows: cross-attention (or a decoder-only model's causal attention),
    mean over layers and heads."""
    kinds = available_kinds(maps)
    if not kinds:
        return _header("Attention", ["this model returned no attention weights"])
    weights, cols, rows = attention_view(maps, kinds[0])
    title = f"{KIND_LABELS[kinds[0]]}, mean over layers and heads"
    fig = token_heatmap(weights, cols, rows, title=title)
    return figure_html(fig, include_plotlyjs)


def attribution_html(attr: Attribution, include_plotlyjs: bool | None = None) -> str:
    """The Attributions page's heatmap of every output token over the source and the target prefix."""
    lines = [f"target: {attr.target}" + (f" ({attr.contrast})" if attr.contrast else "")]
    if attr.delta is not None:
        lines.append(f"completeness gap (largest over output tokens): {abs(attr.delta).max():.4f}")
    head = _header(f"{attr.method} attributions of {attr.model}: {' '.join(prettify_tokens(attr.tgt_tokens))}", lines)
    return head + figure_html(attribution_heatmap(attr), include_plotlyjs)


def to_html(result: object, include_plotlyjs: bool | None = None) -> str:
    if isinstance(result, Translation):
        return translation_html(result, include_plotlyjs)
    if isinstance(result, AttentionMaps):
        return attention_html(result, include_plotlyjs)
    if isinstance(result, Attribution):
        return attribution_html(result, include_plotlyjs)
    figure = inside_figure(result)  # the Inside page's results (explain.inside_types)
    if figure is not None:
        return figure_html(figure, include_plotlyjs)
    raise TypeError(f"no notebook view for {type(result).__name__}")
