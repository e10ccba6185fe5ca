import numpy as np
import pandas as pd
import streamlit as st

from ui import cache
from ui.widgets import input_notes, md_escape, run_or_explain, sidebar_inputs
from viz.heatmaps import attention_heatmap, token_heatmap
from viz.tokens import prettify_tokens

st.title("Attention")
inputs = sidebar_inputs()
tr = run_or_explain(cache.run_translation, *inputs.args())
maps = run_or_explain(cache.run_attention, *inputs.args())
input_notes(tr)
st.markdown(f"**Output:** {md_escape(tr.text)}")

stack = maps.cross if maps.cross is not None else maps.decoder_self
layer, head = 0, 0
if stack.shape[0] > 1 or stack.shape[1] > 1:
    c1, c2 = st.columns(2)
    layer = c1.selectbox("Layer", range(stack.shape[0]), key="attn.layer")
    head = c2.selectbox("Head", ["mean", "max", *range(stack.shape[1])], key="attn.head")
else:
    st.caption("This model has a single attention (one layer, one head).")

if maps.cross is not None:
    st.plotly_chart(attention_heatmap(maps, layer=layer, head=head), key="attn.heatmap")
    st.caption(
        "Rows: output tokens, top to bottom. Columns: source tokens. Each row sums to 1: it is how the "
        "decoder spread its attention over the source while producing that row's token. Hover for values."
    )
    weights = (
        maps.cross[layer].mean(0)
        if head == "mean"
        else maps.cross[layer].max(0)
        if head == "max"
        else maps.cross[layer][int(head)]
    )
    columns = maps.src_tokens
else:  # decoder-only: the rows that predict each generated token, over prompt and earlier output
    per_head = maps.decoder_self[layer][:, len(maps.src_tokens) - 1 :]
    weights = per_head.mean(0) if head == "mean" else per_head.max(0) if head == "max" else per_head[int(head)]
    columns = (*maps.src_tokens, *maps.tgt_tokens[:-1])
    st.plotly_chart(
        token_heatmap(weights, columns, maps.tgt_tokens, x_title="prompt and output so far"), key="attn.heatmap"
    )
    st.caption(
        "A decoder-only model has no source to cross-attend to: each row is the causal self-attention of the "
        "position that predicted that output token, over the prompt and the output before it. Rows sum to 1."
    )
src, tgt = prettify_tokens(columns), prettify_tokens(maps.tgt_tokens)
peak = weights.argmax(1)
st.subheader("Strongest link of each output token")
st.dataframe(
    pd.DataFrame(
        {
            "output token": tgt,
            "looked most at": [src[j] for j in peak],
            "weight": np.round(weights.max(1), 3),
            "probability": np.round(tr.probs, 3),
        }
    ),
    hide_index=True,
    width="stretch",
)
