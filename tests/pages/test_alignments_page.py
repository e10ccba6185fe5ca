"""The Alignments page under AppTest: what it draws and exports is what ``explain.alignment`` computes."""

import pytest
import streamlit as st
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

from explain.alignment import (
    align,
    alignment_maps,
    extract,
    find_gold,
    pharaoh,
    score_alignments,
    sentence_alignment,
)
from explain.generation import force_translation, translate
from models.adapter import Decoding
from models.loading import load_model
from tests.pages.test_pages import open_page

PAGE = "app_pages/alignments.py"
SRC = "我 爱 你 。"  # four source words (the tiny models read Chinese characters)


def links_shown(at) -> str:
    return at.code[0].value


@pytest.mark.parametrize("model", ["tiny-tf-zh-en", "tiny-zh-en"])
def test_the_page_renders_for_a_transformer_and_an_lstm(app_env, model):
    at = open_page(PAGE, model=model, src=SRC)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert len(at.get("plotly_chart")) == 2  # the two rows of words and the heatmap
    offered = at.selectbox(key="align.method").options
    lstm = model == "tiny-zh-en"
    assert ("Attention norms" in offered) != lstm and ("Value zeroing" in offered) != lstm
    assert at.selectbox(key="align.layer").value == "mean"
    assert not at.metric  # no gold sentence: no AER


def test_changing_the_extraction_changes_the_links_as_the_function_says(app_env):
    lm = load_model("tiny-tf-zh-en")
    maps = alignment_maps(lm, translate(lm, SRC, Decoding(max_new_tokens=64)), "attention")
    at = open_page(PAGE, model="tiny-tf-zh-en", src=SRC)
    shown = set()
    for how in ("row", "column", "union", "intersection"):
        at.selectbox(key="align.extraction").set_value(how).run()
        assert not at.exception, at.exception
        assert links_shown(at) == (align(maps, "mean", how).pharaoh or "(no links)"), how
        shown.add(links_shown(at))
    assert len(shown) > 1  # the settings do differ on this sentence
    at.radio(key="align.eos").set_value("no link").run()
    at.selectbox(key="align.layer").set_value(1).run()
    assert links_shown(at) == (pharaoh(extract(maps.words(1), "intersection", eos=True)) or "(no links)")
    at.radio(key="align.step").set_value("input").run()  # Shift-Att: the step where each word is the input
    assert not at.exception, at.exception
    shifted = pharaoh(extract(maps.words(1, step="input"), "intersection", eos=True)) or "(no links)"
    assert links_shown(at) == shifted


