"""The Dataset explorer under AppTest: a run started from the page in the background, the table it shows (the
API's numbers), filters, opening a row as the current sentence, and clear messages for data that is not there."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from explore import jobs
from explore.run import explore, save, summary
from explore.sets import dataset
from models.loading import load_model
from models.registry import get_spec
from tests.pages.test_pages import open_page

PAGE = "app_pages/explorer.py"
REPO = Path(__file__).resolve().parents[2]
DATASET = "test:tiny-zh-en"


@pytest.fixture()
def env(app_env, use_data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("LANTERN_CACHE", str(tmp_path / "cache"))  # explorer runs are kept here
    return app_env


def finished_run(n: int = 0):
    """The run the page would start, made in this process (the background process is tested once, below)."""
    spec, ds = get_spec("tiny-zh-en"), dataset(DATASET)
    ds = ds.head(n) if n else ds
    frame = explore(load_model(spec), ds, tgt_lang=spec.tgt_lang)
    save(jobs.folder_for(spec, ds), frame, summary(frame, ds, spec.name, 1.0, spec.tgt_lang))
    return frame


def test_run_in_the_background_then_the_table_is_the_apis(env):
    at = open_page(PAGE, **{"explore.dataset": DATASET})
    assert not at.exception, at.exception
    assert at.title[0].value == "Dataset explorer"
    assert not at.dataframe
    at.button(key="explore.run").click().run()
    assert not at.exception, at.exception
    spec, ds = get_spec("tiny-zh-en"), dataset(DATASET)
    folder = jobs.folder_for(spec, ds)
    deadline = time.monotonic() + 120
    while jobs.status(folder).status == "running" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert jobs.status(folder).status == "finished", (folder / "run.log").read_text()
    at.run()
    assert not at.exception, at.exception
    shown = at.dataframe[0].value
    expected = explore(load_model(spec), ds, tgt_lang=spec.tgt_lang)
    assert sorted(shown.output) == sorted(expected.output)
    assert len(shown) == len(ds)
    assert {"BLEU", "chrF", "mean probability", "unknown tokens"} <= set(shown.columns)
    assert any(m.label == "BLEU" for m in at.metric)


def test_search_and_order_narrow_the_table_and_opening_a_row_sets_the_sentence(env):
    frame = finished_run()
    word = frame.source.iloc[0][:1]
    at = open_page(PAGE, **{"explore.dataset": DATASET, "explore.search": word, "explore.sort": "chrF"})
    assert not at.exception, at.exception
    shown = at.dataframe[0].value
    assert 0 < len(shown) <= len(frame)
    assert all(word in s or word in o for s, o in zip(shown.source, shown.output, strict=True))
    assert list(shown.chrF) == sorted(shown.chrF)
    row = int(frame.id.iloc[-1])
    at.number_input(key="explore.open_id").set_value(row).run()
    at.button(key="explore.open").click().run()
    assert not at.exception, at.exception
    assert at.session_state["src"] == frame.source.iloc[-1]
    assert any(b.label == "Download these rows (CSV)" for b in at.get("download_button"))


def test_a_missing_corpus_is_a_clear_message(app_env, tmp_path, monkeypatch):
    monkeypatch.setenv("LANTERN_DATA", str(tmp_path / "nothing"))
    monkeypatch.setenv("LANTERN_CACHE", str(tmp_path / "cache"))
    at = open_page(PAGE, **{"explore.dataset": DATASET})
    assert not at.exception, at.exception
    assert any("not found" in w.value for w in at.warning)


SHIPPED = ["lstm-zh-en", "transformer-zh-en", "lstm-en-de", "transformer-en-de", "transformer-en-fr"]


@pytest.mark.parametrize("model", SHIPPED)
def test_the_table_of_every_shipped_models_test_split_renders(model, tmp_path, monkeypatch):
    from explore.sets import offered

    if f"test:{model}" not in offered(None):
        pytest.skip("the shared data folder (../shared/data) is not on this machine")
    monkeypatch.setenv("LANTERN_CACHE", str(tmp_path / "cache"))
    st_clear()
    spec, ds = get_spec(model), dataset(f"test:{model}").head(12)
    frame = explore(load_model(spec), ds, tgt_lang=spec.tgt_lang)
    save(jobs.folder_for(spec, ds), frame, summary(frame, ds, spec.name, 1.0, spec.tgt_lang))
    at = open_page(PAGE, model=model, **{"explore.dataset": f"test:{model}", "explore.limit": 12})
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    shown = at.dataframe[0].value
    assert sorted(shown.output) == sorted(frame.output) and len(shown) == 12
    assert len(at.get("plotly_chart")) >= 2  # by length and the histogram


def st_clear() -> None:
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()


def test_winomt_into_french_shows_the_bias_figures_and_why_this_gender(tmp_path, monkeypatch):
    from explore.sets import offered

    if "winomt" not in offered("en"):
        pytest.skip("the shared data folder (../shared/data) is not on this machine")
    monkeypatch.setenv("LANTERN_CACHE", str(tmp_path / "cache"))
    st_clear()
    spec, ds = get_spec("transformer-en-fr"), dataset("winomt[:6]")
    frame = explore(load_model(spec), ds, tgt_lang="fr")
    info = summary(frame, ds, spec.name, 1.0, "fr")
    save(jobs.folder_for(spec, ds), frame, info)
    assert {"translated profession", "predicted gender", "gender correct", "pronoun share"} <= set(frame.columns)
    at = open_page(PAGE, model=spec.name, **{"explore.dataset": "winomt", "explore.limit": 6})
    assert not at.exception, at.exception
    accuracy = next(m.value for m in at.metric if m.label == "Gender accuracy")
    assert accuracy == f"{info['bias']['accuracy']:.1f} %"
    assert any("Google Translate (published)" in str(df.value.system.tolist()) for df in at.dataframe)
    check = json.loads((REPO / "evaluations" / "winomt" / "transformer-en-fr.json").read_text(encoding="utf-8"))
    agree = check["hand_label_agreement"]["agree"]
    assert any(f"it agrees on {agree} " in c.value for c in at.caption)  # the reader's measured agreement
    row = next(i for i, w in enumerate(frame["profession words"]) if w)  # a sentence whose profession was found
    at.number_input(key="explore.open_id").set_value(row).run()
    at.button(key="explore.open").click().run()
    assert not at.exception, at.exception
    text = " ".join(m.value for m in at.markdown)
    assert "Why *" in text and "Contrastive input×gradient" in text
