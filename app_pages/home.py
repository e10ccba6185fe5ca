import streamlit as st

from common.paths import REPO_ROOT
from ui import cache
from ui.state import md_escape

st.title("Lantern")
st.markdown(
    """
Large language and translation models are often called **black boxes**: a sentence goes in, a
sentence comes out, and nobody can say why *that* word was chosen. Lantern opens the box for
one sentence at a time. Type a sentence, let a model translate it, and look at what the model
did at every step of its output.

**What you can look at**

- **Translate**: the output, and for every output token the probability the model gave it, how
  unsure it was (entropy), and which other tokens it was considering.
- **Attention**: for every output token, how much the decoder looked at each source token when
  it produced that token.
- **Attributions**, **What if?** and **Evaluate**: which input tokens drove each output token (gradients and
  perturbations), what the model does when you force another word or edit its attention, and how far each
  explanation can be trusted.
- **Inside**: what happens between input and output: the LSTM's states and gates step by step (and where else
  a pattern of units fires), the logit lens (what a Transformer would say if it stopped at each layer), the
  vectors behind one attention head, the most active feed-forward neurons, and the map of the token embeddings.
- **Training**: how each shipped model learned: loss and BLEU along its training run, and its
  model card (data, licence, split, scores).

**How to read an attention map.** Rows are the output tokens, columns the source tokens; each
row sums to 1. A bright cell means the decoder drew heavily on that source token while producing
that output token. It shows *where the model looked*, which often, but not always, matches which
word it translated: attention is a clue, not a proof. Look at the probability beside it: a token
produced with low probability and high entropy is a guess, whatever the map shows.
"""
)

st.subheader("Models")
specs = cache.available_models()
if not specs:
    st.warning("No model checkpoints found. See the README to train one.")
licences: dict[str, str] = {}
for spec in specs:
    if spec.kind == "checkpoint":
        test = (cache.read_json(str(spec.path / "scores.json")) or {}).get("test") or {}
    else:  # a pretrained model scored on the same test split (python -m training.score_pretrained)
        test = cache.read_json(str(REPO_ROOT / "evaluations" / "bleu" / f"{spec.name}.json")) or {}
    line = f"**{md_escape(spec.title)}** (`{spec.name}`)"
    if test:
        line += f": test BLEU {test['bleu']:.1f}, chrF {test['chrf']:.1f} ({test['n']} sentences, "
        line += f"beam {test['beams']})" if test.get("beams", 1) > 1 else "greedy)"
    st.markdown(line)
    if spec.licence and spec.licence not in licences.values():
        licences[spec.title.split(",")[0].split(" (")[0]] = spec.licence
for title, terms in licences.items():
    st.info(f"**{title}** is used under its own terms. {terms}. By using it here you agree to them.", icon="⚖️")

st.page_link("app_pages/translate.py", label="Start: translate a sentence", icon=":material/translate:")
