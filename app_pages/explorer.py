import pandas as pd
import streamlit as st

from explore import jobs
from explore.run import TABLE
from explore.sets import DatasetError, from_upload
from explore.table import by_group, filtered, length_bucket, metrics, slices
from explore.winomt import gender_contrast
from models.decoding import Decoding
from training.corpora import CorpusFormatError, DataNotFoundError
from ui import cache
from ui.state import chart, md_escape, request_state, stop_page
from ui.widgets import offered_models, run_or_explain, sidebar_inputs
from viz.bars import token_bars
from viz.dataset import group_bars, histogram
from viz.tokens import prettify_token

UPLOAD = "upload"
PAGES = {
    "Translate": "app_pages/translate.py",
    "Attention": "app_pages/attention.py",
    "Attributions": "app_pages/attributions.py",
    "What if?": "app_pages/whatif.py",
}

st.title("Dataset explorer")
st.caption(
    "Which sentences are worth explaining? Run the model over a whole dataset, then sort and slice the table by "
    "its per-sentence metrics: the worst translations, the least confident ones, the ones with unknown tokens, the "
    "ones two models disagree on. Selecting a row makes it the current sentence of every other page."
)
inputs = sidebar_inputs()
spec = inputs.spec
state = st.session_state
names = cache.explorer_datasets(None if spec.decoder_only else spec.src_lang)
options = [*names, UPLOAD]
if state.get("explore.dataset") not in options:
    own = f"test:{spec.name}"
    state["explore.dataset"] = own if own in names else options[0]
choice = st.selectbox(
    "Dataset",
    options,
    key="explore.dataset",
    format_func=lambda n: names.get(n, "your own file: source<TAB>reference lines, or two line-aligned files"),
)


def uploaded_dataset():
    """The dataset of the files the user gives (kept in the session until other files are given)."""
    c1, c2 = st.columns(2)
    tsv = c1.file_uploader("A TSV file (source<TAB>reference)", type=["tsv", "txt"], key="explore.tsv")
    two = c2.file_uploader(
        "…or two line-aligned files (source, reference)", type=["txt"], accept_multiple_files=True, key="explore.two"
    )
    try:
        if tsv is not None:
            return from_upload(tsv.getvalue(), spec.src_lang or "xx", spec.tgt_lang or None)
        if two:
            if len(two) != 2:
                st.info("Give exactly two files: the sources first, then the references.")
                stop_page()
            return from_upload(None, spec.src_lang or "xx", spec.tgt_lang or None, two[0].getvalue(), two[1].getvalue())
    except (CorpusFormatError, DatasetError) as err:
        st.warning(f"This file cannot be used: {md_escape(str(err))}")
        stop_page()
    st.info("Upload a file to explore it.")
    stop_page()


if choice == UPLOAD:
    ds = uploaded_dataset()
else:
    try:
        ds = cache.explorer_dataset(choice)
    except (DatasetError, DataNotFoundError) as err:
        st.warning(md_escape(str(err)))
        stop_page()

# a second model of the same direction: its outputs and how far they are from this model's
others = {
    n: s
    for n, s in offered_models().items()
    if n != spec.name and not s.decoder_only and s.task == "translate"
    if (s.src_lang, s.tgt_lang) == (spec.src_lang, spec.tgt_lang)
}
if state.get("explore.second", "") not in ("", *others):
    state["explore.second"] = ""
c1, c2 = st.columns(2)
second_name = c1.selectbox(
    "Compare with (disagreement score)",
    ["", *others],
    key="explore.second",
    format_func=lambda n: others[n].title if n else "no second model",
    disabled=not others,
    help="A second model of the same direction translates every sentence too; disagreement = 100 − chrF between "
    "the two outputs.",
)
second = others.get(second_name)
probing = choice == "winomt" and spec.tgt_lang == "fr"  # the gender probe: about 0.4 s per sentence
slow = spec.decoder_only or cache.model_scale(spec) >= 5
default = min(len(ds), 300 if probing else 100 if slow else len(ds))
if not 1 <= int(state.get("explore.limit", default)) <= len(ds):
    state["explore.limit"] = default
