"""Lantern: look inside translation models. Run with `streamlit run app.py`."""

import streamlit as st

from ui.widgets import keep_shared_state

st.set_page_config(page_title="Lantern", page_icon=":material/emoji_objects:", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/translate.py", title="Translate", icon=":material/translate:"),
    st.Page("pages/attention.py", title="Attention", icon=":material/grid_on:"),
    st.Page("pages/attributions.py", title="Attributions", icon=":material/insights:"),
    st.Page("pages/whatif.py", title="What if?", icon=":material/alt_route:"),
    st.Page("pages/evaluate.py", title="Evaluate", icon=":material/fact_check:"),
    st.Page("pages/training.py", title="Training", icon=":material/show_chart:"),
]

keep_shared_state()
st.navigation(PAGES).run()
