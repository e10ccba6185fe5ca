import numpy as np
import pandas as pd
import streamlit as st

from explain.alignment import PUBLISHED_AER_EN_FR
from explain.attention_views import attention_view
from explain.attribution import forward_passes
from explain.confidence import attention_confidence
from explain.faithfulness import FRACTIONS, masks_needed
from explain.focus import focus_attribution
from explain.methods import METHODS
from explain.sanity import randomisation_passes
from ui import cache
from ui.state import chart
from ui.widgets import ProgressBar, cost_gate, md_escape, page_translation, run_or_explain, sidebar_inputs
from viz.curves import bars, faithfulness_curves, randomisation_curve
from viz.heatmaps import attribution_heatmap, token_heatmap
from viz.tokens import prettify_tokens

READINGS = {
    "AOPC comprehensiveness ↑": "how much p(token) drops when its most important source tokens are removed",
    "AOPC sufficiency ↓": "how much p(token) drops when only its most important source tokens are kept",
    "soft comprehensiveness ↑": "the same with embeddings scaled by importance instead of removed",
    "soft sufficiency ↓": "the same, keeping embeddings in proportion to their importance",
    "Kendall τ with leave-one-out ↑": "agreement with removing each token alone (1 = same order)",
}

st.title("Evaluate")
st.caption(
    "Can this explanation be trusted? Faithfulness: does removing what it marks as important change the output? "
    "Sanity: does it change when the model's weights are destroyed? Plausibility: does it agree with human "
    "word alignments (dataset runs below)?"
)
inputs = sidebar_inputs()
tr = page_translation(inputs)
st.markdown(f"**Output:** {md_escape(tr.text)}")

tab_sentence, tab_sanity, tab_dataset = st.tabs(["This sentence", "Randomisation check", "Dataset runs"])

with tab_sentence:
    # a large model (a pretrained one: ~20× the cost of Lantern's own per token pass) starts with two fast methods
    large = cache.model_scale(inputs.spec) >= 5
    fast = ("attention", "input_x_gradient")
    every = ("attention", "saliency", "input_x_gradient", "integrated_gradients", "occlusion")
    default = [m for m in (fast if large else every) if m in METHODS]
    methods = st.multiselect(
        "Methods", list(METHODS), default=default, key="eval.methods", format_func=lambda m: METHODS[m].title
    )
    n_src, n_tgt, n_text = len(tr.src_tokens), len(tr.tgt_tokens), tr.n_text_tokens
    sequences = sum(forward_passes(m, n_text, n_tgt) for m in methods) + len(methods) * masks_needed(n_text, n_tgt)
    passes = sequences * (n_src + n_tgt)
    runs = methods and cost_gate(
        passes,
        "these faithfulness measures",
        "eval",
        (inputs.args(), tuple(methods)),
        confirm="confirm_eval_token_passes",
        refuse=None,  # forward passes only, batched: the time limit bounds them
        scale=cache.model_scale(inputs.spec),
    )
    if runs:
        baseline = "unk" if inputs.spec.decoder_only else "pad"
        bar = ProgressBar("Removing and keeping tokens for every output token…", passes, "eval")
        results = {}
        for i, m in enumerate(methods):
            part = lambda fraction, i=i: bar((i + fraction) / len(methods))  # noqa: E731
            results[m] = run_or_explain(cache.run_faithfulness, *inputs.args(), m, baseline, progress=part)
        bar.done()
        table = pd.DataFrame({METHODS[m].title: f.summary() for m, f in results.items()}).T
        st.dataframe(table.style.format("{:.3f}"), width="stretch")
        st.caption(" · ".join(f"**{k}**: {v}" for k, v in READINGS.items()))
        best = table["AOPC comprehensiveness ↑"].idxmax()
        st.markdown(
            f"On this sentence, **{best}** found the tokens the output depends on most (highest comprehensiveness)."
        )
        comp = {METHODS[m].title: f.comprehensiveness.mean(0) for m, f in results.items()}
        suff = {METHODS[m].title: f.sufficiency.mean(0) for m, f in results.items()}
        chart(faithfulness_curves(FRACTIONS, comp, suff), "eval.curves")
    maps = run_or_explain(cache.run_attention, *inputs.args())
    if maps.cross is not None:
        conf = attention_confidence(attention_view(maps, "cross")[0])
        st.subheader("Attention-based confidence")
        c1, c2, c3 = st.columns(3)
        c1.metric(
            "coverage deviation penalty", f"{conf['CDP']:.3f}", help="0: every source token got attention 1 in total"
        )
        c2.metric("APout (mean row entropy)", f"{conf['APout']:.3f}", help="high: the decoder often looked everywhere")
        c3.metric("APin", f"{conf['APin']:.3f}", help="entropy of the attention each source token received")
        st.dataframe(
            pd.DataFrame(
                {
                    "output token": prettify_tokens(tr.tgt_tokens),
                    "probability": np.round(tr.probs, 3),
                    "attention entropy (nats)": np.round(conf["token_entropy"], 3),
                }
            ),
            hide_index=True,
            width="stretch",
        )

