import pandas as pd
import streamlit as st

from ui import cache
from ui.widgets import md_escape, page_translation, sidebar_inputs
from viz.tokens import prettify_token, prettify_tokens

inputs = sidebar_inputs()
st.title("Translate" if inputs.spec.task == "translate" else "Generate")
st.caption(f"Model: {inputs.spec.title}. Change the model, the sentence or the decoding in the sidebar.")

tr = page_translation(inputs)
with st.container(border=True):
    st.markdown(f"#### {md_escape(tr.text) or '*(empty output)*'}")
    st.caption(
        f"{tr.decoding}; {len(tr.tgt_tokens)} tokens; "
        f"sequence probability {float(tr.probs.prod()):.2g} (log {float(tr.logprobs.sum()):.2f})"
    )

st.subheader("Each output token")
st.caption(
    "Probability: how sure the model was of the token it produced, given the source and the tokens "
    "before it. Entropy (nats): how spread out its choice was (0 = certain). Alternatives: the most "
    "probable tokens at that step."
)
rows = []
for t, tok in enumerate(tr.tgt_tokens):
    alts = " · ".join(f"{a} {p:.0%}" for a, p in zip(prettify_tokens(tr.alt_tokens[t]), tr.alt_probs[t], strict=True))
    rows.append(
        {
            "#": t,
            "token": prettify_token(tok),
            "probability": float(tr.probs[t]),
            "entropy": round(float(tr.entropy[t]), 3),
            "alternatives": alts,
        }
    )
st.dataframe(
    pd.DataFrame(rows),
    hide_index=True,
    width="stretch",
    column_config={
        "probability": st.column_config.ProgressColumn("probability", min_value=0.0, max_value=1.0, format="%.3f"),
    },
)
with st.expander("Raw tokens (what the tokenizers produced; ▁ marks the start of a word)"):
    if tr.src_span is not None:
        a, b = tr.src_span
        st.markdown("**Source:** " + " ".join(f"`{t}`" for t in tr.src_tokens[a:b]))
        st.markdown(
            f"**The whole prompt the model read** ({len(tr.src_tokens)} tokens; your sentence is tokens {a} to "
            f"{b - 1}):"
        )
        st.code("".join(tr.src_tokens).replace("▁", " "), language=None, wrap_lines=True)
    else:
        st.markdown("**Source:** " + " ".join(f"`{t}`" for t in tr.src_tokens))
    st.markdown("**Output:** " + " ".join(f"`{t}`" for t in tr.tgt_tokens))

counts = cache.read_json(str(inputs.spec.path / "training_counts.json")) if inputs.spec.kind == "checkpoint" else None
if counts:
    st.subheader("How often the model saw each source token in training")
    st.caption(
        "A token seen only a few times has a poorly trained embedding, so the model has little to go on "
        "there and tends to guess from the context; a token never seen is read as `<unk>`. Words are not "
        "counted, only tokens: 北, 京 can be frequent while the word 北京 is rare."
    )
    seen = counts.get("source", {})
    st.dataframe(
        pd.DataFrame(
            {
                "source token": prettify_tokens(tr.src_tokens),
                "times seen in training": [seen.get(t, 0) for t in tr.src_tokens],
                "note": [
                    "never seen" if seen.get(t, 0) == 0 else "rare (< 10)" if seen.get(t, 0) < 10 else ""
                    for t in tr.src_tokens
                ],
            }
        ),
        hide_index=True,
        width="stretch",
    )
