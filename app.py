"""Lantern: look inside translation and text-generation models. Run with `streamlit run app.py`."""

from pathlib import Path

import streamlit as st

from ui.cache import warm_up
from ui.state import (
    PageStop,
    apply_pending_state,
    check_widget_state,
    reset_charts,
    restore_from_url,
    show_notes,
    sync_to_url,
)
from ui.widgets import keep_shared_state, session_sidebar

# A local icon: a Material icon as page icon makes every page load fetch it from a font server.
st.set_page_config(page_title="Lantern", page_icon=str(Path(__file__).parent / "ui/assets/lantern.png"), layout="wide")

PAGES = [
    st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("app_pages/translate.py", title="Translate", icon=":material/translate:"),
    st.Page("app_pages/attention.py", title="Attention", icon=":material/grid_on:"),
    st.Page("app_pages/attributions.py", title="Attributions", icon=":material/insights:"),
    st.Page("app_pages/alignments.py", title="Alignments", icon=":material/compare_arrows:"),
    st.Page("app_pages/inside.py", title="Inside", icon=":material/layers:"),
    st.Page("app_pages/whatif.py", title="What if?", icon=":material/alt_route:"),
    st.Page("app_pages/provenance.py", title="Training data", icon=":material/dataset:"),
    st.Page("app_pages/explorer.py", title="Dataset explorer", icon=":material/table_view:"),
    st.Page("app_pages/evaluate.py", title="Evaluate", icon=":material/fact_check:"),
    st.Page("app_pages/training.py", title="Training", icon=":material/show_chart:"),
    st.Page("app_pages/train.py", title="Train a model", icon=":material/model_training:"),
]

apply_pending_state()  # state handed over by the previous run (a loaded session or model), before any widget
restore_from_url()  # a shared link's state, checked like any input
check_widget_state()  # no widget is drawn with a value it cannot show
keep_shared_state()
reset_charts()
# The pages live in app_pages/, not pages/: with a pages/ folder, Streamlit serves a direct link such as
# /translate?src=... with its legacy multipage mode (the page script alone, no app.py, so no URL state)
# until some session has called st.navigation. The menu is drawn here; st.navigation's own is hidden.
page = st.navigation(PAGES, position="hidden")
with st.sidebar:
    for p in PAGES:
        st.page_link(p, label=p.title, icon=p.icon)
    st.divider()
show_notes()
try:
    page.run()
except PageStop:  # the page ended early on purpose (ui.state.stop_page)
    pass
finally:  # also after an error or a stop: the session tools and the URL stay current
    session_sidebar()
    sync_to_url()
    warm_up()  # the model code imports in the background once the first page is drawn
