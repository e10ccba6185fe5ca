"""Every page under Streamlit's AppTest, on a tiny checkpoint trained by the real CLI."""

from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from explain.attention import extract_attention
from explain.attention_views import KIND_LABELS
from explain.generation import translate
from models.adapter import Decoding
from models.loading import load_model
from tests.plotly_data import trace_array
from viz.tokens import prettify_tokens

APP = str(Path(__file__).resolve().parents[2] / "app.py")
PAGES = [
    "app_pages/home.py",
    "app_pages/translate.py",
    "app_pages/attention.py",
    "app_pages/alignments.py",
    "app_pages/training.py",
]


def open_page(page: str, **state: object) -> AppTest:
    """Run the app on ``page`` with session state preset (the tiny LSTM unless ``model`` is given)."""
    state.setdefault("model", "tiny-zh-en")
    at = AppTest.from_file(APP, default_timeout=60)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    if page != "app_pages/home.py":
        at.switch_page(page).run()
    return at


@pytest.mark.parametrize("page", PAGES)
def test_every_page_runs_without_an_exception(app_env, page):
    at = open_page(page)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


def test_home_lists_the_models_with_their_scores(app_env):
    at = open_page("app_pages/home.py")
    text = " ".join(m.value for m in at.markdown)
    assert "tiny-zh-en" in text and "test BLEU" in text


def test_translate_page_shows_the_output_and_one_row_per_token(app_env):
    at = open_page("app_pages/translate.py", src="我爱你。")
    tr = translate(load_model("tiny-zh-en"), "我爱你。", Decoding(max_new_tokens=64))
    table = at.dataframe[0].value
    assert list(table["token"]) == prettify_tokens(tr.tgt_tokens)
    np.testing.assert_allclose(table["probability"].to_numpy(), tr.probs, atol=1e-6)


def test_attention_page_draws_the_cross_attention_of_the_translation(app_env):
    at = open_page("app_pages/attention.py", src="我爱你。")
    charts = at.get("plotly_chart")
    assert len(charts) == 1
    z = trace_array(charts[0].proto.spec, "z")
    lm = load_model("tiny-zh-en")
    maps = extract_attention(lm, translate(lm, "我爱你。", Decoding(max_new_tokens=64)))
    np.testing.assert_allclose(z, maps.cross[0, 0], atol=1e-6)


def test_training_page_plots_each_models_history(app_env):
    at = open_page("app_pages/training.py")
    assert len(at.get("plotly_chart")) == 2  # the two checkpoints; pretrained models have no history


def test_beam_search_setting_reaches_the_model(app_env):
    at = open_page("app_pages/translate.py", src="我爱你。", decoding="beam search", beams=3)
    assert any("beam 3" in c.value for c in at.caption)


@pytest.mark.parametrize("text", ["", "   ", "\u200b"])
def test_empty_text_gets_a_hint_not_a_traceback(app_env, text):
    at = open_page("app_pages/attention.py", src=text)
    assert not at.exception
    assert any("Type a sentence" in i.value for i in at.info)


def test_unknown_characters_and_truncation_are_shown(app_env):
    at = open_page("app_pages/translate.py", src="丼" + "我爱你。" * 60)
    warnings = " ".join(w.value for w in at.warning)
    assert "丼" in warnings and "The rest was cut" in warnings


def test_no_checkpoints_gives_a_message(app_env, tmp_path, monkeypatch):
    import models.registry

    monkeypatch.setenv("LANTERN_CHECKPOINTS", str(tmp_path))
    monkeypatch.delenv("LANTERN_HUB_MODELS")
    monkeypatch.setattr(models.registry, "PACKAGED", {})  # as if no packaged model were installed
    at = open_page("app_pages/translate.py")
    assert not at.exception
    assert any("No model checkpoints" in e.value for e in at.error)