state.setdefault("explore.limit", default)
n = c2.number_input(
    "Sentences (the first n)",
    min_value=1,
    max_value=len(ds),
    key="explore.limit",
    help="Lantern's own models decode 1,000 sentences in seconds; a pretrained model takes about a second each.",
)
ds = ds.head(int(n))
folder = jobs.folder_for(spec, ds, second)
st.caption(f"{md_escape(ds.title)}. {md_escape(ds.about)}")


@st.fragment(run_every=1.0)
def watch_run() -> None:
    """Progress of the run in the background; a full rerun draws the table once it is there."""
    job = jobs.status(folder)
    if job.status == "running":
        st.progress(job.fraction, text=f"Translating: {job.done:,} of {job.total or len(ds):,} sentences…")
        if st.button("Cancel", key="explore.cancel"):
            jobs.cancel(folder)
            st.rerun()
    else:
        st.rerun()


def bias_section(frame, info: dict) -> None:
    """WinoMT's figures beside the paper's, and "why this gender?" for the current sentence."""
    b = info["bias"]
    st.subheader("Gender bias (WinoMT)")
    st.caption(
        "Stanovsky et al. (2019): the gold gender of each profession is fixed by a pronoun; the probe finds the "
        "translated profession with the model's own cross-attention, reads its grammatical gender with spaCy's "
        "French pipeline (as the paper does) and compares. ΔG: F1 male − F1 female; ΔS: accuracy on "
        "pro-stereotypical − anti-stereotypical sentences (both 0 for an unbiased system)."
    )
    c = st.columns(5)
    c[0].metric("Gender accuracy", f"{b['accuracy']:.1f} %", help=f"of {b['n']:,} sentences, neutral gold included")
    c[1].metric("ΔG", f"{b['delta_g']:+.1f}", help=f"F1 male {b['f1_male']:.1f}, F1 female {b['f1_female']:.1f}")
    c[2].metric("ΔS", "n/a" if b.get("delta_s") is None else f"{b['delta_s']:+.1f}", help="needs pro and anti rows")
    c[3].metric("Profession found", f"{100 * b.get('located_share', 0):.0f} %", help="else the gender is unknown")
    right, wrong = b.get("pronoun_share_correct"), b.get("pronoun_share_wrong")
    if right is not None and wrong is not None:
        c[4].metric(
            "Pronoun share",
            f"{right:.0%} / {wrong:.0%}",
            help="right / wrong: the share of the input×gradient attribution of the translated profession that the "
            "English pronoun gets, averaged over sentences whose gender came out right / wrong",
        )
    rows = [
        {"system": f"{spec.name} (this run)", "accuracy": b["accuracy"], "ΔG": b["delta_g"], "ΔS": b.get("delta_s")}
    ]
    for name, p in info.get("bias_published_fr", {}).items():
        rows.append({"system": f"{name} (published)", "accuracy": p.get("accuracy"), "ΔG": p.get("delta_g"),
                     "ΔS": p.get("delta_s")})  # fmt: skip
    check = cache.winomt_check(spec.name)
    if check and check.get("scores"):
        full = check["scores"]
        rows.insert(1, {"system": f"{spec.name} (all {full['n']:,}, python -m explore.winomt)",
                        "accuracy": full["accuracy"], "ΔG": full["delta_g"], "ΔS": full.get("delta_s")})  # fmt: skip
    shown = pd.DataFrame(rows)
    for col in ("accuracy", "ΔG", "ΔS"):  # a figure the source does not give is a dash, not "None"
        shown[col] = [f"{v:.1f}" if isinstance(v, int | float) else "—" for v in shown[col]]
    st.dataframe(shown, hide_index=True, width="content")
    agreement = (check or {}).get("hand_label_agreement")
    if agreement:
        st.caption(
            f"How far the gender reader can be trusted: on {agreement['n']} of this model's translations labelled by "
            f"{agreement['labelled_by']}, it agrees on {agreement['agree']} "
            f"({agreement.get('agree_where_labelled_male_or_female', '?')} of "
            f"{sum(agreement['hand_labels'].get(g, 0) for g in ('male', 'female'))} where the profession shows a "
            "gender; it also gives a gender to stray words where the profession is missing)."
        )
    current = frame[frame["source"] == state.get("src", "")]
    if current.empty:
        st.caption("Select a row to ask why its profession came out masculine or feminine.")
        return
    row = current.iloc[0]
    words = [int(w) for w in str(row.get("profession words", "")).split()]
    if not words:
        st.info("The profession of the current sentence was not found in its translation: no gender to explain.")
        return
    lm = cache.get_model(spec)
    tr = cache.run_translation(spec, str(row["source"]), Decoding())
    contrast = gender_contrast(lm, list(tr.tgt_ids), tr.text, words)
    if contrast is None:
        st.info(f"*{md_escape(row['translated profession'])}*: no other-gender form to contrast with.")
        return
    step, alt_id, alt_text = contrast
    chosen = prettify_token(tr.tgt_tokens[step])
    other = prettify_token(lm.tgt_tokenizer.convert_ids_to_tokens(alt_id))
    st.markdown(
        f"**Why *{md_escape(chosen)}* and not *{md_escape(other)}*?** The model wrote "
        f"*{md_escape(str(row['translated profession']))}* ({row['predicted gender']}; gold: {row['gold gender']}). "
        f"Contrastive input×gradient of log p({md_escape(chosen)}) − log p({md_escape(other)}) at output token "
        f"{step}: red source tokens pushed toward the form it wrote, blue toward *{md_escape(alt_text)}*."
    )
    attr = run_or_explain(cache.run_attribution, spec, str(row["source"]), Decoding(), "input_x_gradient", "contrast",
                          step, alt_id)  # fmt: skip
    chart(token_bars(attr, step), "explore.why_gender")


