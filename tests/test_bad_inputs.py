"""Hostile input through the API: each case gives a clear error or a visible truncation, never a crash."""

import numpy as np
import pytest

from common.text import clean_text
from explain.attention import extract_attention
from explain.attribution import attribute
from explain.generation import force_translation, translate
from models.adapter import Decoding, InputError, LanternModel
from tests.conftest import make_tiny_llama, make_tiny_lstm

# name -> (text, what must happen)
BAD_INPUTS = {
    "empty": ("", "error"),
    "whitespace": (" \t\n  \u3000 ", "error"),
    "invisible only": ("\u200b\u200d\ufeff\u2060", "error"),
    "100 kB": ("我爱你。" * 25_000, "too long"),
    "control characters": ("我\x00爱\x07你\x1b[31m。", "ok"),
    "zero-width and bidi overrides": ("我\u200b爱\u202e你\u202c。\u2066", "ok"),
    "emoji and mixed scripts": ("我爱你 😀 مرحبا Привет", "ok"),
    "html and script tags": ("<script>alert(1)</script><b>我爱你</b>", "ok"),
    "unpaired surrogates": ("我\ud800爱\udfff你", "ok"),
    "one repeated character": ("爱" * 3000, "truncated"),
}


@pytest.fixture(params=["lstm", "decoder-only"])
def lm(request, tokenizers) -> LanternModel:
    src, tgt = tokenizers
    if request.param == "lstm":
        return LanternModel("lstm", make_tiny_lstm(len(src), len(tgt), seed=1), src, tgt)
    return LanternModel("llama", make_tiny_llama(len(tgt)), tgt, tgt, max_source_tokens=128)


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_through_the_api(lm, case):
    text, expected = BAD_INPUTS[case]
    if expected == "error":
        with pytest.raises(InputError, match="empty"):
            translate(lm, text)
        return
    if expected == "too long":  # refused before any work: a huge paste costs nothing
        with pytest.raises(InputError, match="100,000 characters; Lantern reads up to 5,000"):
            translate(lm, text)
        return
    tr = translate(lm, text, Decoding(max_new_tokens=8))
    assert tr.truncated == (expected == "truncated")
    assert len(tr.src_ids) <= lm.max_source_tokens + 40  # (a chat template may add its own tokens)
    assert not any(ch in tr.src_text for ch in "\x00\x07\u200b\u202e\ud800")
    maps = extract_attention(lm, tr)
    assert maps.decoder_self is not None or maps.cross is not None
    a = attribute(lm, tr, "input_x_gradient")
    assert np.isfinite(a.scores).all()


def test_cleaning_removes_what_a_tokenizer_cannot_take():
    assert clean_text("a\ud800b\udfffc") == "abc"  # lone surrogates cannot even be encoded as UTF-8
    assert clean_text("x\u202ey\u2066z") == "xyz"  # bidi overrides and isolates
    assert clean_text("<b>hi</b>") == "<b>hi</b>"  # markup is text: pages escape it where they render


def test_forced_output_with_bad_text(lm):
    with pytest.raises(InputError, match="empty"):
        force_translation(lm, "我爱你。", "\u200b \n")
    tr = force_translation(lm, "我爱你。", "<script>x</script> \ud800")
    assert "\ud800" not in tr.text