def test_translate_page_shows_how_often_each_source_token_was_seen(app_env):
    import json

    at = open_page("app_pages/translate.py", src="我爱门。")
    counts = json.loads((app_env / "tiny-zh-en" / "training_counts.json").read_text())["source"]
    table = at.dataframe[1].value
    assert list(table["source token"]) == ["我", "爱", "<unk>", "。"]
    assert list(table["times seen in training"]) == [counts["我"], counts["爱"], 0, counts["。"]]
    assert table["note"][2] == "never seen"


def test_attributions_page_shows_the_heatmap_of_the_engine(app_env):
    from explain.attribution import attribute

    at = open_page("app_pages/attributions.py", src="我爱你。")
    assert not at.exception, at.exception
    lm = load_model("tiny-zh-en")
    tr = translate(lm, "我爱你。", Decoding(max_new_tokens=64))
    expected = attribute(lm, tr, "input_x_gradient")
    charts = at.get("plotly_chart")
    assert len(charts) == 3  # heatmap, bars of one output token, confidence per step
    np.testing.assert_allclose(trace_array(charts[0].proto.spec, "z", 0), expected.scores, atol=1e-6)
    np.testing.assert_allclose(trace_array(charts[0].proto.spec, "z", 1), expected.prefix_scores, atol=1e-6)


@pytest.mark.parametrize("method", ["integrated_gradients", "occlusion", "attention", "lime"])
def test_attributions_page_runs_every_kind_of_method(app_env, method):
    at = open_page("app_pages/attributions.py", src="我爱你。", **{"attr.method": method})
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 3


def test_the_transformer_only_methods_explain_a_transformer_and_tell_why_not_an_lstm(app_env):
    tf = model_names(app_env)["transformer"]
    for method in ("value_zeroing", "smoothgrad"):
        at = open_page("app_pages/attributions.py", model=tf, src="我爱你。", **{"attr.method": method})
        assert not at.exception, at.exception
        assert len(at.get("plotly_chart")) == 3
    at = open_page("app_pages/attributions.py", src="我爱你。", **{"attr.method": "attention_norms"})
    assert not at.exception and not at.get("plotly_chart")
    assert any("an LSTM's additive attention has none" in w.value for w in at.warning)
    at = open_page("app_pages/evaluate.py", src="我爱你。", **{"eval.methods": ["value_zeroing"]})
    assert not at.exception and any("an LSTM's additive attention has none" in w.value for w in at.warning)


def test_attributions_page_compares_two_methods_and_contrasts(app_env):
    at = open_page(
        "app_pages/attributions.py", src="我爱你。", **{"attr.compare": "attention", "attr.granularity": "words"}
    )
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 6  # + two side-by-side heatmaps and the agreement bars
    at = open_page(
        "app_pages/attributions.py",
        src="我爱你。",
        **{"attr.target": "contrast", "attr.contrast_mode": "a whole output"},
    )
    assert not at.exception
    assert any("alternative output" in i.value for i in at.info)


def test_expensive_attribution_waits_for_the_button(app_env, monkeypatch):
    monkeypatch.setenv("LANTERN_CONFIRM_TOKEN_PASSES", "200")  # the threshold is a setting: no 200-sample Shapley
    at = open_page("app_pages/attributions.py", src="我爱你。", **{"attr.method": "occlusion"})
    assert not at.exception
    assert len(at.get("plotly_chart")) == 0 and at.button(key="attr.run")
    at.button(key="attr.run").click().run()
    assert len(at.get("plotly_chart")) == 3


def model_names(app_env) -> dict[str, str]:
    return {
        "lstm": "tiny-zh-en",
        "transformer": "tiny-tf-zh-en",
        "decoder-only": str(app_env.parent / "models" / "tiny-llama"),
    }


