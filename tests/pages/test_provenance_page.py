"""The Training data page under AppTest: exact evidence and TracIn for Lantern's models, a clear no for the others."""

from __future__ import annotations

import pytest

from explain.generation import translate
from models.adapter import Decoding
from models.loading import load_model
from tests.pages.test_pages import model_names, open_page

PAGE = "app_pages/provenance.py"
SRC = "我爱你。"


@pytest.fixture()
def env(app_env, tmp_path, monkeypatch):
    monkeypatch.setenv("LANTERN_CACHE", str(tmp_path / "cache"))  # the precomputed gradients go here
    return app_env


def metric(at, label_start: str) -> str:
    return next(m.value for m in at.metric if m.label.startswith(label_start))


def test_lstm_shows_exact_evidence_and_tracin_like_the_api(env):
    from provenance import find_pairs, influence

    at = open_page(PAGE, model="tiny-zh-en", src=SRC, **{"data.step": 1, "data.query": "爱"})
    assert not at.exception, at.exception
    assert at.title[0].value == "Training data"
    lm = load_model("tiny-zh-en")
    tr = translate(lm, SRC, Decoding())
    ev = find_pairs(lm, "爱", also=[tr.tgt_ids[1]])
    assert metric(at, "Training pairs with") == f"{ev.n_pairs:,}" and ev.n_pairs > 0
    assert metric(at, "…whose translation has") == f"{len(ev.with_other):,}"
    assert at.dataframe[1].value.source.tolist() == ev.examples.source.tolist()
    # influence waits for the one-off computation, then lists the API's pairs
    assert any("computed once" in i.value for i in at.info)
    at.button(key="data.precompute").click().run()
    assert not at.exception, at.exception
    result = influence(lm, tr, 1)
    shown = [df.value for df in at.dataframe[2:4]]
    assert shown[0].pair.tolist() == result.proponents(20).pair.tolist()
    assert shown[1].pair.tolist() == result.opponents(20).pair.tolist()
    assert any(b.label == "All re-ranked pairs (CSV)" for b in at.get("download_button"))


def test_opening_a_training_pair_makes_it_the_current_sentence(env):
    at = open_page(PAGE, model="tiny-zh-en", src=SRC, **{"data.query": "爱"})
    first = at.dataframe[1].value.source.iloc[0]
    at.button(key="data.ev.open").click().run()
    assert not at.exception, at.exception
    assert at.session_state["src"] == first != SRC


def test_a_model_without_snapshots_offers_evidence_and_says_why_not_influence(env):
    at = open_page(PAGE, model="tiny-tf-zh-en", src=SRC)
    assert not at.exception, at.exception
    assert any(m.label.startswith("Training pairs with") for m in at.metric)
    assert any("no TracIn snapshots" in i.value for i in at.info)


def test_a_model_lantern_did_not_train_says_so(env):
    at = open_page(PAGE, model=model_names(env)["decoder-only"], src="I love you.")
    assert not at.exception, at.exception
    assert any("not trained by Lantern" in i.value for i in at.info)
    assert not at.metric


def test_a_query_outside_the_vocabulary_is_a_clear_warning_and_the_page_goes_on(env):
    at = open_page(PAGE, model="tiny-zh-en", src=SRC, **{"data.query": "Ω"})
    assert not at.exception, at.exception
    assert any("outside the model's source vocabulary" in w.value for w in at.warning)
    assert any("computed once" in i.value for i in at.info)  # the influence tab is still drawn
