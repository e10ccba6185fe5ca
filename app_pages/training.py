import streamlit as st

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
