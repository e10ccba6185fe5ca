import streamlit as st

from models.sources import PACKAGED
from ui import cache
from ui.state import chart
from viz.curves import training_curves

st.title("Training")
st.caption(
    "How each shipped model learned, from the history file its training run wrote: the training "
    "loss (label-smoothed), the validation loss, and BLEU/chrF of greedy translations of the "
    "validation split. Training runs outside the app: `python -m training.train configs/<preset>.toml`."
)
specs = [s for s in cache.available_models() if s.kind == "checkpoint"]
if not specs:
    st.info("No model checkpoints found.")
for spec in specs:
    st.subheader(spec.title)
    history = cache.read_json(str(spec.history))
    if not history or not history.get("records"):
        st.info(f"No training history for `{spec.name}` (no {spec.history.name}).")
    else:
        chart(training_curves(history["records"]), f"train.curves.{spec.name}")
    if spec.card.exists():
        with st.expander("Model card"):
            st.markdown(spec.card.read_text(encoding="utf-8"))

packaged = [p for p in PACKAGED.values() if p.card_path is not None and p.card_path.exists()]
if packaged:
    st.header("Pretrained models")
    st.caption("Trained elsewhere; Lantern converts them and measures them on its own test splits.")
for p in packaged:
    st.subheader(p.title)
    st.markdown(f"Licence: {p.licence}")
    with st.expander("Model card"):
        st.markdown(p.card_path.read_text(encoding="utf-8"))
