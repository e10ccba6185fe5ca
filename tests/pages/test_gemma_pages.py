"""The pages with Gemma 3 270M prompted to translate: the sentence's tokens by default, the whole prompt on demand,
the licence on Home."""

import numpy as np
import pytest
import streamlit as st

from explain.generation import translate
from models.loading import load_model
from tests.pages.test_pages import open_page
from tests.plotly_data import trace_array

MODEL, SEED = "gemma-3-270m-zh-en", "我爱北京天安门"


@pytest.fixture(scope="module")
def app_env(tiny_checkpoints):
    """``app_env`` for the whole module: Streamlit's caches are kept from test to test, so the 1 GB model loads
    and the seed sentence is translated once."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LANTERN_CHECKPOINTS", str(tiny_checkpoints))
        mp.setenv("LANTERN_MODEL_ROOTS", str(tiny_checkpoints.parent / "models"))
        mp.setenv("LANTERN_EVALUATIONS", str(tiny_checkpoints.parent / "no-evaluations"))
        mp.delenv("LANTERN_HUB_MODELS", raising=False)
        st.cache_data.clear()
        st.cache_resource.clear()
        yield tiny_checkpoints
        st.cache_data.clear()
        st.cache_resource.clear()


def test_home_shows_the_gemma_terms(app_env):
    at = open_page("app_pages/home.py")
    assert not at.exception, at.exception
    assert any("Gemma Terms of Use" in i.value for i in at.info)
    assert any("gemma-3-270m-zh-en" in m.value for m in at.markdown)


def test_translate_page_translates_the_seed_sentence_and_shows_the_prompt(app_env):
    at = open_page("app_pages/translate.py", model=MODEL, src=SEED)
    assert not at.exception, at.exception
    output = " ".join(m.value for m in at.markdown)
    assert "Beijing" in output and "Tiananmen" in output
    assert any("Licence: Gemma Terms of Use" in c.value for c in at.sidebar.caption)
    assert any("Chinese: 帮助你是我的责任。" in c.value for c in at.code)  # the few-shot prompt, on demand


def test_attributions_show_the_sentence_then_the_whole_prompt(app_env):
    at = open_page("app_pages/attributions.py", model=MODEL, src=SEED)
    assert not at.exception, at.exception
    tr = translate(load_model(MODEL), SEED)
    z = trace_array(at.get("plotly_chart")[0].proto.spec, "z", 0)
    assert z.shape == (len(tr.tgt_tokens), 6)  # 我 爱 北京 天 安 门
    assert any("rest of the few-shot prompt holds" in c.value for c in at.caption)

    at.sidebar.radio(key="prompt_view").set_value("prompt").run()
    assert not at.exception, at.exception
    z = trace_array(at.get("plotly_chart")[0].proto.spec, "z", 0)
    assert z.shape == (len(tr.tgt_tokens), len(tr.src_tokens))


def test_attention_shows_the_sentence_and_the_output_so_far(app_env):
    at = open_page("app_pages/attention.py", model=MODEL, src=SEED)
    assert not at.exception, at.exception
    tr = translate(load_model(MODEL), SEED)
    z = trace_array(at.get("plotly_chart")[0].proto.spec, "z")
    assert z.shape == (len(tr.tgt_tokens), 6 + len(tr.tgt_tokens) - 1)
    assert (np.nansum(z, 1) <= 1 + 1e-4).all()
    assert any("rest of the few-shot prompt got" in c.value for c in at.caption)


def test_what_if_asks_before_a_beam_search_of_a_large_model(app_env):
    at = open_page("app_pages/whatif.py", model=MODEL, src=SEED)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert any("Run this beam search" in b.label for b in at.button)  # ~20× the cost of a pass of Lantern's own
    assert any("each costs about 20× a pass" in c.value for c in at.caption)


def test_evaluate_starts_with_the_fast_methods_on_a_large_model(app_env):
    at = open_page("app_pages/evaluate.py", model=MODEL, src="你好。", **{"eval.methods": ["attention"]})
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert len(at.dataframe[0].value) == 1  # one method measured, on the sentence's tokens
    at = open_page("app_pages/evaluate.py", model=MODEL, src="。")  # defaults, on a one-token sentence
    assert at.multiselect(key="eval.methods").value == ["attention", "input_x_gradient"]


def test_every_inside_view_runs_on_the_prompted_model(app_env):
    for view in ("lens", "norms", "neuron", "ffn", "embeddings"):
        at = open_page("app_pages/inside.py", model=MODEL, src=SEED, **{"inside.view": view})
        assert not at.exception, (view, at.exception)
        assert not at.error, (view, [e.value for e in at.error])
        assert at.get("plotly_chart"), view
    at = open_page("app_pages/inside.py", model=MODEL, src=SEED, **{"inside.view": "embeddings"})
    assert at.selectbox(key="inside.pick").options == ["我", "爱", "北京", "天", "安", "门"]  # the sentence's tokens