@pytest.mark.parametrize("family", ["lstm", "transformer", "decoder-only"])
def test_every_attention_view_renders(app_env, family):
    name = model_names(app_env)[family]
    text = "I love you." if family == "decoder-only" else "我爱你。"
    at = open_page("app_pages/attention.py", model=name, src=text)
    assert not at.exception, at.exception
    labels = at.selectbox(key="attn.kind").options  # AppTest shows the formatted labels
    kinds = [kind for kind, label in KIND_LABELS.items() if label in labels]
    assert len(kinds) == len(labels) >= 2
    for kind in kinds:
        at.selectbox(key="attn.kind").set_value(kind).run()
        assert not at.exception, (kind, at.exception)
        assert len(at.get("plotly_chart")) == 1
        for granularity in ("words", "tokens"):
            at.radio(key="attn.granularity").set_value(granularity).run()
            assert not at.exception and len(at.get("plotly_chart")) == 1
    at.selectbox(key="attn.kind").set_value(kinds[0]).run()
    at.toggle(key="attn.grid").set_value(True).run()
    assert not at.exception, at.exception
    grid = at.get("plotly_chart")[0]
    n_panels = len(__import__("json").loads(grid.proto.spec)["data"])
    assert n_panels == (1 if family == "lstm" else 2 * 2)  # layers × heads of the tiny models


def test_attention_page_compares_two_models_side_by_side(app_env):
    at = open_page("app_pages/attention.py", src="我爱你。", **{"attn.compare": "tiny-tf-zh-en"})
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 3  # the map, then one per model


def test_generate_page_with_a_decoder_only_model(app_env):
    at = open_page(
        "app_pages/translate.py", model=model_names(app_env)["decoder-only"], src="I love", decoding="sampling"
    )
    assert not at.exception, at.exception
    assert at.title[0].value == "Generate"
    assert any("sampling" in c.value for c in at.caption)


def test_evaluate_page_measures_this_sentence_and_the_randomisation_check(app_env):
    at = open_page("app_pages/evaluate.py", src="我爱你。")
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert "AOPC comprehensiveness ↑" in table.columns and len(table) == 5
    assert len(at.get("plotly_chart")) == 1  # the deletion / keep-only curves
    at.toggle(key="eval.sanity_run").set_value(True).run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 4  # + similarity curve, before and after


def test_evaluate_page_reads_dataset_runs(app_env, tmp_path, monkeypatch):
    import json

    run = {
        "model": "tiny-zh-en",
        "sentences": 2,
        "skipped": 0,
        "source": "data/gold-align-en-fr/en.txt",
        "seconds": {
            "total": 90.0,
            "with_faithfulness": 60.0,
            "with_faithfulness (sentences)": 1,
            "alignment_only": 30.0,
            "alignment_only (sentences)": 1,
        },
        "baselines": {"diagonal": {"aer": 0.45, "precision": 0.5, "recall": 0.5}},
        "methods": {
            "attention": {
                "aer": 0.4,
                "precision": 0.6,
                "recall": 0.5,
                "aer_per_head": {"0.0": 0.4, "0.1": 0.7},
                "aer_per_layer": {"0": 0.5},
            },
            "saliency": {"aer": 0.5, "precision": 0.5, "recall": 0.5},
        },
    }
    (tmp_path / "tiny.json").write_text(json.dumps(run))
    monkeypatch.setenv("LANTERN_EVALUATIONS", str(tmp_path))
    at = open_page("app_pages/evaluate.py", src="我爱你。", **{"eval.methods": []})
    assert not at.exception, at.exception
    frame = at.dataframe[-1].value
    assert list(frame.index) == ["attention", "saliency"] and frame.loc["attention", "aer"] == pytest.approx(0.4)
    assert len(at.get("plotly_chart")) == 2  # AER per method, AER per head
    assert any("fast_align 0.105" in c.value for c in at.caption)  # the published aligners beside it
    assert any("layer 0 AER 0.500" in c.value for c in at.caption)
    assert any("scores AER 0.450. Beating it: attention." in c.value for c in at.caption)
    assert any("Took 1.5 min (1 sentences with faithfulness measures: 1.0 min)" in c.value for c in at.caption)


