import streamlit as st

from ui import cache
from ui.inside import (
    choose,
    embeddings_view,
    ffn_view,
    logit_lens_view,
    neuron_view,
    norms_view,
    search_view,
    states_view,
    views_of,
)
from ui.widgets import md_escape, page_translation, run_or_explain, sidebar_inputs

st.title("Inside")
inputs = sidebar_inputs()
tr = page_translation(inputs)
anatomy = run_or_explain(cache.run_anatomy, inputs.spec)
st.markdown(f"**Output:** {md_escape(tr.text)}")
st.caption(
    "What the model computes on the way to its output: the LSTM's states and gates, or a Transformer's layers "
    "(what each would predict, how large its stream is, what one head and the feed-forward neurons do), and the "
    "token embeddings. Only the view chosen is computed."
)
views = views_of(anatomy)
view = choose("View", list(views), "inside.view", format_func=views.get)

if view == "lens":
    logit_lens_view(inputs, tr)
elif view == "norms":
    norms_view(inputs, tr, anatomy)
elif view == "neuron":
    neuron_view(inputs, tr, anatomy)
elif view == "ffn":
    ffn_view(inputs, tr, anatomy)
elif view == "states":
    states_view(inputs, tr, anatomy)
elif view == "search":
    search_view(inputs, tr)
else:
    embeddings_view(inputs, tr, anatomy)
