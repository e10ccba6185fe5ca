import numpy as np
import pandas as pd
import streamlit as st

from ui import cache
from ui.widgets import input_notes, md_escape, run_or_explain, sidebar_inputs
from viz.heatmaps import attention_heatmap
from viz.tokens import prettify_tokens

st.title("Attention")
inputs = sidebar_inputs()
tr = run_or_explain(cache.run_translation, *inputs.args())
maps = run_or_explain(cache.run_attention, *inputs.args())
input_notes(tr)
st.markdown(f"**Output:** {md_escape(tr.text)}")

if maps.cross is None:
    st.info("This model has no cross-attention to show.")
    st.stop()
layer, head = 0, 0
if maps.n_layers > 1 or maps.n_heads > 1:
    c1, c2 = st.columns(2)
    layer = c1.selectbox("Layer", range(maps.n_layers), key="attn.layer")
    head = c2.selectbox("Head", ["mean", "max", *range(maps.n_heads)], key="attn.head")
else:
    st.caption("This model has a single attention (one layer, one head).")

st.plotly_chart(attention_heatmap(maps, layer=layer, head=head), key="attn.heatmap")
st.caption(
    "Rows: output tokens, top to bottom. Columns: source tokens. Each row sums to 1: it is how the "
    "decoder spread its attention over the source while producing that row's token. Hover for values."
)

weights = maps.cross[layer].mean(0) if head in ("mean", "max") else maps.cross[layer][int(head)]
src, tgt = prettify_tokens(maps.src_tokens), prettify_tokens(maps.tgt_tokens)
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