def test_evaluate_page_shows_aer_by_extraction_setting(app_env, tmp_path, monkeypatch):
    import json

    reported = {
        "row": {"layer": "1", "aer_dev": 0.55, "aer": 0.548, "precision": 0.5, "recall": 0.4},
        "grow-diag": {"layer": "mean", "aer_dev": 0.465, "aer": 0.468, "precision": 0.5, "recall": 0.5},
    }
    run = {
        "model": "tiny-zh-en",
        "sentences": 4,
        "skipped": 0,
        "dev": {"chosen_on": "sentences 1-2", "reported_on": "sentences 3-4"},
        "baselines": {"diagonal": {"aer": 0.53}, "diagonal_reported": {"aer": 0.529}},
        "methods": {
            "attention": {
                "aer": 0.57,
                "aer_by_extraction": {"row": {"mean": 0.57, "0": 0.6}, "grow-diag": {"mean": 0.467}},
                "aer_by_extraction_reported": reported,
                "dev_choice": {"setting": "grow-diag", **reported["grow-diag"]},
            },
            "saliency": {"aer": 0.6, "aer_by_extraction": {"row": {"mean": 0.6}, "grow-diag": {"mean": 0.5}}},
        },
    }
    (tmp_path / "extraction.json").write_text(json.dumps(run))
    monkeypatch.setenv("LANTERN_EVALUATIONS", str(tmp_path))
    at = open_page("app_pages/evaluate.py", src="我爱你。", **{"eval.methods": []})
    assert not at.exception, at.exception
    table = at.dataframe[-1].value
    assert list(table.index) == ["row", "grow-diag"] and list(table.columns) == ["attention", "saliency"]
    assert table.loc["grow-diag", "attention"] == "0.468 (layer mean)" and table.loc["row", "saliency"] == "0.600"
    assert any(
        "chosen on sentences 1-2 and is scored on sentences 3-4, where the diagonal scores 0.529" in c.value
        and "attention: grow-diag, layer mean, AER 0.468" in c.value
        for c in at.caption
    )


def test_evaluate_page_shows_the_committed_extraction_run(app_env, monkeypatch):
    from common.paths import REPO_ROOT

    monkeypatch.setenv("LANTERN_EVALUATIONS", str(REPO_ROOT / "evaluations"))
    run = "evaluations/transformer-en-fr-extraction.json"
    at = open_page("app_pages/evaluate.py", src="我爱你。", **{"eval.methods": [], "eval.run": run})
    assert not at.exception, at.exception
    table = at.dataframe[-1].value
    assert list(table.columns) == ["attention", "attention_norms", "value_zeroing"]
    assert table.loc["grow-diag", "attention"] == "0.468 (layer mean)"
    assert any("scored on sentences 101-447, where the diagonal scores 0.529" in c.value for c in at.caption)


def test_evaluate_page_shows_the_committed_hansards_run(app_env, monkeypatch):
    from common.paths import REPO_ROOT

    monkeypatch.setenv("LANTERN_EVALUATIONS", str(REPO_ROOT / "evaluations"))
    at = open_page(
        "app_pages/evaluate.py",
        src="我爱你。",
        **{"eval.methods": [], "eval.run": "evaluations/transformer-en-fr.json"},
    )
    assert not at.exception, at.exception
    frame = at.dataframe[-1].value
    assert {"attention", "rollout", "integrated_gradients"} <= set(frame.index)
    assert any("No-model baseline" in c.value for c in at.caption)


def test_evaluate_page_shows_the_value_zeroing_run_layer_by_layer(app_env, monkeypatch):
    from common.paths import REPO_ROOT

    monkeypatch.setenv("LANTERN_EVALUATIONS", str(REPO_ROOT / "evaluations"))
    run = "evaluations/transformer-en-fr-value-zeroing.json"
    at = open_page("app_pages/evaluate.py", src="我爱你。", **{"eval.methods": [], "eval.run": run})
    assert not at.exception, at.exception
    assert list(at.dataframe[-1].value.index) == ["value_zeroing"]
    assert any(c.value.startswith("Value zeroing, each layer alone: layer 0 AER 0.713") for c in at.caption)


