"""Lantern: look inside translation and text-generation models. Run with `streamlit run app.py`."""

import streamlit as st

from ui.state import reset_charts, restore_from_url, sync_to_url
from ui.widgets import keep_shared_state, session_sidebar

st.set_page_config(page_title="Lantern", page_icon=":material/emoji_objects:", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/translate.py", title="Translate", icon=":material/translate:"),
    st.Page("pages/attention.py", title="Attention", icon=":material/grid_on:"),
    st.Page("pages/attributions.py", title="Attributions", icon=":material/insights:"),
    st.Page("pages/whatif.py", title="What if?", icon=":material/alt_route:"),
    st.Page("pages/evaluate.py", title="Evaluate", icon=":material/fact_check:"),
    st.Page("pages/training.py", title="Training", icon=":material/show_chart:"),
    st.Page("pages/train.py", title="Train a model", icon=":material/model_training:"),
]

restore_from_url()  # a shared link's state, before any widget exists
keep_shared_state()
reset_charts()
# The menu is drawn here rather than by st.navigation: with client.showSidebarNavigation off, Streamlit never
# shows its auto-discovered pages/ list, which would otherwise appear before this script's first run ends.
page = st.navigation(PAGES, position="hidden")
with st.sidebar:
    for p in PAGES:
        st.page_link(p, label=p.title, icon=p.icon)
    st.divider()
try:
    page.run()
finally:  # also after a page's st.stop(): the session tools and the URL stay current
    session_sidebar()
    sync_to_url()