def test_the_pharaoh_download_is_the_extracted_links(app_env, monkeypatch):
    saved: dict[str, bytes] = {}
    load = MemoryMediaFileStorage.load_and_get_id

    def record(self, data, mimetype, kind, filename=None):
        if filename:
            saved[filename] = data if isinstance(data, bytes) else data.encode("utf-8")
        return load(self, data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", record)
    at = open_page(PAGE, model="tiny-tf-zh-en", src=SRC, **{"align.extraction": "grow-diag-final"})
    assert not at.exception, at.exception
    lm = load_model("tiny-tf-zh-en")
    maps = alignment_maps(lm, translate(lm, SRC, Decoding(max_new_tokens=64)), "attention")
    expected = pharaoh(extract(maps.words("mean"), "grow-diag-final"))
    assert expected  # links to export
    assert saved["lantern-tiny-tf-zh-en-attention-grow-diag-final.align"].decode("utf-8") == expected + "\n"


def test_a_hansards_sentence_shows_its_aer_against_the_gold(monkeypatch):
    src = "it is our hope to make a decision this week ."
    found = find_gold(src)
    if found is None:
        pytest.skip("the Hansards gold alignments (../shared/data/gold-align-en-fr) are not on this machine")
    st.cache_data.clear()
    st.cache_resource.clear()
    _, ref, gold = found
    lm = load_model("transformer-en-fr")
    expected = sentence_alignment(lm, force_translation(lm, src, ref), "attention", "mean", "grow-diag", gold=gold)
    assert expected.score == score_alignments([expected.links], [gold])
    at = open_page(PAGE, model="transformer-en-fr", src=src)
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["AER"] == f"{expected.score.aer:.1%}"
    assert metrics["Recall"] == f"{expected.score.recall:.1%}"
    assert links_shown(at) == expected.pharaoh
    at.radio(key="align.output").set_value("model").run()  # the model's own French: no gold to score against
    assert not at.exception and not at.metric
    st.cache_data.clear()
    st.cache_resource.clear()


def test_other_methods_and_odd_links_draw_without_an_exception(app_env):
    at = open_page(PAGE, model="tiny-tf-zh-en", src=SRC)
    for method in ("value_zeroing", "integrated_gradients"):
        at.selectbox(key="align.method").set_value(method).run()
        assert not at.exception, at.exception
        assert len(at.get("plotly_chart")) == 2, method
    at.radio(key="align.scores").set_value("signed").run()
    assert not at.exception, at.exception
    # a link made for a Transformer, opened on the LSTM: what it cannot show falls back to the defaults
    at = open_page(PAGE, src=SRC, **{"align.method": "deeplift", "align.layer": 7})
    assert not at.exception, at.exception
    assert at.selectbox(key="align.method").value == "attention" and at.selectbox(key="align.layer").value == "mean"


def test_a_reverse_direction_model_symmetrises_the_links_as_align_says(app_env, tmp_path, monkeypatch, data_root):
    """An en→zh model beside the zh→en one: the page offers it, explains the pair the other way round (forced) and
    draws the links ``align(..., reverse=...)`` reads off both models."""
    import shutil

    from tests.test_train import TINY, TINY_TRANSFORMER
    from training import train

    root = tmp_path / "checkpoints"
    shutil.copytree(app_env / "tiny-tf-zh-en", root / "tiny-tf-zh-en")
    monkeypatch.setenv("LANTERN_DATA", str(data_root))
    argv = ["configs/lstm_zh_en.toml", "--run-dir", str(tmp_path / "run"), "--export", str(root / "tiny-tf-en-zh")]
    flip = ["--set", "data.src_lang=en", "--set", "data.tgt_lang=zh", "--set", "train.max_steps=2", "--no-test"]
    assert train.main([*argv, *TINY, *TINY_TRANSFORMER, *flip]) == 0
    monkeypatch.setenv("LANTERN_CHECKPOINTS", str(root))
    st.cache_data.clear()
    st.cache_resource.clear()
    at = open_page(PAGE, model="tiny-tf-zh-en", src=SRC, **{"align.extraction": "grow-diag"})
    assert not at.exception, at.exception
    assert at.selectbox(key="align.reverse").options == ["none: this model's scores only", "tiny-tf-en-zh"]
    at.selectbox(key="align.reverse").set_value("tiny-tf-en-zh").run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    fwd, rev = load_model(str(root / "tiny-tf-zh-en")), load_model(str(root / "tiny-tf-en-zh"))
    tr = translate(fwd, SRC, Decoding(max_new_tokens=64))
    maps = alignment_maps(fwd, tr, "attention")
    back = alignment_maps(rev, force_translation(rev, tr.text, SRC), "attention")
    for how in ("grow-diag", "column", "union"):
        at.selectbox(key="align.extraction").set_value(how).run()
        assert links_shown(at) == (align(maps, "mean", how, reverse=back).pharaoh or "(no links)"), how
    assert links_shown(at) != (align(maps, "mean", "union").pharaoh or "(no links)")  # the reverse model counts
    for combine in ("agreement", "symmetrised"):
        at.radio(key="align.combine").set_value(combine).run()
        assert not at.exception, at.exception
        assert links_shown(at) == (align(maps, "mean", "union", reverse=back, combine=combine).pharaoh or "(no links)")
