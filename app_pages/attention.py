import numpy as np
import pandas as pd
import streamlit as st

from explain.attention_views import KIND_LABELS, attention_stack, attention_view
from explain.focus import focus_columns
from ui import cache
from ui.controls import attention_controls
from ui.state import chart, stop_page
from ui.widgets import (
    md_escape,
    page_translation,
    run_or_explain,
    sidebar_inputs,
)
from viz.heatmaps import attention_grid, token_heatmap
from viz.tokens import prettify_tokens

AXES = {
    "cross": ("source", "output"),
    "rollout": ("source", "output"),
    "encoder": ("source (keys)", "source"),
    "decoder": ("output so far (decoder inputs)", "output"),
    "causal": ("prompt and output so far", "output"),
    "causal_rollout": ("prompt and output so far", "output"),
}

st.title("Attention")
inputs = sidebar_inputs()
tr = page_translation(inputs)
maps = run_or_explain(cache.run_attention, *inputs.args())
st.markdown(f"**Output:** {md_escape(tr.text)}")
if maps.cross is None and maps.decoder_self is None:
    st.info("This model returns no attention weights.")
    stop_page()
c = attention_controls(maps, inputs.spec)
x_title, y_title = AXES[c.kind]

focused = maps.src_span is not None and not inputs.whole_prompt
if c.grid:
    stack, cols, rows = attention_stack(maps, c.kind)
    if focused and c.kind == "causal":
        stack, cols, _ = focus_columns(stack, cols, maps.src_span, len(maps.src_tokens))
    chart(attention_grid(stack, cols, rows, c.grid_layers), "attn.grid_chart")
    st.caption(
        "Each panel is one head of one layer; rows and columns as in the single map. Hover for tokens and weights."
    )
    stop_page()

weights, cols, rows = attention_view(maps, c.kind, c.layer, c.head, c.words, whole_prompt=not focused)
chart(token_heatmap(weights, cols, rows, x_title=x_title, y_title=y_title), "attn.heatmap")
st.caption(
    f"{KIND_LABELS[c.kind].capitalize()}. Each row sums to 1: how the row's position spread its attention over the "
    "columns. Rollout multiplies the layers' attention (with the residual connection) to trace mixed "
    "representations back to input tokens. Attention shows where the model looked, not why it chose a word: "
    "compare with the Attributions page."
)
if focused:
    hidden = 1 - weights.sum(1)
    st.caption(
        f"Only your sentence's tokens and the output are shown: the rest of the few-shot prompt got "
        f"{hidden.mean():.0%} of the attention on average (up to {hidden.max():.0%} for one output token; "
        "the first token of a sequence often collects attention that goes nowhere in particular). "
        "Choose “the whole prompt” in the sidebar to see every column."
    )
if maps.n_layers == 1 and maps.n_heads == 1:
    st.caption("This model has a single attention (one layer, one head): the LSTM's additive attention.")

peak = weights.argmax(1)
src, tgt = prettify_tokens(cols), prettify_tokens(rows)
st.subheader("Strongest link of each row")
table = {"row": tgt, "looked most at": [src[j] for j in peak], "weight": np.round(weights.max(1), 3)}
if len(tgt) == len(tr.tgt_tokens) and c.kind != "encoder":
    table["probability"] = np.round(tr.probs, 3)
st.dataframe(pd.DataFrame(table), hide_index=True, width="stretch")

if c.compare is not None:
    st.subheader("Side by side")
    left, right = st.columns(2)
    other_tr = run_or_explain(cache.run_translation, c.compare, inputs.text, inputs.decoding)
    other_maps = run_or_explain(cache.run_attention, c.compare, inputs.text, inputs.decoding)
    for col, spec, t, m in ((left, inputs.spec, tr, maps), (right, c.compare, other_tr, other_maps)):
        kind = "cross" if m.cross is not None else "causal"
        w, xs, ys = attention_view(m, kind, "mean", "mean", c.words, whole_prompt=inputs.whole_prompt)
        col.markdown(f"**{md_escape(spec.title)}**  \n{md_escape(t.text)}")
        with col:
            chart(token_heatmap(w, xs, ys, x_title=AXES[kind][0], y_title="output"), f"attn.cmp.{spec.name}")
    st.caption("Both maps: mean over layers and heads, one colour scale (0 to 1).")
