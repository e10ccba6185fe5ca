import streamlit as st

from ui import cache

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
for spec in specs:
    scores = (cache.read_json(str(spec.path / "scores.json")) or {}) if spec.kind == "checkpoint" else {}
    test = scores.get("test") or {}
    line = f"**{spec.title}** (`{spec.name}`)"
    if test:
        line += f": test BLEU {test['bleu']:.1f}, chrF {test['chrf']:.1f} ({test['n']} sentences, beam {test['beams']})"
    st.markdown(line)

st.page_link("app_pages/translate.py", label="Start: translate a sentence", icon=":material/translate:")