with tab_sanity:
    st.caption(
        "Adebayo et al. (2018): re-initialise a copy of the model block by block from the output down and explain "
        "the same output again. A faithful explanation should change; one that stays the same reflects the input, "
        "not the model."
    )
    options = [m for m in METHODS if m != "deeplift"]
    method = st.selectbox(
        "Method",
        options,
        key="eval.sanity_method",
        index=options.index("input_x_gradient"),
        format_func=lambda m: METHODS[m].title,
    )
    n_src, n_tgt = len(tr.src_tokens), len(tr.tgt_tokens)
    lm = run_or_explain(cache.get_model, inputs.spec)
    check_passes = randomisation_passes(lm, method, tr.n_text_tokens, n_tgt) * (n_src + n_tgt)
    if st.toggle("Run the randomisation check", key="eval.sanity_run") and cost_gate(
        check_passes,
        "the randomisation check",
        "eval.sanity",
        (inputs.args(), method),
        scale=cache.model_scale(inputs.spec),
    ):
        bar = ProgressBar("Randomising the model block by block…", check_passes, "eval.sanity")
        original, steps = run_or_explain(cache.run_randomisation, *inputs.args(), method, progress=bar)
        bar.done()
        chart(
            randomisation_curve([s.block for s in steps], [s.similarity for s in steps], METHODS[method].title),
            key="eval.sanity_curve",
        )
        left, right = st.columns(2)
        left.markdown("**Trained model**")
        with left:
            chart(
                attribution_heatmap(original if inputs.whole_prompt else focus_attribution(original)),
                "eval.sanity_before",
            )
        right.markdown("**All blocks randomised**")
        with right:
            last = steps[-1].attribution
            chart(attribution_heatmap(last if inputs.whole_prompt else focus_attribution(last)), "eval.sanity_after")

