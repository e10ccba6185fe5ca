"""The Alignments page with a prompted decoder-only model (a tiny Llama in a packaged model's place, under the en-fr
few-shot prompt): it draws the alignment ``explain.alignment`` reads off the sentence inside the prompt."""

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import streamlit as st

import models.sources
from explain.alignment import align, alignment_maps
from explain.generation import translate
from models.adapter import Decoding
from models.loading import load_model
from models.sources import PackagedModel
from tests.conftest import make_tiny_llama
from tests.pages.test_pages import open_page
from tests.test_gemma import TEXTS
from training.tokenization import train_tokenizer

PAGE, MODEL, SRC = "app_pages/alignments.py", "tiny-prompted-en-fr", "Two dogs play in the snow."


@dataclass(frozen=True)
class _Local(PackagedModel):
    """A packaged model whose converted folder is given (no package behind it)."""

    root: str = ""

    @property
    def folder(self) -> Path:
        return Path(self.root) / self.name


@pytest.fixture()
def prompted_env(app_env: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path_factory.mktemp("packaged")
    tok = train_tokenizer(TEXTS * 3, "bpe", vocab_size=300, add_eos=True)
    make_tiny_llama(len(tok)).save_pretrained(root / "tiny-prompted")
    tok.save_pretrained(root / "tiny-prompted")
    local = _Local(name="tiny-prompted", title="Tiny prompted Llama", package="no_such_package", gguf="",
                   requirement="", licence="", prompts=("en-fr",), chat=False, root=str(root))  # fmt: skip
    monkeypatch.setitem(models.sources.PACKAGED, "tiny-prompted", local)
    monkeypatch.setenv("LANTERN_MODEL_ROOTS", os.pathsep.join([os.environ["LANTERN_MODEL_ROOTS"], str(root)]))
    st.cache_data.clear()
    st.cache_resource.clear()
    yield app_env
    st.cache_data.clear()
    st.cache_resource.clear()


def test_the_page_shows_a_prompted_model_s_alignment(prompted_env):
    at = open_page(PAGE, model=MODEL, src=SRC)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert not [i.value for i in at.info if "encoder-decoder" in i.value or "inside the model's prompt" in i.value]
    assert len(at.get("plotly_chart")) == 2  # the two rows of words and the heatmap
    assert any("the source is the sentence inside it" in c.value for c in at.caption)
    offered = at.selectbox(key="align.method").options
    assert "Attention norms" in offered and "DeepLIFT" not in offered
    lm = load_model(MODEL)
    maps = alignment_maps(lm, translate(lm, SRC, Decoding(max_new_tokens=64)), "attention")
    assert maps.src_words == tuple(SRC.split(" "))
    assert at.code[0].value == (align(maps, "mean", "grow-diag").pharaoh or "(no links)")
    at.selectbox(key="align.layer").set_value(1).run()
    at.selectbox(key="align.extraction").set_value("row").run()
    assert not at.exception, at.exception
    assert at.code[0].value == (align(maps, 1, "row").pharaoh or "(no links)")


def test_a_chat_model_whose_sentence_cannot_be_located_gets_the_message(prompted_env, monkeypatch):
    """A chat template that rewrites the user's text: its words are not in the prompt, so the page says why and
    stops (a chat template that keeps the text is aligned like a few-shot prompt)."""
    root = Path(os.environ["LANTERN_MODEL_ROOTS"].split(os.pathsep)[-1])
    tok = train_tokenizer(TEXTS * 3, "bpe", vocab_size=300, add_eos=True)
    tok.chat_template = "{% for m in messages %}{{ m['content'] | upper }}\n{% endfor %}"
    folder = root / "tiny-shouting-chat"
    make_tiny_llama(len(tok)).save_pretrained(folder)
    tok.save_pretrained(folder)
    monkeypatch.setenv("LANTERN_HUB_MODELS", str(folder))
    st.cache_data.clear()
    st.cache_resource.clear()
    at = open_page(PAGE, model=str(folder), src=SRC)
    assert not at.exception, at.exception
    assert any("inside the model's prompt" in i.value and "cannot be located" in i.value for i in at.info)
    assert not at.get("plotly_chart")