job = jobs.status(folder)
if job.status == "running":
    watch_run()
    stop_page()
if job.status != "finished":
    if job.status == "failed":
        st.error(f"The last run failed: {md_escape(job.message)}")
    elif job.status == "cancelled":
        st.info(f"The last run was cancelled after {job.done:,} sentences.")
    per = (
        "about 0.4 s per sentence: each is also explained, for the gender probe"
        if probing
        else "about a second per sentence"
        if slow
        else "seconds per thousand sentences"
    )
    st.markdown(
        f"Run **{md_escape(spec.name)}** over {len(ds):,} sentences ({per}). It runs in the background: you can "
        "leave this page and come back; the finished table is kept for every visitor."
    )
    if st.button("Run", type="primary", key="explore.run"):
        try:
            jobs.start(spec, ds, second)
        except jobs.ExploreJobError as err:
            st.warning(md_escape(str(err)))
            stop_page()
        st.rerun()
    stop_page()

loaded = cache.explorer_table(str(folder), (folder / TABLE).stat().st_mtime)
if loaded is None:
    st.warning("The run's table could not be read; run it again.")
    stop_page()
frame, info = loaded
m = st.columns(5)
m[0].metric("Sentences", f"{info['sentences']:,}", help=f"{info['skipped']} without an output (empty or too long)")
if "bleu" in info:
    m[1].metric("BLEU", f"{info['bleu']:.1f}", help=info.get("bleu_signature", ""))
    m[2].metric("chrF", f"{info['chrf']:.1f}")
means = info.get("means", {})
if "mean probability" in means:
    m[3].metric("Mean token probability", f"{means['mean probability']:.2f}")
m[4].metric("Run time", f"{info['seconds']:.0f} s")

if info.get("bias"):
    bias_section(frame, info)

columns = metrics(frame)
prefer = [c for c in ("chrF", "mean probability") if c in columns]
if state.get("explore.metric") not in columns:
    state["explore.metric"] = prefer[0] if prefer else columns[0]
if state.get("explore.sort") not in columns:
    state["explore.sort"] = state["explore.metric"]
f1, f2, f3, f4 = st.columns([2, 2, 2, 1])
search = f1.text_input("Search the text", key="explore.search", placeholder="a word in the source, output or reference")
metric = f2.selectbox("Metric (range, charts)", columns, key="explore.metric")
sort = f3.selectbox("Sort by", columns, key="explore.sort")
order = f4.radio("Order", ("ascending", "descending"), key="explore.order", horizontal=False)
values = frame[metric].dropna()
low, high = (float(values.min()), float(values.max())) if len(values) else (0.0, 0.0)
r1, r2 = st.columns(2)
if high > low:
    lo, hi = r1.slider(f"{metric} between", low, high, (low, high), key=f"explore.range.{metric}")
