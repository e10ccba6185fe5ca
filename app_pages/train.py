import json
from pathlib import Path

import streamlit as st

from common.limits import limit
from training.corpora import CorpusFormatError, parse_tsv, parse_two_files
from training.jobs import (
    JobError,
    cancel_job,
    check_corpus_size,
    delete_job,
    folder_mb,
    jobs_root,
    list_jobs,
    start_job,
)
from ui import cache
from ui.state import chart
from ui.widgets import md_escape
from viz.curves import training_curves

st.title("Train a model")
st.caption(
    "Upload a small parallel corpus and train Lantern's LSTM or Transformer on it, in the background on this "
    "server. The run goes on if you close the page; finished models appear in the model picker. Cancelled or "
    "failed runs leave no model behind."
)

with st.form("train.form"):
    source = st.radio(
        "Corpus",
        ["a TSV file (source<TAB>target)", "two text files", "paste TSV lines"],
        horizontal=True,
        key="train.source",
    )
    tsv = st.file_uploader("TSV file", type=["tsv", "txt"], key="train.tsv")
    c1, c2 = st.columns(2)
    src_file = c1.file_uploader("Source file (one sentence per line)", type=["txt"], key="train.srcfile")
    tgt_file = c2.file_uploader("Target file (the same line count)", type=["txt"], key="train.tgtfile")
    pasted = st.text_area("TSV lines", height=120, key="train.pasted", placeholder="I love you.\tJe t'aime.")
    c1, c2, c3 = st.columns(3)
    name = c1.text_input("Model name", key="train.name", placeholder="my-model")
    src_lang = c2.text_input("Source language code", "en", key="train.src_lang", max_chars=8)
    tgt_lang = c3.text_input("Target language code", "fr", key="train.tgt_lang", max_chars=8)
    c1, c2, c3 = st.columns(3)
    arch = c1.radio("Architecture", ["lstm", "transformer"], horizontal=True, key="train.arch")
    preset = c2.radio(
        "Size",
        ["tiny", "small"],
        horizontal=True,
        key="train.preset",
        help="tiny: a few minutes, a demonstration; small: the shipped models' size, needs data and time",
    )
    minutes = c3.slider("At most (minutes)", 1, int(limit("job_minutes")), 10, key="train.minutes")
    submitted = st.form_submit_button("Start training", type="primary")

if submitted:
    try:
        if source.startswith("a TSV"):
            if tsv is None:
                raise CorpusFormatError("choose a TSV file")
            check_corpus_size(tsv.getvalue())
            pairs = parse_tsv(tsv.getvalue())
        elif source == "two text files":
            if src_file is None or tgt_file is None:
                raise CorpusFormatError("choose both files")
            check_corpus_size(src_file.getvalue() + tgt_file.getvalue())
            pairs = parse_two_files(src_file.getvalue(), tgt_file.getvalue())
        else:  # pasted text has the same limit as a file
            check_corpus_size(pasted)
            pairs = parse_tsv(pasted.encode("utf-8"))
        job = start_job(pairs, name.strip(), arch, preset, float(minutes), src_lang.strip(), tgt_lang.strip())
    except (CorpusFormatError, JobError) as err:
        st.error(f"Not started: {md_escape(str(err))}")
    else:
        st.success(f"Training {job.name} in the background.")


def read_history(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@st.fragment(run_every=3)
def jobs_view() -> None:
    jobs = list_jobs()
    if not jobs:
        st.info("No training jobs yet.")
        return
    for job in jobs:
        with st.container(border=True):
            st.markdown(f"**{job.name}** · {job.status}")
            if job.status == "running":
                p = job.progress
                st.progress(
                    job.fraction,
                    text=f"step {p.get('step', 0)} of {p.get('total_steps', '?')}, "
                    f"{p.get('elapsed_s', 0) / 60:.1f} min",
                )
                if st.button("Cancel", key=f"train.cancel.{job.id}"):
                    cancel_job(job)
            elif job.status == "failed":
                st.error(md_escape(job.message))
            elif job.status == "finished" and st.session_state.get(f"_seen.{job.id}") is None:
                st.session_state[f"_seen.{job.id}"] = True
                cache.available_models.clear()  # the new model appears in the picker
            history = read_history(job.folder / "run" / "history.json")  # not cached: it grows while we watch
            if history and history.get("records"):
                chart(training_curves(history["records"]), f"train.job.{job.id}")
            if job.status != "running" and st.button("Delete this job", key=f"train.delete.{job.id}"):
                delete_job(job)  # its exported model, if any, stays
                st.rerun(scope="fragment")


st.subheader("Jobs")
st.caption(
    f"Ended jobs keep their log, corpus and curves (not their checkpoints) and are deleted after "
    f"{limit('job_days'):g} days; the jobs folder holds {folder_mb(jobs_root()):,.0f} of {limit('jobs_disk_mb'):,.0f} "
    "MB. A finished job's model stays in the model picker when its job is deleted."
)
jobs_view()
