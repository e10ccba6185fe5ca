"""The controls of the Attention and Attributions pages; each returns plain values."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from common.limits import limit
from explain.aggregate import AGGREGATIONS
from explain.attention_views import KIND_LABELS, attention_stack, available_kinds
from explain.methods import METHODS
from explain.types import AttentionMaps, Translation
from models.registry import ModelSpec
from ui.state import stop_page
from ui.widgets import bounds, offered_models
from viz.tokens import prettify_token

TARGET_LABELS = {
    "logprob": "log-probability of each token",
    "prob": "probability of each token",
    "contrast": "contrast with an alternative",
}


@dataclass(frozen=True)
class AttributionControls:
    method: str
    target: str
    contrast_step: int | None
    contrast_token: int | None  # a token id of the output vocabulary
    contrast_text: str | None
    with_prefix: bool
    n_steps: int
    n_samples: int
    compare: str | None  # a second method shown side by side
    word_agg: str | None  # None: tokens; else merge subwords into words with this aggregation
    baseline: str = "pad"
    noise_level: float = 0.15  # SmoothGrad's noise, a share of the range of the input's embeddings

    def args(self, method: str | None = None) -> tuple:
        """Arguments of ``ui.cache.run_attribution`` after the input arguments."""
        return (
            method or self.method,
            self.target,
            self.contrast_step,
            self.contrast_token,
            self.contrast_text,
            self.with_prefix,
            self.n_steps,
            self.n_samples,
            self.baseline,
            self.noise_level,
        )


def attribution_controls(translation: Translation, decoder_only: bool = False) -> AttributionControls:
    """Method, target, granularity and settings of the Attributions page.

    Decoder-only models default to the ``<unk>`` baseline: they normalise first (RMSNorm/LayerNorm),
    which makes an all-zero padding baseline degenerate for path methods.
    """
    ids = list(METHODS)
    c1, c2, c3 = st.columns(3)
    method = c1.selectbox(
        "Method", ids, index=ids.index("input_x_gradient"), key="attr.method", format_func=lambda m: METHODS[m].title
    )
    c1.caption(METHODS[method].description)
    target = c2.radio("What is explained", list(TARGET_LABELS), format_func=TARGET_LABELS.get, key="attr.target")
    granularity = c3.radio("Granularity", ["tokens", "words"], horizontal=True, key="attr.granularity")
    word_agg = c3.selectbox("Merge subwords by", AGGREGATIONS, key="attr.agg") if granularity == "words" else None
    step = token = text = None
    if target == "contrast":
        mode = c2.radio("Alternative", ["one token", "a whole output"], horizontal=True, key="attr.contrast_mode")
        if mode == "one token":
            tokens = translation.tgt_tokens
            step = c2.selectbox(
                "At output token",
                range(len(tokens)),
                key="attr.contrast_step",
                format_func=lambda t: f"{t}: {tokens[t]}",
            )
            step = min(step, len(tokens) - 1)
            # token ids, not display strings: byte-level vocabularies show a token differently from how it is stored
            names = dict(zip(translation.alt_ids[step], translation.alt_tokens[step], strict=True))
            options = [i for i in translation.alt_ids[step] if i != translation.tgt_ids[step]]
            token = c2.selectbox(
                "Rather than",
                options,
                key="attr.contrast_token",
                format_func=lambda i: prettify_token(names[i]),
                help="The model's runners-up at that step.",
            )
        else:
            text = c2.text_input(
                "Rather than this output",
                key="attr.contrast_text",
                max_chars=int(limit("input_chars")),
                help="Compared token by token, each after the model's own prefix.",
            )
            if not text.strip():
                st.info("Type the alternative output to contrast with.")
                stop_page()
    others = ["", *[m for m in ids if m != method]]
    with st.expander("Settings"):
        with_prefix = st.checkbox(
            "Also attribute to the target prefix (earlier output tokens)", True, key="attr.prefix"
        )
        n_steps = st.slider("Integration steps (integrated gradients)", *bounds("attr.steps"), 32, key="attr.steps")
        n_samples = st.slider(
            "Samples (Gradient SHAP, SmoothGrad, Shapley, LIME)", *bounds("attr.samples"), 25, key="attr.samples"
        )
        noise_level = st.slider(
            "Noise level (SmoothGrad)",
            *bounds("attr.noise"),
            0.15,
            0.05,
            key="attr.noise",
            help="The noise's standard deviation as a share of the range (max − min) of the input's embeddings.",
        )
        compare = st.selectbox(
            "Compare with", others, key="attr.compare", format_func=lambda m: METHODS[m].title if m else "(nothing)"
        )
        baselines = ["unk", "pad"] if decoder_only else ["pad", "unk"]
        baseline = st.radio(
            "Baseline (what a token is replaced with)",
            baselines,
            horizontal=True,
            key="attr.baseline",
            format_func={"pad": "padding", "unk": "<unk> token"}.get,
            help="Path and perturbation methods compare the input with this baseline.",
        )
    return AttributionControls(
        method,
        target,
        step,
        token,
        text,
        with_prefix,
        n_steps,
        n_samples,
        compare or None,
        word_agg,
        baseline,
        noise_level,
    )


@dataclass(frozen=True)
class AttentionControls:
    kind: str
    layer: int | str
    head: int | str
    words: bool
    grid: bool
    grid_layers: tuple[int, ...]
    compare: ModelSpec | None


def attention_controls(maps: AttentionMaps, current: ModelSpec) -> AttentionControls:
    """Kind of attention, layer, head, granularity, view and a model to compare with."""
    kinds = available_kinds(maps)
    c1, c2, c3, c4 = st.columns([3, 1, 1, 1])
    kind = c1.selectbox("Attention", kinds, format_func=KIND_LABELS.get, key="attn.kind")
    stacked = kind not in ("rollout", "causal_rollout")
    n_layers, n_heads = attention_stack(maps, kind)[0].shape[:2] if stacked else (0, 0)
    layer = c2.selectbox(
        "Layer",
        ["mean", *range(n_layers)],
        key="attn.layer",
        disabled=not stacked,
        help="One layer, or the mean over layers.",
    )
    head = c3.selectbox(
        "Head",
        ["mean", "max", *range(n_heads)],
        key="attn.head",
        disabled=not stacked,
        help="One head, or the mean / max over the layer's heads.",
    )
    words = c4.radio("Granularity", ["tokens", "words"], key="attn.granularity") == "words"
    grid = (
        stacked
        and st.toggle(
            "All layers × heads (model view)",
            key="attn.grid",
            disabled=words,
            help="Small multiples of every head of every layer, on one colour scale.",
        )
        and not words
    )
    grid_layers: tuple[int, ...] = ()
    if grid:
        if n_layers > 6:
            lo, hi = st.slider("Layers shown", 0, n_layers - 1, (0, 5), key="attn.grid_layers")
            grid_layers = tuple(range(lo, hi + 1))
        else:
            grid_layers = tuple(range(n_layers))
    others = {s.name: s for s in offered_models().values() if s.name != current.name}
    name = st.selectbox(
        "Compare with another model",
        ["", *others],
        key="attn.compare",
        format_func=lambda n: others[n].title if n else "(no comparison)",
    )
    return AttentionControls(kind, layer, head, words, grid, grid_layers, others.get(name))
