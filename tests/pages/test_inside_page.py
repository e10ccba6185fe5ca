"""The Inside page under AppTest: the views each kind of model offers, and that they draw the API's numbers."""

from __future__ import annotations

import numpy as np
import pytest

from explain.embeddings import nearest_neighbours
from explain.generation import translate
from explain.inside import logit_lens, neuron_view
from explain.inside_views import pick_units
from explain.recurrent import lstm_states
from models.adapter import Decoding
from models.loading import load_model
from tests.pages.test_pages import model_names, open_page
from tests.plotly_data import trace_array
from ui.inside import VIEWS as VIEWS_OF
from viz.tokens import prettify_tokens

PAGE = "app_pages/inside.py"
TEXT = {"lstm": "我爱你。", "transformer": "我爱你。", "decoder-only": "I love you."}
VIEWS = {
    "lstm": ["States and gates", "Pattern search", "Embeddings"],
    "transformer": ["Logit lens", "Layer norms", "Neuron view", "FFN neurons", "Embeddings"],
}
KEYS = {label: key for views in VIEWS_OF.values() for key, label in views.items()}  # label shown -> view
CHARTS = {"norms": 2}  # charts per view (1 unless listed)


def inside(app_env, family: str, **state: object):
    name = model_names(app_env)[family]
    at = open_page(PAGE, model=name, src=TEXT[family], **state)
    lm = load_model(name)
    return at, lm, translate(lm, TEXT[family], Decoding(max_new_tokens=64))


@pytest.mark.parametrize("family", ["lstm", "transformer", "decoder-only"])
def test_every_view_of_each_kind_of_model_renders(app_env, family):
    at, _, _ = inside(app_env, family, **{"inside.sentences": "我爱你。\n他喜欢狗。"})
    assert not at.exception, at.exception
    assert at.title[0].value == "Inside"
    views = at.selectbox(key="inside.view")
    assert views.options == VIEWS["transformer" if family == "decoder-only" else family]
    for view in views.options:
        key = KEYS[view]
        at.selectbox(key="inside.view").set_value(key).run()
        assert not at.exception, (view, at.exception)
        assert not at.error, (view, [e.value for e in at.error])
        if key == "search" and at.warning:  # the tiny model may have no unit for the default span
            continue
        assert len(at.get("plotly_chart")) == CHARTS.get(key, 1), view
        assert any(b.label == "Table as CSV" for b in at.get("download_button")), view


def test_lstm_states_show_the_recomputed_hidden_states(app_env):
    at, lm, tr = inside(app_env, "lstm", **{"inside.view": "states", "inside.order": "variance", "inside.n_units": 5})
    assert not at.exception, at.exception
    values = lstm_states(lm, tr).encoder_forward.values("hidden")
    units = pick_units(values, "variance", 5)
    z = trace_array(at.get("plotly_chart")[0].proto.spec, "z")
    np.testing.assert_allclose(z, values[:, units], atol=1e-6)
    at.text_input(key="inside.units").set_value("1, 3-4").run()
    z = trace_array(at.get("plotly_chart")[0].proto.spec, "z")
    np.testing.assert_allclose(z, values[:, [1, 3, 4]], atol=1e-6)
    at.text_input(key="inside.units").set_value("4-999").run()
    assert not at.exception and any("Units: units are numbered 0 to" in e.value for e in at.error)


def test_logit_lens_draws_the_probability_of_each_output_token_at_each_layer(app_env):
    at, lm, tr = inside(app_env, "transformer", **{"inside.view": "lens"})
    assert not at.exception, at.exception
    z = trace_array(at.get("plotly_chart")[0].proto.spec, "z")
    np.testing.assert_allclose(z, logit_lens(lm, tr).target_probs, atol=1e-6)
    assert any("tuned lens" in c.value for c in at.caption)  # the caveat is on the page
    table = at.dataframe[0].value
    assert len(table) == len(tr.tgt_tokens)