with tab_dataset:
    runs = cache.evaluation_runs()
    if not runs:
        st.info(
            "No dataset runs yet. Run `python -m explain.evaluate --help` to score a test set; "
            "results land in evaluations/."
        )
    else:
        name = st.selectbox("Run", list(runs), key="eval.run")
        run = runs[name]
        seconds = run.get("seconds", {})
        took = (
            f" Took {seconds['total'] / 60:.1f} min ({seconds['with_faithfulness (sentences)']} sentences with "
            f"faithfulness measures: {seconds['with_faithfulness'] / 60:.1f} min)."
            if seconds
            else ""
        )
        st.caption(
            f"Model `{run.get('model')}`, {run['sentences']} sentences ({run.get('skipped', 0)} skipped), "
            f"source `{run.get('source')}`.{took}"
        )
        rows = {m: {k: v for k, v in e.items() if isinstance(v, float)} for m, e in run["methods"].items()}
        frame = pd.DataFrame(rows).T
        st.dataframe(frame.style.format("{:.3f}"), width="stretch")
        if "aer" in frame:
            chart(
                bars(list(frame.index), list(frame["aer"]), "Alignment error rate per method (lower is better)", "AER"),
                "eval.aer",
            )
        if "aer" in frame and "gold-align-en-fr" in str(run.get("source", "")):
            st.caption(
                "The same 447 Hansards sentences through dedicated word aligners (published AER, "
                "awesome-align README): "
                + ", ".join(f"{name} {aer / 100:.3f}" for name, aer in PUBLISHED_AER_EN_FR.items())
                + ". An explanation is not trained to align words; this says how close it comes."
            )
        diagonal = run.get("baselines", {}).get("diagonal")
        if "aer" in frame and diagonal:
            beat = [m for m in frame.index if frame.loc[m, "aer"] < diagonal["aer"]]
            st.caption(
                f"No-model baseline: linking each target word to the source word at the same relative "
                f"position scores AER {diagonal['aer']:.3f}. "
                + (
                    f"Beating it: {', '.join(beat)}."
                    if beat
                    else "No explanation here beats it: their word alignments say little beyond word order."
                )
            )
        per_head = run["methods"].get("attention", {}).get("aer_per_head")
        if per_head:
            keys = [tuple(map(int, k.split("."))) for k in per_head]
            n_layers, n_heads = max(k[0] for k in keys) + 1, max(k[1] for k in keys) + 1
            grid = np.full((n_layers, n_heads), np.nan)
            for (layer, head), value in zip(keys, per_head.values(), strict=True):
                grid[layer, head] = value
            chart(
                token_heatmap(
                    grid,
                    [f"head {h}" for h in range(n_heads)],
                    [f"layer {i}" for i in range(n_layers)],
                    x_title="head",
                    y_title="layer",
                    zmin=0,
                    zmax=1,
                    colorscale="Reds_r",
                    value_name="AER",
                ),
                "eval.aer_heads",
            )
            st.caption("AER of each cross-attention head's alignments: the darker, the closer to the human alignments.")
        for method, entry in run["methods"].items():  # attention (heads averaged), attention norms, value zeroing
            per_layer = entry.get("aer_per_layer") if isinstance(entry, dict) else None
            if per_layer:
                title = METHODS[method].title if method in METHODS else method
                st.caption(
                    f"{title}, each layer alone"
                    + (" (heads averaged)" if method == "attention" else "")
                    + ": "
                    + ", ".join(
                        f"layer {k} AER {v:.3f}" for k, v in sorted(per_layer.items(), key=lambda kv: int(kv[0]))
                    )
                    + "."
                )
        by_setting, chosen = {}, []  # AER by extraction setting (runs from python -m explain.evaluate with word scores)
        for method, entry in run["methods"].items():
            reported = entry.get("aer_by_extraction_reported") if isinstance(entry, dict) else None
            every = entry.get("aer_by_extraction") if isinstance(entry, dict) else None
            if reported:
                by_setting[method] = {s: f"{v['aer']:.3f} (layer {v['layer']})" for s, v in reported.items()}
                c = entry["dev_choice"]
                chosen.append(f"{method}: {c['setting']}, layer {c['layer']}, AER {c['aer']:.3f}")
            elif every:
                by_setting[method] = {s: f"{v['mean']:.3f}" for s, v in every.items() if "mean" in v}
        if by_setting:
            st.dataframe(pd.DataFrame(by_setting), width="stretch")
            dev = run.get("dev")
            diagonal_part = run.get("baselines", {}).get("diagonal_reported")
            st.caption(
                "AER by extraction setting: row = each target word's best source word, column = each source word's "
                "best target word, and the two combined (intersection, union, grow-diag, grow-diag-final of Koehn et "
                "al. 2003); +EOS: a word whose best partner is the end-of-sentence token gets no link; signed: "
                "negative scores never link. "
                + (
                    f"Each setting's layer ('mean': the layers' average) was chosen on {dev['chosen_on']} and is "
                    f"scored on {dev['reported_on']}"
                    + (f", where the diagonal scores {diagonal_part['aer']:.3f}" if diagonal_part else "")
                    + ". Chosen on the development part: "
                    + "; ".join(chosen)
                    + "."
                    if dev and chosen
                    else "Each method's own map (layers averaged), all sentences."
                )
            )
