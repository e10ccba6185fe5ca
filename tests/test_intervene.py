"""Attention editing on a private copy of Lantern's LSTM and Transformer."""

import numpy as np
import pytest

from explain.attention import extract_attention
from explain.generation import translate
from explain.intervene import edit_attention, edited_copy
from models.adapter import Decoding, LanternModel
from tests.conftest import make_tiny_llama, make_tiny_lstm, make_tiny_marian


@pytest.fixture(params=["lstm", "marian"])
def lm(request, tokenizers) -> LanternModel:
    src, tgt = tokenizers
    model = (
        make_tiny_lstm(len(src), len(tgt), seed=1) if request.param == "lstm" else make_tiny_marian(len(src), len(tgt))
    )
    return LanternModel(request.param, model, src, tgt)


def test_scale_one_changes_nothing(lm):
    original = translate(lm, "我爱你。", Decoding(max_new_tokens=6))
    same = edit_attention(lm, "我爱你。", original, step=1, src_index=1, scale=1.0, decoding=Decoding(max_new_tokens=6))
    assert same.tgt_ids == original.tgt_ids
    np.testing.assert_allclose(same.logprobs, original.logprobs, atol=1e-5)


def test_scale_zero_takes_the_token_out_of_that_steps_view(lm):
    original = translate(lm, "我爱你。", Decoding(max_new_tokens=6))
    edited = edited_copy(lm, step=1, src_index=1, scale=0.0)
    maps = extract_attention(edited, original)
    row = maps.cross[:, :, 1]  # every layer and head, output step 1
    np.testing.assert_allclose(row[..., 1], 0.0, atol=1e-7)
    np.testing.assert_allclose(row.sum(-1), 1.0, atol=1e-5)
    untouched = extract_attention(lm, original).cross[:, :, 0]
    np.testing.assert_allclose(maps.cross[:, :, 0], untouched, atol=1e-6)  # other steps as before
    out = edit_attention(lm, "我爱你。", original, step=1, src_index=1, scale=0.0, decoding=Decoding(max_new_tokens=6))
    assert out.tgt_ids[:1] == original.tgt_ids[:1] and "× 0" in out.decoding
    assert abs(out.logprobs[1] - original.logprobs[1]) > 1e-6 or out.tgt_ids[1] != original.tgt_ids[1]


def test_the_shared_model_is_untouched(lm):
    before = {k: v.clone() for k, v in lm.model.state_dict().items()}
    impl = lm.model.config._attn_implementation
    original = translate(lm, "我爱你。", Decoding(max_new_tokens=6))
    edit_attention(lm, "我爱你。", original, step=0, src_index=0, scale=0.0)
    assert lm.model.config._attn_implementation == impl
    assert not any(m._forward_hooks for m in lm.model.modules())
    assert all(torch_equal(before[k], v) for k, v in lm.model.state_dict().items())
    assert translate(lm, "我爱你。", Decoding(max_new_tokens=6)).tgt_ids == original.tgt_ids


def torch_equal(a, b) -> bool:
    import torch

    return torch.equal(a, b)


def test_other_models_and_bad_positions_are_refused(tokenizers, lm):
    _, tgt = tokenizers
    llama = LanternModel("llama", make_tiny_llama(len(tgt)), tgt, tgt)
    with pytest.raises(ValueError, match="Lantern's own"):
        edited_copy(llama, 0, 0, 0.0)
    original = translate(lm, "我爱你。", Decoding(max_new_tokens=4))
    with pytest.raises(ValueError, match="outside the input"):
        edit_attention(lm, "我爱你。", original, step=0, src_index=99, scale=0.0)
