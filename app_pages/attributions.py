import json

import numpy as np
import streamlit as st

from explain import export
from explain.aggregate import merge_subwords
from explain.attribution import forward_passes
from explain.compare import rank_agreement
from explain.focus import focus_attribution, hidden_share
from explain.methods import METHODS
from explain.types import Attribution
from ui import cache
from ui.controls import attribution_controls
from ui.state import chart, stop_page
from ui.widgets import (
    ProgressBar,
    cost_gate,
    md_escape,
    page_translation,
    remember,
    run_or_explain,
    sidebar_inputs,
)
from viz.bars import agreement_bars, step_confidence, token_bars
from viz.heatmaps import attribution_heatmap
from viz.tokens import prettify_tokens

st.title("Attributions")
inputs = sidebar_inputs()
tr = page_translation(inputs)
st.markdown(f"**Output:** {md_escape(tr.text)}")
st.caption(
    "How much each input token contributed to each output token, measured by changing the input (gradients "
    "or perturbations) rather than by reading attention. Red pushed the model toward its output token, blue away."
)
c = attribution_controls(tr, decoder_only=inputs.spec.decoder_only)

runs = [c.method] + ([c.compare] if c.compare else [])
n_src, n_tgt = len(tr.src_tokens), len(tr.tgt_tokens)
sequences = sum(forward_passes(m, tr.n_text_tokens, n_tgt, c.n_steps, c.n_samples) for m in runs)
token_passes = sequences * (n_src + n_tgt)
scale = cache.model_scale(inputs.spec)
if not cost_gate(token_passes, "this attribution", "attr", (inputs.args(), c.args()), scale=scale):
    stop_page()
bar = ProgressBar("Attributing…", token_passes, "attr")
results = []
for i, method in enumerate(runs):
    bar.text = f"Attributing with {METHODS[method].title}…"
    part = lambda fraction, i=i: bar((i + fraction) / len(runs))  # noqa: E731
    results.append(run_or_explain(cache.run_attribution, *inputs.args(), *c.args(method), progress=part))
bar.done()

raw = results[0]
remember(attribution=json.loads(export.to_json(raw)))


def shown(result: Attribution) -> Attribution:
    """What the charts draw: the sentence's tokens of a prompt (unless the whole prompt is asked for), words."""
    if not inputs.whole_prompt:
        result = focus_attribution(result)
    return merge_subwords(result, c.word_agg) if c.word_agg else result


attr = shown(raw)
fig = attribution_heatmap(attr)
chart(fig, "attr.heatmap")
if raw.delta is not None:
    change = raw.scores.sum(1) + (raw.prefix_scores.sum(1) if raw.prefix_scores is not None else 0) - raw.delta
    worst = int(np.argmax(np.abs(raw.delta)))
    miss, scale = float(raw.delta[worst]), max(abs(float(change[worst])), 1e-6)
    if abs(miss) > max(0.05 * scale, 0.01):
        st.warning(
            f"The scores of output token “{prettify_tokens([raw.tgt_tokens[worst]])[0]}” should add up to how much its "
            f"score changed from the padding baseline to your sentence ({float(change[worst]):.3f}), but miss by "
            f"{miss:.3f}. Raise the number of integration steps before trusting small differences."
        )
    else:
        st.caption(
            f"Completeness check: scores add up to the change of each score within {np.abs(raw.delta).max():.4f}."
        )

if raw.src_span is not None and not inputs.whole_prompt:
    share = hidden_share(raw)
    st.caption(
        f"Your sentence's tokens are shown; the rest of the few-shot prompt holds {share.mean():.0%} of the absolute "
        f"source attribution on average (up to {share.max():.0%} for one output token). Choose “the whole prompt” "
        "in the sidebar to see it."
    )

row = st.selectbox(
    "Explain output token",
    range(len(attr.tgt_tokens)),
    key="attr.row",
    format_func=lambda t: f"{t}: {prettify_tokens([attr.tgt_tokens[t]])[0]}",
)
chart(token_bars(attr, min(row, len(attr.tgt_tokens) - 1)), "attr.bars")
st.subheader("How sure the model was at each step")
chart(step_confidence(raw.tgt_tokens, raw.step_logprobs, raw.step_entropy), "attr.confidence")

if c.compare:
    other = shown(results[1])
    st.subheader(f"{METHODS[c.method].title} and {METHODS[c.compare].title} side by side")
    left, right = st.columns(2)
    with left:
        chart(attribution_heatmap(attr), "attr.left")
    with right:
        chart(attribution_heatmap(other), "attr.right")
    rho = rank_agreement(attr, other)
    chart(agreement_bars(attr.tgt_tokens, rho, (METHODS[c.method].title, METHODS[c.compare].title)), "attr.agreement")
    st.caption(
        f"Mean ρ {np.nanmean(rho):.2f}. Spearman's rank correlation of the absolute source scores of each output "
        "token: 1 means both rank the source tokens the same way, 0 unrelated, −1 opposite."
    )

st.subheader("Export")
name = f"lantern-{raw.model}-{raw.method}"
e1, e2, e3 = st.columns(3)
e1.download_button("Scores as CSV", export.to_csv(attr), f"{name}.csv", "text/csv", key="attr.csv")
e2.download_button("Scores as JSON", export.to_json(attr), f"{name}.json", "application/json", key="attr.json")
e3.download_button(  # built on click (plotly.js inside: 3.5 MB)
    "Figure as HTML",
    lambda: fig.to_html(include_plotlyjs=True, full_html=True),
    f"{name}.html",
    "text/html",
    key="attr.html",
)
st.caption("PNG or SVG: the camera button above each chart saves it in the format chosen under Settings.")
