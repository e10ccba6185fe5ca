"""Attention views: every kind on an LSTM, a Transformer and a decoder-only model; rollout; word merging."""

import numpy as np
import pytest

from explain.attention import extract_attention
from explain.attention_views import attention_stack, attention_view, available_kinds, cross_rollout, rollout
from explain.generation import translate
from models.adapter import Decoding, LanternModel
from tests.conftest import make_tiny_llama, make_tiny_lstm, make_tiny_marian


def make_maps(kind: str, tokenizers):
    src, tgt = tokenizers
    if kind == "lstm":
        lm = LanternModel("lstm", make_tiny_lstm(len(src), len(tgt), seed=1), src, tgt)
    elif kind == "marian":
        lm = LanternModel("marian", make_tiny_marian(len(src), len(tgt)), src, tgt)
    else:
        lm = LanternModel("llama", make_tiny_llama(len(tgt)), tgt, tgt)
    text = "I love you." if kind == "llama" else "我爱你。"
    return extract_attention(lm, translate(lm, text, Decoding(max_new_tokens=5)))


@pytest.fixture(params=["lstm", "marian", "llama"])
def maps(request, tokenizers):
    return make_maps(request.param, tokenizers)


def test_every_kind_gives_row_stochastic_maps_with_matching_tokens(maps):
    kinds = available_kinds(maps)
    assert kinds
    for kind in kinds:
        for layer, head in (("mean", "mean"), (0, "max"), (0, 0)):
            weights, cols, rows = attention_view(maps, kind, layer, head)
            assert weights.shape == (len(rows), len(cols))
            if head != "max":
                np.testing.assert_allclose(weights.sum(1), 1.0, atol=1e-5)
        words, wcols, wrows = attention_view(maps, kind, words=True)
        assert words.shape == (len(wrows), len(wcols))
        np.testing.assert_allclose(words.sum(1), 1.0, atol=1e-5)


def test_the_lstm_is_one_layer_one_head_and_rollout_is_its_attention(tokenizers):
    maps = make_maps("lstm", tokenizers)
    assert maps.cross.shape[:2] == (1, 1) and available_kinds(maps) == ["cross", "rollout"]
    np.testing.assert_allclose(cross_rollout(maps), maps.cross[0, 0], atol=1e-6)


@pytest.mark.parametrize("kind", ["marian", "llama"])
def test_transformer_self_attention_is_causal_on_the_decoder_side(tokenizers, kind):
    maps = make_maps(kind, tokenizers)
    stack = maps.decoder_self
    assert np.allclose(np.triu(stack, 1), 0.0)
    if maps.cross is not None:
        assert stack.shape[-2:] == (len(maps.tgt_tokens), len(maps.prefix_tokens))
        assert attention_stack(maps, "encoder")[0].shape[-1] == len(maps.src_tokens)


def test_rollout_rows_sum_to_one_and_identity_layers_change_nothing():
    rng = np.random.default_rng(0)
    att = rng.random((3, 2, 5, 5))
    att /= att.sum(-1, keepdims=True)
    np.testing.assert_allclose(rollout(att).sum(-1), 1.0, atol=1e-10)
    identity = np.broadcast_to(np.eye(5), (3, 2, 5, 5))
    np.testing.assert_allclose(rollout(identity), np.eye(5), atol=1e-12)
