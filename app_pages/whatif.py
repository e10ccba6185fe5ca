import math

import numpy as np
import pandas as pd
import streamlit as st

from common.limits import limit
from explain.beam import prefix_tree
from explain.focus import focus_attribution
from explain.methods import METHODS
from ui import cache
from ui.state import chart
from ui.widgets import bounds, cost_gate, md_escape, page_translation, run_or_explain, sidebar_inputs
from viz.bars import token_bars
from viz.heatmaps import beam_tree
from viz.tokens import prettify_token, prettify_tokens


def step_label(tr, t: int) -> str:
    return f"{t}: {prettify_token(tr.tgt_tokens[t])}"


def times(log_ratio: float) -> str:
    """e^log_ratio as "N×", in powers of ten once it is too large to print (e^710 overflows a float)."""
    if log_ratio < math.log(1e6):
        return f"{math.exp(log_ratio):.3g}×"
    return f"10^{log_ratio / math.log(10):.0f}×"


def compare(left_title: str, left, right_title: str, right) -> None:
    """Two outputs side by side with their sequence log-probabilities."""
    a, b = st.columns(2)
    for col, title, tr in ((a, left_title, left), (b, right_title, right)):
        with col.container(border=True):
            st.markdown(f"**{title}**  \n{md_escape(tr.text) or '*(empty)*'}")
            st.caption(f"log-probability {float(tr.logprobs.sum()):.2f} over {len(tr.tgt_tokens)} tokens")


def token_table(tr, mark: int | None = None) -> None:
    st.dataframe(
        pd.DataFrame(
            {
                "#": range(len(tr.tgt_tokens)),
                "token": prettify_tokens(tr.tgt_tokens),
                "probability": np.round(tr.probs, 3),
                "": ["← forced" if t == mark else "" for t in range(len(tr.tgt_tokens))],
            }
        ),
        hide_index=True,
        width="stretch",
    )


st.title("What if?")
inputs = sidebar_inputs()
tr = page_translation(inputs)
st.markdown(f"**Output:** {md_escape(tr.text)}")
steps = range(len(tr.tgt_tokens))
force, score, contrast, beams, edit = st.tabs(
    ["Force a word", "Score an output", "Why this and not that?", "Beam search", "Edit attention"]
)

with force:
    st.caption("Pick an output step and one of the model's runners-up there; the model continues from your choice.")
    c1, c2 = st.columns(2)
    t = min(
        c1.selectbox("At output token", steps, format_func=lambda i: step_label(tr, i), key="whatif.step"),
        len(steps) - 1,
    )
    options = [k for k in range(1, len(tr.alt_ids[t]))]
    k = c2.selectbox(
        "Use instead",
        options,
        key="whatif.alt",
        format_func=lambda j: f"{prettify_token(tr.alt_tokens[t][j])} ({tr.alt_probs[t][j]:.1%})",
    )
    forced = run_or_explain(cache.run_with_prefix, *inputs.args(), (*tr.tgt_ids[:t], tr.alt_ids[t][k]))
    compare("The model's output", tr, "With your word", forced)
    token_table(forced, mark=t)

with score:
    st.caption("Type a whole output: the model scores it token by token, as if it had written it (forced decoding).")
    text = st.text_input(
        "Output to score",
        key="whatif.output",
        max_chars=int(limit("input_chars")),
        placeholder="e.g. I love Beijing Tiananmen.",
    )
    if text.strip():
        scored = run_or_explain(cache.run_forced, inputs.spec, inputs.text, text)
        compare("The model's output", tr, "Your output", scored)
        token_table(scored)
        diff = float(scored.logprobs.sum() - tr.logprobs.sum())
        st.markdown(
            f"The model finds your output **{times(abs(diff))}** {'less' if diff < 0 else 'more'} "
            f"likely than its own (log-probability difference {diff:+.2f})."
        )

with contrast:
    st.caption(
        "Why did the model write this token rather than another? The attribution of log p(chosen) − "
        "log p(alternative) at one step: red source tokens pushed toward the chosen token, blue toward the alternative."
    )
    c1, c2, c3 = st.columns(3)
    ct = min(
        c1.selectbox("At output token", steps, format_func=lambda i: step_label(tr, i), key="whatif.cstep"),
        len(steps) - 1,
    )
    # token ids, not their display strings: byte-level vocabularies show a token differently from how it is stored
    names = dict(zip(tr.alt_ids[ct], tr.alt_tokens[ct], strict=True))
    alts = [i for i in tr.alt_ids[ct] if i != tr.tgt_ids[ct]]
    alt = c2.selectbox("Rather than", alts, format_func=lambda i: prettify_token(names[i]), key="whatif.calt")
    methods = [m for m in ("input_x_gradient", "integrated_gradients", "occlusion", "saliency") if m in METHODS]
    method = c3.selectbox("Method", methods, format_func=lambda m: METHODS[m].title, key="whatif.cmethod")
    attr = run_or_explain(cache.run_attribution, *inputs.args(), method, "contrast", ct, alt)
    chart(token_bars(attr if inputs.whole_prompt else focus_attribution(attr), ct), "whatif.contrast")

with beams:
    c1, c2 = st.columns(2)
    width = c1.slider("Beam size", 2, 10, 5, key="whatif.beams")
    n_best = c2.slider("Hypotheses shown", 2, width, min(5, width), key="whatif.nbest")
    longest = len(tr.src_tokens) + inputs.decoding.max_new_tokens  # upper bound: every beam runs to the limit
    beam_passes = width * inputs.decoding.max_new_tokens * longest
    scale = cache.model_scale(inputs.spec)
    if cost_gate(beam_passes, "this beam search", "whatif.beam", (inputs, width), scale=scale):
        beam = run_or_explain(cache.run_beam, inputs.spec, inputs.text, width, n_best, inputs.decoding.max_new_tokens)
        chart(beam_tree(prefix_tree(beam), len(beam.hypotheses)), "whatif.tree")
        st.dataframe(
            pd.DataFrame(
                {
                    "rank": range(1, len(beam.hypotheses) + 1),
                    "hypothesis": [h.text for h in beam.hypotheses],
                    "beam score": np.round(beam.beam_scores, 3),
                    "log-probability": [round(float(h.logprobs.sum()), 3) for h in beam.hypotheses],
                }
            ),
            hide_index=True,
            width="stretch",
        )
    st.caption("The beam score is the log-probability divided by the length (length penalty 1): how the beam ranks.")

with edit:
    if inputs.spec.kind != "checkpoint":
        st.info("Attention editing works on Lantern's own LSTM and Transformer models.")
    else:
        st.caption(
            "Scale the attention one output step pays to one source token (0 removes it from that step's view), "
            "then let the model continue. Tokens before the step stay as they were."
        )
        c1, c2, c3 = st.columns(3)
        et = min(
            c1.selectbox("At output token", steps, format_func=lambda i: step_label(tr, i), key="whatif.estep"),
            len(steps) - 1,
        )
        src = c2.selectbox(
            "Source token",
            range(len(tr.src_tokens)),
            key="whatif.esrc",
            format_func=lambda j: f"{j}: {prettify_token(tr.src_tokens[j])}",
        )
        scale = c3.slider("Scale its attention by", *bounds("whatif.escale"), 0.0, 0.1, key="whatif.escale")
        edited = run_or_explain(cache.run_attention_edit, *inputs.args(), et, min(src, len(tr.src_tokens) - 1), scale)
        compare("The model's output", tr, "With the edited attention", edited)
        token_table(edited, mark=et)
