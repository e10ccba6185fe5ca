"""The views of the Inside page: each draws its controls, runs its one cached computation and shows the result.

A page run computes only the view chosen (``VIEWS[family]``); every control's value is in the URL
(``ui.fields``: the ``inside.*`` keys) and a stored value that does not fit this model is dropped before the
widget is drawn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NoReturn, TypeVar

import numpy as np
import pandas as pd
import streamlit as st

from explain.inside_types import LSTM_QUANTITIES, Anatomy
from explain.inside_views import (
    ATTENTION_KIND_LABELS,
    QUANTITY_LABELS,
    SIDE_LABELS,
    UNIT_ORDERS,
    first_layer_on_top,
    norm_series,
    parse_units,
    pick_units,
)
from explain.types import Translation
from models.decoding import InputError
from training.corpora import DataNotFoundError
from ui import cache
from ui.state import chart, stop_page
from ui.widgets import Inputs, md_escape, remember, run_or_explain
from viz.inside import (
    embedding_scatter,
    logit_lens_heatmap,
    lstm_heatmap,
    neuron_view_figure,
    norm_curves,
    norm_heatmap,
    pattern_heatmap,
    top_neurons_heatmap,
)
from viz.tokens import prettify_token, prettify_tokens

T = TypeVar("T")
VIEWS = {
    "lstm": {"states": "States and gates", "search": "Pattern search", "embeddings": "Embeddings"},
    "transformer": {
        "lens": "Logit lens",
        "norms": "Layer norms",
        "neuron": "Neuron view",
        "ffn": "FFN neurons",
        "embeddings": "Embeddings",
    },
}


def views_of(anatomy: Anatomy) -> dict[str, str]:
    return VIEWS["lstm" if anatomy.family == "lstm" else "transformer"]


def fit(key: str, options: Sequence[object]) -> None:
    """Drop a stored value (from a link, a session or another model) this widget cannot show here."""
    if key in st.session_state and st.session_state[key] not in options:
        del st.session_state[key]


def choose(
    label: str, options: Sequence[T], key: str, where: object = None, default: T | None = None, **kwargs: object
) -> T:
    """A selectbox that never shows a stored value it lacks; ``default`` (when valid) instead of the first option."""
    options = list(options)
    fit(key, options)
    if key not in st.session_state and default in options:
        st.session_state[key] = default
    return (where or st).selectbox(label, options, key=key, **kwargs)


def number(label: str, low: int, high: int, default: int, key: str, where: object = None) -> int:
    """A whole number within [low, high]: the bounds depend on the model, so a stored value outside is dropped."""
    if key in st.session_state and not low <= st.session_state[key] <= high:
        del st.session_state[key]
    return int((where or st).number_input(label, low, high, min(max(default, low), high), key=key))


def compute(fn: Callable[..., T], *args: object) -> T:
    """A view's computation. A request it cannot serve (a token not in the vocabulary...) is an error message that
    says why; anything else is shown as every page shows it (``run_or_explain``), never as a traceback."""
    try:
        return fn(*args)
    except InputError as err:
        st.error(md_escape(str(err)))
        stop_page()
    except Exception as err:  # handed to the pages' one handler
        return run_or_explain(_reraise, err)


def _reraise(err: Exception) -> NoReturn:
    raise err


def csv_button(frame: pd.DataFrame, name: str, key: str) -> None:
    st.download_button("Table as CSV", frame.to_csv(index=False), f"{name}.csv", "text/csv", key=key)


def position_labels(tr: Translation, side: str) -> list[str]:
    """What each position of a side reads (and, where it generates, which output token it predicts)."""
    src, out = prettify_tokens(tr.src_tokens), prettify_tokens(tr.tgt_tokens)
    if side in ("encoder", "encoder_forward", "encoder_backward"):
        return [f"{i}: {t}" for i, t in enumerate(src)]
    if side in ("decoder", "cross"):
        reads = ["(start)", *out[:-1]]
        return [f"{t}: {reads[t]} → predicts “{out[t]}”" for t in range(len(out))]
    reads, first = [*src, *out[:-1]], len(src) - 1
    return [f"{i}: {tok}" + (f" → predicts “{out[i - first]}”" if i >= first else "") for i, tok in enumerate(reads)]


def _sides(anatomy: Anatomy) -> list[str]:
    return list(anatomy.layers)


# --- Transformers ----------------------------------------------------------------------------------------------


def logit_lens_view(inputs: Inputs, tr: Translation) -> None:
    top_k = st.slider("Tokens per cell (hover)", 1, 20, 5, key="inside.topk")
    lens = compute(cache.run_logit_lens, *inputs.args(), int(top_k))
    chart(logit_lens_heatmap(lens), "inside.lens")
    st.caption(
        "Each row applies the model's final norm and output head to the residual stream after that layer (row 0: the "
        "embeddings), as if the model stopped there. Cell text: that layer's most probable token; colour: the "
        "probability it gives the token the model finally produced (hover for the top tokens and its rank). "
        f"The last row is the model's own output (largest difference {lens.final_gap:.1e}). **Caveat:** early layers "
        "are not in the output head's basis, so their rows are biased toward what the head favours; the tuned lens "
        "(Belrose et al. 2023) learns a translator per layer to fix that."
    )
    first = first_layer_on_top(lens)
    st.dataframe(
        pd.DataFrame(
            {
                "output token": prettify_tokens(lens.tgt_tokens),
                "top from layer": [int(f) if f >= 0 else None for f in first],
                "p at the last layer": np.round(lens.target_probs[-1], 3),
            }
        ),
        hide_index=True,
        width="stretch",
    )
    remember(inside={"view": "lens", "first_layer_on_top": [int(f) for f in first]})
    csv_button(lens.to_pandas(), f"lantern-{lens.model}-logit-lens", "inside.lens_csv")


def norms_view(inputs: Inputs, tr: Translation, anatomy: Anatomy) -> None:
    c1, c2 = st.columns(2)
    sides = _sides(anatomy)
    side = choose("Side", sides, "inside.side", c1, "decoder", format_func=SIDE_LABELS.get)
    labels = position_labels(tr, side)
    position = choose(
        "Position",
        ["mean", *range(len(labels))],
        "inside.norm_position",
        c2,
        format_func=lambda p: "mean over positions" if p == "mean" else labels[p],
    )
    norms = compute(cache.run_layer_norms, *inputs.args(), side)
    at = None if position == "mean" else int(position)
    chart(norm_curves(norm_series(norms, at)), "inside.norms")
    chart(norm_heatmap(norms), "inside.norm_map")
    st.caption(
        "L2 norms. The residual stream is what each layer reads and writes; the attention and feed-forward outputs "
        "are what each block adds to it (Gemma: after its post-norms). A block whose output is small next to the "
        "stream changes little. Marian normalises the stream after every block (post-norm), so its stream norm is set "
        "by the LayerNorm gains instead of growing with depth."
    )
    csv_button(norms.to_pandas(), f"lantern-{norms.model}-norms", "inside.norms_csv")


def neuron_view(inputs: Inputs, tr: Translation, anatomy: Anatomy) -> None:
    c1, c2, c3, c4 = st.columns([2, 1, 1, 3])
    kind = choose("Attention", anatomy.kinds, "inside.kind", c1, "cross", format_func=ATTENTION_KIND_LABELS.get)
    side = "decoder" if kind == "cross" else kind
    layer = choose("Layer", range(anatomy.layers[side]), "inside.layer", c2)
    head = choose("Head", range(anatomy.heads[kind]), "inside.head", c3)
    labels = position_labels(tr, kind)
    first = len(tr.src_tokens) - 1 if kind == "causal" else 0  # the first position that predicts an output token
    position = choose(
        "Query position", range(len(labels)), "inside.position", c4, first, format_func=labels.__getitem__
    )
    view = compute(cache.run_neuron_view, *inputs.args(), int(layer), int(head), int(position), kind)
    chart(neuron_view_figure(view), "inside.neuron")
    grouped = f" (it shares key/value head {view.kv_head} with other heads)" if view.kv_head != view.head else ""
    st.caption(
        f"How head {view.head} of layer {view.layer}{grouped} weighs each key for the query "
        f"“{prettify_token(view.query_token)}”: q ∘ k multiplies query and key element by element; its sum times "
        f"{view.scaling:.3g} is the score, and the softmax of the scores over the keys it may attend (the mask "
        "decides: causal, sliding window) is the attention. Queries and keys are as the model multiplies them "
        "(after RoPE and QK-norm where it has them)."
    )
    csv_button(view.to_pandas(), f"lantern-{view.model}-neuron-view", "inside.neuron_csv")


def ffn_view(inputs: Inputs, tr: Translation, anatomy: Anatomy) -> None:
    c1, c2, c3, c4 = st.columns([2, 1, 3, 1])
    sides = _sides(anatomy)
    side = choose("Side", sides, "inside.side", c1, "decoder", format_func=SIDE_LABELS.get)
    layer = choose("Layer", range(anatomy.layers[side]), "inside.layer", c2)
    labels = position_labels(tr, side)
    first = len(tr.src_tokens) - 1 if side == "causal" else 0
    position = choose("Position", range(len(labels)), "inside.position", c3, first, format_func=labels.__getitem__)
    k = number("Neurons", 1, min(200, anatomy.ffn[side]), 20, "inside.neurons", c4)
    top = compute(cache.run_top_neurons, *inputs.args(), int(layer), int(position), side, int(k))
    chart(top_neurons_heatmap(top), "inside.ffn")
    st.caption(
        f"The {len(top.neurons)} of {top.n_neurons} feed-forward neurons of layer {top.layer} most active at the "
        "outlined position, and what they do at every other position. The activation is the FFN's hidden value "
        "(after the non-linearity and the gate): what its output projection reads."
    )
    csv_button(top.to_pandas(), f"lantern-{top.model}-ffn", "inside.ffn_csv")


# --- the LSTM --------------------------------------------------------------------------------------------------


def states_view(inputs: Inputs, tr: Translation, anatomy: Anatomy) -> None:
    c1, c2, c3 = st.columns(3)
    side = choose("Side", list(anatomy.units), "inside.side", c1, format_func=SIDE_LABELS.get)
    quantity = choose("Quantity", LSTM_QUANTITIES, "inside.quantity", c2, format_func=QUANTITY_LABELS.get)
    order = choose("Units", list(UNIT_ORDERS), "inside.order", c3, format_func=UNIT_ORDERS.get)
    states = compute(cache.run_lstm_states, *inputs.args())
    run = states.run(side)
    layers = anatomy.layers[side]
    layer = choose("Layer", range(layers), "inside.layer") if layers > 1 else 0
    values = run.values(quantity, int(layer))
    c4, c5, c6 = st.columns([1, 2, 2])
    n_units = values.shape[1]
    k = number("How many", 1, min(256, n_units), 32, "inside.n_units", c4)
    labels = [f"{i}: {t}" for i, t in enumerate(prettify_tokens(run.tokens))]
    position = choose(
        "Token (for “most active at”)", range(len(labels)), "inside.position", c5, format_func=labels.__getitem__
    )
    typed = c6.text_input("Or these units", key="inside.units", placeholder="e.g. 3, 17, 40-42", max_chars=200)
    try:
        wanted = parse_units(typed, n_units) if typed.strip() else None
    except ValueError as err:
        st.error(f"Units: {md_escape(str(err))}.")
        stop_page()
    units = pick_units(values, order, int(k), int(position), wanted)
    chart(lstm_heatmap(states, side, quantity, units.tolist(), int(layer)), "inside.states")
    st.caption(
        "One row per token, one column per unit. nn.LSTM returns hidden states only: the gates are recomputed from "
        f"its weights step by step (largest difference from nn.LSTM's own states: {states.max_error:.1e}). "
        "Forget gate near 1: the unit keeps its memory; input gate near 1: it writes the candidate."
    )
    csv_button(states.to_pandas(), f"lantern-{states.model}-lstm-states", "inside.states_csv")


def _sentences(inputs: Inputs) -> tuple[tuple[str, ...], str]:
    """The sentences to search: the model's test split, or the lines the user typed when it is not here."""
    try:
        found = cache.test_sentences(inputs.spec)
        return found, f"the {len(found):,} source sentences of {inputs.spec.name}'s test split"
    except (DataNotFoundError, ValueError, OSError) as err:
        st.caption(f"The test split is not available here ({md_escape(str(err))[:200]}).")
    typed = st.text_area("Sentences to search, one a line", key="inside.sentences", height=120)
    lines = tuple(dict.fromkeys(line.strip() for line in typed.splitlines() if line.strip()))
    if not lines:
        st.info("Type some sentences to search for the pattern.")
        stop_page()
    return lines, f"the {len(lines):,} sentences typed"


