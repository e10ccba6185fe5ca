import numpy as np
import pandas as pd
import streamlit as st

from ui import cache
from ui.state import request_state, stop_page
from ui.widgets import ProgressBar, md_escape, page_translation, run_or_explain, sidebar_inputs
from viz.tokens import prettify_token, prettify_tokens

st.title("Training data")
inputs = sidebar_inputs()
tr = page_translation(inputs)
st.markdown(f"**Output:** {md_escape(tr.text)}")
st.caption(
    "Where did the model learn this? Attention and attributions point at input tokens; this page points at the "
    "training pairs: the ones that contain a source word and what their translations say (exact evidence), and "
    "the ones whose training steps raised or lowered the chosen output token's probability the most (TracIn)."
)
status, why = cache.training_data_status(inputs.spec)
if status == "none":
    st.info(
        f"{md_escape(why)}. Lantern shows training data only for the models it trained itself (their split is "
        "rebuilt from the data root); for a pretrained model it would be guessing."
    )
    stop_page()

steps = list(range(len(tr.tgt_tokens)))
t = min(
    st.selectbox(
        "Output token",
        steps,
        key="data.step",
        format_func=lambda i: f"{i}: {prettify_token(tr.tgt_tokens[i])} ({tr.probs[i]:.0%})",
    ),
    len(steps) - 1,
)
lm_span = tr.src_span or (0, len(tr.src_tokens))


def aligned_source() -> int:
    """The source token the chosen output token attends to most (the last layer's mean over heads)."""
    maps = cache.run_attention(*inputs.args())
    row = np.asarray(maps.cross[-1]).mean(0)[t] if maps.cross is not None else None
    if row is None:
        return lm_span[0]
    a, b = lm_span
    special = set(cache.get_model(inputs.spec).src_tokenizer.all_special_ids)
    weights = np.where([i in special for i in tr.src_ids[a:b]], -np.inf, row[a:b])
    return a + int(np.argmax(weights)) if np.isfinite(weights).any() else a


def open_pair(frame: pd.DataFrame, key: str) -> None:
    """A selectbox of the table's pairs and a button that makes one the current sentence of every page."""
    if frame.empty:
        return
    c1, c2 = st.columns([4, 1])
    pick = c1.selectbox(
        "Open a training pair as the current sentence",
        frame.index,
        key=f"{key}.pick.{hash(tuple(frame.pair))}",  # a new table, a new choice (an old index may not exist)
        format_func=lambda i: f"#{frame.pair[i]}: {frame.source[i]} → {frame.target[i]}",
    )
    if c2.button("Open it", key=f"{key}.open", help="make this pair's source the sentence of every page"):
        request_state({"src": str(frame.source[pick])})


def show_evidence(ev, text: str, side: str, shown_tok: str) -> None:
    m1, m2, m3 = st.columns(3)
    m1.metric(f"Training pairs with {text!r}", f"{ev.n_pairs:,}", help=f"of {ev.n_training_pairs:,}")
    m2.metric("Occurrences", f"{ev.n_occurrences:,}")
    if ev.with_other is not None:
        m3.metric(f"…whose translation has {shown_tok!r}", f"{len(ev.with_other):,}")
    if ev.n_pairs == 0:
        st.info(f"{text!r} never occurs on the {side} side of the training pairs: the model never saw it there.")
        return
    st.markdown(f"**What the {'translations' if side == 'source' else 'sources'} of these pairs hold**")
    st.caption(
        "Tokens of the other side, by the number of these pairs that have them; lift: how many times more "
        "often than in an average training pair (a translation's signature is high in both)."
    )
    co = ev.cooccurring.assign(token=lambda d: prettify_tokens(list(d.token)))
    st.dataframe(co.drop(columns="id").head(15), hide_index=True, width="stretch")
    st.markdown("**The pairs**" + (f" (those with {shown_tok!r} first)" if ev.with_other is not None else ""))
    st.dataframe(ev.examples, hide_index=True, width="stretch")
    open_pair(ev.examples, "data.ev")


evidence_tab, influence_tab = st.tabs(["Exact evidence", "Influence (TracIn)"])

with evidence_tab:
    s = aligned_source()
    default = prettify_token(tr.src_tokens[s]).strip()
    out_tok = md_escape(prettify_token(tr.tgt_tokens[t]))
    st.caption(
        f"The source token {md_escape(default)!r} is the one output token “{out_tok}” "
        "attends to most (last layer); type any characters or words to search the training pairs for them instead."
    )
    c1, c2 = st.columns([3, 1])
    query = c1.text_input("Search the training pairs for", key="data.query", placeholder=default, max_chars=100)
    side = c2.radio("in", ["source", "target"], key="data.side", horizontal=True)
    text = query.strip() or default
    also = (tr.tgt_ids[t],) if side == "source" else None
    try:
        evidence = cache.run_find_pairs(inputs.spec, text, side, also)
    except ValueError as err:  # an empty query, or one outside the vocabulary: said here, the other tab still works
        st.warning(md_escape(str(err)))
    else:
        show_evidence(evidence, text, side, prettify_token(tr.tgt_tokens[t]).strip())

with influence_tab:
    if status == "evidence":
        st.info(md_escape(why))
        stop_page()
    if not cache.influence_ready(inputs.spec):
        st.info(
            "TracIn needs this model's training gradients at each snapshot, computed once for all its training "
            "pairs (Lantern's zh→en models: about 75 s on 2 cores, 72 MB in cache/); after that a query takes a "
            "few seconds."
        )
        if not st.button("Compute the training gradients", key="data.precompute", type="primary"):
            stop_page()
        bar = ProgressBar("Running every training pair through every snapshot…")
        cache.run_precompute(inputs.spec, lambda f, _msg: bar(f))
        bar.done()
    bar = ProgressBar(f"Scoring the training pairs for {prettify_token(tr.tgt_tokens[t])!r}…")
    result = run_or_explain(cache.run_influence, *inputs.args(), t)
    bar.done()
    st.caption(
        f"TracIn (Pruthi et al. 2020) over {len(result.steps)} snapshots (steps {', '.join(map(str, result.steps))}) "
        "of the output layer: a proponent's training step raised the log-probability of "
        f"“{md_escape(prettify_token(result.token).strip())}” here, an opponent's lowered it. Scores are exact for the "
        f"{len(result.table)} pairs shown (found by an estimate that agrees with them at Spearman "
        f"{result.agreement:.2f}); {result.seconds:.1f} s. Evidence about how far to trust them: the README's "
        "self-influence and removal checks."
    )
    token_text = prettify_token(result.token).strip().lower()
    table = result.table.assign(
        has_token=lambda d: [token_text in x.lower() for x in d.target],
    )[["pair", "source", "target", "score", "has_token", "kind"]]
    left, right = st.columns(2)
    with left:
        st.markdown("**Proponents**")
        pro = table[table.score > 0].head(20).reset_index(drop=True)
        st.dataframe(
            pro, hide_index=True, width="stretch", column_config={"score": st.column_config.NumberColumn(format="%.2e")}
        )
        open_pair(pro, "data.pro")
    with right:
        st.markdown("**Opponents**")
        opp = table[table.score < 0].sort_values("score").head(20).reset_index(drop=True)
        st.dataframe(
            opp, hide_index=True, width="stretch", column_config={"score": st.column_config.NumberColumn(format="%.2e")}
        )
        open_pair(opp, "data.opp")
    st.download_button(
        "All re-ranked pairs (CSV)",
        table.to_csv(index=False).encode(),
        f"tracin-{inputs.spec.name}-{t}.csv",
        "text/csv",
        key="data.csv",
    )