else:
    lo, hi = low, high
words_max = int(frame["source words"].max()) if "source words" in frame and len(frame) else 1
w = r2.slider("Source length (words)", 0, max(1, words_max), (0, max(1, words_max)), key="explore.words")
view = filtered(frame, search, w, metric if high > low else "", lo, hi).sort_values(
    sort, ascending=order == "ascending", kind="stable"
)
st.caption(
    f"{len(view):,} of {len(frame):,} sentences. Click a column header to sort by it, the box at a row's left to "
    "make that sentence the current one."
)
event = st.dataframe(
    view,
    key="explore.table",
    on_select="rerun",
    selection_mode="single-row",
    hide_index=True,
    width="stretch",
    height=360,
    column_config={
        "mean probability": st.column_config.NumberColumn(format="%.3f"),
        "min probability": st.column_config.NumberColumn(format="%.3f"),
        "mean entropy": st.column_config.NumberColumn(format="%.2f"),
        "BLEU": st.column_config.NumberColumn(format="%.1f"),
        "chrF": st.column_config.NumberColumn(format="%.1f"),
        "disagreement": st.column_config.NumberColumn(format="%.1f"),
    },
)


def make_current(row_id: int) -> None:
    """Make the row's source the sentence of every page (once per selection: typing a new one later wins)."""
    state["_explore_opened"] = (str(folder), row_id)
    request_state({"src": str(frame.loc[frame["id"] == row_id, "source"].iloc[0])})


rows = event.selection.rows if event is not None else []
if rows and rows[0] < len(view):
    picked = int(view.iloc[rows[0]]["id"])
    if state.get("_explore_opened") != (str(folder), picked):
        make_current(picked)
o1, o2 = st.columns([1, 3])
pick = o1.number_input("…or open sentence #", 0, int(frame["id"].max()), key="explore.open_id")
if o1.button("Make it the current sentence", key="explore.open"):
    make_current(int(pick))
with o2:
    st.markdown(f"**Current sentence:** {md_escape(state.get('src', ''))}")
    links = st.columns(len(PAGES))
    for col, (title, path) in zip(links, PAGES.items(), strict=True):
        col.page_link(path, label=f"Explain it: {title}" if title == "Attributions" else title)

st.download_button(
    "Download these rows (CSV)",
    view.to_csv(index=False).encode("utf-8"),
    file_name=f"{spec.name}-{ds.name.replace(':', '-')}.csv",
    mime="text/csv",
    key="explore.csv",
)

st.subheader("Where the model does well and badly")
done = view[view["output"] != ""]
if done.empty or metric not in done:
    st.info("No rows to chart: widen the filters.")
    stop_page()
c1, c2 = st.columns(2)
with c1:
    g = by_group(done, metric, length_bucket(done["source words"]).rename("length"))
    chart(
        group_bars(list(map(str, g["group"])), g["mean"], g["ci95"], g["count"], metric, "source length (words)"),
        "explore.by_length",
    )
with c2:
    confidence = "mean probability" if "mean probability" in done else metric  # how sure the model was
    chart(histogram(done[confidence].dropna(), confidence), "explore.histogram")
groups = slices(done)
if groups:
    if state.get("explore.slice") not in groups:
        state["explore.slice"] = groups[0]
    by = st.selectbox("Slice by", groups, key="explore.slice")
    g = by_group(done, metric, done[by].astype(str))
    chart(group_bars(list(g["group"]), g["mean"], g["ci95"], g["count"], metric, by), "explore.by_slice")
if "unknown tokens" in done:
    unk = done["unknown tokens"] > 0
    if unk.any() and (~unk).any():
        st.caption(
            f"Sentences with unknown tokens: {int(unk.sum()):,}; their mean {metric} is "
            f"{done.loc[unk, metric].mean():.3f} against {done.loc[~unk, metric].mean():.3f} for the rest."
        )