@pytest.mark.parametrize("family", ["lstm", "transformer", "decoder-only"])
def test_what_if_page_runs_every_tab(app_env, family):
    name = model_names(app_env)[family]
    text = "I love you." if family == "decoder-only" else "我爱你。"
    at = open_page("app_pages/whatif.py", model=name, src=text, **{"whatif.output": "I like cats."})
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    charts = at.get("plotly_chart")
    assert len(charts) == 2  # contrastive bars and the beam tree
    if family == "decoder-only":
        assert any("Lantern's own" in i.value for i in at.info)


def test_forcing_a_runner_up_shows_the_model_continuing_from_it(app_env):
    at = open_page("app_pages/whatif.py", src="我爱你。", **{"whatif.step": 0, "whatif.alt": 1})
    assert not at.exception, at.exception
    lm = load_model("tiny-zh-en")
    own = translate(lm, "我爱你。", Decoding(max_new_tokens=64))
    forced = translate(lm, "我爱你。", Decoding(max_new_tokens=64), prefix=(own.alt_ids[0][1],))
    table = at.dataframe[0].value
    assert list(table["token"]) == prettify_tokens(forced.tgt_tokens) and table[""][0] == "← forced"


def test_the_url_reproduces_the_view(app_env):
    at = open_page(
        "app_pages/attributions.py",
        src="我爱你。",
        **{"attr.method": "occlusion", "decoding": "beam search", "beams": 3},
    )
    assert not at.exception
    params = dict(at.query_params)
    assert (params["src"], params["attr.method"], params["beams"]) == ("我爱你。", "occlusion", "3")
    fresh = AppTest.from_file(APP, default_timeout=60)
    for key, value in params.items():
        fresh.query_params[key] = value
    fresh.run()
    fresh.switch_page("app_pages/attributions.py").run()
    assert not fresh.exception
    assert fresh.session_state["src"] == "我爱你。" and fresh.session_state["beams"] == 3
    assert fresh.session_state["attr.method"] == "occlusion"
    z = trace_array(fresh.get("plotly_chart")[0].proto.spec, "z")
    np.testing.assert_allclose(z, trace_array(at.get("plotly_chart")[0].proto.spec, "z"))


def test_a_saved_session_round_trips():
    def script() -> None:
        import streamlit as st

        from ui import state

        st.session_state["src"] = "我爱你。"
        st.session_state["attr.method"] = "lime"
        st.session_state["beams"] = 7
        st.session_state["attn.layer"] = "mean"
        saved = state.session_json({"translation": {"text": "I love you."}})
        st.session_state["parsed"] = state.parse_session(saved.encode("utf-8"))
        try:
            state.parse_session(b'{"format": "something else"}')
        except ValueError as err:
            st.session_state["error"] = str(err)

    at = AppTest.from_function(script).run()
    assert not at.exception
    state, outputs, notes = at.session_state["parsed"]
    assert state == {"src": "我爱你。", "attr.method": "lime", "beams": 7, "attn.layer": "mean"} and notes == []
    assert outputs == {"translation": {"text": "I love you."}}
    assert "not a Lantern session" in at.session_state["error"]


def test_two_models_with_one_title_stay_apart_in_the_model_menu(app_env, tmp_path, monkeypatch):
    """A copy of a model (e.g. an adapted one whose card title matches its parent's) is a second menu entry that
    stays chosen: the menu tells same-titled models apart by name."""
    import shutil

    root = tmp_path / "checkpoints"
    for name in ("tiny-tf-zh-en", "tiny-tf-zh-en-copy"):
        shutil.copytree(app_env / "tiny-tf-zh-en", root / name)
    monkeypatch.setenv("LANTERN_CHECKPOINTS", str(root))
    st.cache_data.clear()
    at = open_page("app_pages/translate.py", model="tiny-tf-zh-en-copy")
    assert not at.exception, at.exception
    menu = at.sidebar.selectbox(key="model")
    copies = [o for o in menu.options if "tiny-tf-zh-en" in o]
    assert sorted(o.split(" · ")[-1] for o in copies) == ["tiny-tf-zh-en", "tiny-tf-zh-en-copy"]
    at.run()
    assert at.sidebar.selectbox(key="model").value == "tiny-tf-zh-en-copy"
    st.cache_data.clear()