def search_view(inputs: Inputs, tr: Translation) -> None:
    labels = [f"{i}: {t}" for i, t in enumerate(prettify_tokens(tr.src_tokens))]
    n = len(labels)
    c1, c2, c6 = st.columns(3)
    side = choose(
        "Encoder direction", ["encoder_forward", "encoder_backward"], "inside.side", c1, format_func=SIDE_LABELS.get
    )
    start = choose("Span from", range(n), "inside.start", c2, min(2, n - 1), format_func=labels.__getitem__)
    end = choose(
        "to (inclusive)",
        range(start + 1, n + 1),
        "inside.end",
        c6,
        min(start + 2, n),
        format_func=lambda e: labels[e - 1],
    )
    c3, c4, c5 = st.columns(3)
    threshold = c3.slider("On above", -1.0, 1.0, 0.3, 0.05, key="inside.threshold")
    min_on = c4.slider(
        "Share of the units on in a match",
        0.1,
        1.0,
        0.75,
        0.05,
        key="inside.min_on",
        help="LSTMVis asks for all of them (1.0); a little less finds near matches too.",
    )
    k = number("Matches", 1, 256, 20, "inside.matches", c5)
    sentences, where = _sentences(inputs)
    args = (side, (int(start), int(end)), float(threshold), int(k), float(min_on), sentences)
    found = compute(cache.run_pattern_search, *inputs.args(), *args)
    if not len(found.units):
        st.warning(
            f"No unit is above {threshold:g} on every token of the span and below it on the tokens around it. "
            "Lower the threshold or pick a shorter span."
        )
        stop_page()
    chart(pattern_heatmap(found), "inside.pattern")
    st.markdown(f"**{len(found.units)} units** selected; **{len(found.matches)} matches** in {where}.")
    rows = [
        {
            "sentence": " ".join(prettify_tokens(m.tokens[: m.start]))
            + " 【"
            + " ".join(prettify_tokens(m.tokens[m.start : m.end]))
            + "】 "
            + " ".join(prettify_tokens(m.tokens[m.end :])),
            "span": " ".join(prettify_tokens(m.tokens[m.start : m.end])),
            "units on": round(m.score, 3),
        }
        for m in found.matches
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    st.caption(
        "LSTMVis (Strobelt et al. 2018): the units on over the selected span and off right before and after it "
        "form a pattern; a match is a stretch of another sentence where the same units are on (【】 marks it)."
    )
    remember(inside={"view": "search", "units": found.units.tolist(), "matches": [r["span"] for r in rows]})
    csv_button(found.to_pandas(), f"lantern-{found.model}-pattern-search", "inside.search_csv")


# --- every model -----------------------------------------------------------------------------------------------


def embeddings_view(inputs: Inputs, tr: Translation, anatomy: Anatomy) -> None:
    c1, c2 = st.columns(2)
    sides = ["source"] if anatomy.family == "causal" else ["source", "target"]
    side = choose(
        "Embeddings",
        sides,
        "inside.embed_side",
        c1,
        format_func={"source": "source (input)", "target": "target (output)"}.get,
    )
    n = c2.slider("Vocabulary tokens on the map", 100, 5000, 1000, 100, key="inside.n")
    sentence = tr.src_tokens if side == "source" else tr.tgt_tokens
    if side == "source" and tr.src_span is not None and not inputs.whole_prompt:  # the sentence, not the prompt
        sentence = tr.src_tokens[tr.src_span[0] : tr.src_span[1]]
    proj = compute(cache.run_embedding_projection, inputs.spec, side, int(n), tuple(sentence))
    chart(embedding_scatter(proj), "inside.embeddings")
    st.caption(
        f"PCA of {proj.sample} (grey) with this sentence's tokens (red): the two directions along which these "
        "embeddings vary most. PCA is linear and exact, so positions are comparable across tokens; nearby points "
        "may still differ in the other dimensions: the neighbours below use all of them."
    )
    c3, c4, c5 = st.columns([2, 2, 1])
    options = list(dict.fromkeys(sentence))
    picked = choose("Neighbours of", options, "inside.pick", c3, format_func=prettify_token)
    typed = c4.text_input("or any token", key="inside.token", max_chars=100)
    k = number("How many", 1, 200, 10, "inside.neighbours", c5)
    token = typed.strip() or picked
    near = compute(cache.run_neighbours, inputs.spec, token, side, int(k))
    st.dataframe(
        pd.DataFrame({"token": prettify_tokens(near.tokens), "cosine similarity": np.round(near.similarity, 3)}),
        hide_index=True,
        width="stretch",
    )
    csv_button(proj.to_pandas(), f"lantern-{proj.model}-embeddings", "inside.embeddings_csv")