def test_neuron_view_of_a_decoder_only_model_draws_the_heads_attention(app_env):
    at, lm, tr = inside(app_env, "decoder-only", **{"inside.view": "neuron", "inside.layer": 1, "inside.head": 1})
    assert not at.exception, at.exception
    position = len(tr.src_tokens) - 1  # default: the position that predicts the first output token
    assert at.selectbox(key="inside.position").value == position
    expected = neuron_view(lm, tr, 1, 1, position, "causal")
    bars = trace_array(at.get("plotly_chart")[0].proto.spec, "x", 3)
    np.testing.assert_allclose(bars, expected.attention, atol=1e-6)


def test_a_link_with_a_layer_or_position_the_model_lacks_shows_the_default(app_env):
    at, _, _ = inside(app_env, "transformer", **{"inside.view": "neuron", "inside.layer": 7, "inside.position": 500})
    assert not at.exception, at.exception
    assert at.selectbox(key="inside.layer").value == 0 and at.selectbox(key="inside.position").value == 0
    at, _, _ = inside(app_env, "lstm", **{"inside.view": "lens"})  # a Transformer's view on the LSTM
    assert not at.exception and at.selectbox(key="inside.view").value == "states"


def test_pattern_search_reads_the_test_split_when_the_corpus_is_here(app_env, data_root, monkeypatch):
    from training.corpora import load_splits

    monkeypatch.setenv("LANTERN_DATA", str(data_root))
    at, _, tr = inside(app_env, "lstm", **{"inside.view": "search", "inside.threshold": -1.0, "inside.matches": 256})
    at.selectbox(key="inside.start").set_value(0)
    at.selectbox(key="inside.end").set_value(len(tr.src_tokens)).run()  # every unit on everywhere: all match
    assert not at.exception, at.exception
    test = dict.fromkeys(p.src for p in load_splits("tatoeba-en-zh", "zh", "en").test)
    assert any(f"in the {len(test):,} source sentences of tiny-zh-en's test split" in m.value for m in at.markdown)
    assert len(at.dataframe[0].value) == min(256, len(test))
    assert all(t.key != "inside.sentences" for t in at.text_area)  # nothing to type


def test_pattern_search_asks_for_sentences_without_the_corpus(app_env, tmp_path, monkeypatch):
    monkeypatch.setenv("LANTERN_DATA", str(tmp_path))  # no corpus here
    at, _, tr = inside(app_env, "lstm", **{"inside.view": "search", "inside.threshold": -1.0})
    assert not at.exception, at.exception
    assert any("Type some sentences" in i.value for i in at.info)
    # the whole sentence with a threshold every hidden state passes: every unit is selected, every sentence matches
    at.selectbox(key="inside.start").set_value(0)
    at.selectbox(key="inside.end").set_value(len(tr.src_tokens))
    at.text_area(key="inside.sentences").set_value("我爱你。\n你好。\n我爱你。").run()
    assert not at.exception, at.exception
    assert any("**2 matches** in the 2 sentences typed" in m.value for m in at.markdown)  # each sentence once
    assert len(at.dataframe[0].value) == 2


def test_embeddings_show_neighbours_and_an_error_for_a_token_not_in_the_vocabulary(app_env):
    at, lm, _ = inside(app_env, "lstm", **{"inside.view": "embeddings", "inside.pick": "爱"})
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert list(table["token"]) == prettify_tokens(nearest_neighbours(lm, "爱", "source", 10).tokens)
    at.text_input(key="inside.token").set_value("我爱").run()
    assert not at.exception
    assert any("splits into" in e.value for e in at.error)


def test_a_failing_computation_is_a_message_not_a_traceback(app_env, monkeypatch):
    import ui.cache

    def broken(*args):
        raise RuntimeError("the hooks fell off")

    monkeypatch.setattr(ui.cache, "run_layer_norms", broken)
    at, _, _ = inside(app_env, "transformer", **{"inside.view": "norms"})
    assert not at.exception, at.exception
    assert any("RuntimeError: the hooks fell off" in e.value for e in at.error)
