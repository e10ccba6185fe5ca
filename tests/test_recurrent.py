"""LSTM states and gates recomputed step by step, and pattern search on a unit planted to fire on one token."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explain.generation import translate
from explain.inside_types import LSTM_QUANTITIES
from explain.recurrent import lstm_states, pattern_search, select_units
from models.adapter import Decoding, LanternModel
from models.decoding import InputError
from models.lstm_attention import LstmAttnConfig, LstmAttnForConditionalGeneration
from tests.conftest import make_tiny_lstm, make_tiny_marian


@pytest.fixture(scope="module")
def deep_lstm(tokenizers) -> LanternModel:
    """Two layers on each side, so the recomputation must also chain the layers (and both directions)."""
    src, tgt = tokenizers
    torch.manual_seed(3)
    config = LstmAttnConfig(
        src_vocab_size=len(src), tgt_vocab_size=len(tgt), embed_dim=16, hidden_size=32, attention_dim=16,
        encoder_layers=2, decoder_layers=2, dropout=0.0,
    )  # fmt: skip
    model = LstmAttnForConditionalGeneration(config).eval()
    for name, p in model.named_parameters():  # larger weights than the init, so the gates spread over (0, 1)
        if "lstm" in name:
            p.data.normal_(0.0, 0.7)
    return LanternModel("deep", model, src, tgt)


def test_recomputed_states_and_gates_equal_nn_lstm(deep_lstm):
    lm = deep_lstm
    tr = translate(lm, "我喜欢猫。", Decoding(max_new_tokens=5))
    states = lstm_states(lm, tr)
    assert states.max_error < 1e-5
    model = lm.model
    src = torch.tensor([tr.src_ids])
    with torch.no_grad():
        out, (_, c_n) = model.encoder.lstm(model.encoder.embed_tokens(src))
    half = out.shape[-1] // 2
    fwd, bwd = states.encoder_forward, states.encoder_backward
    np.testing.assert_allclose(fwd.hidden[-1], out[0, :, :half].numpy(), atol=1e-5)
    np.testing.assert_allclose(bwd.hidden[-1], out[0, :, half:].numpy(), atol=1e-5)
    # nn.LSTM's final cell states: [layers * 2 directions, batch, units]; the backward one ends at token 0
    for layer in range(2):
        np.testing.assert_allclose(fwd.cell[layer, -1], c_n[2 * layer, 0].numpy(), atol=1e-5)
        np.testing.assert_allclose(bwd.cell[layer, 0], c_n[2 * layer + 1, 0].numpy(), atol=1e-5)
    for run in (fwd, bwd, states.decoder):
        assert run.hidden.shape == (2, len(run.tokens), run.hidden.shape[-1])
        for gate in ("input", "forget", "output"):
            assert np.all((run.values(gate, slice(None)) >= 0) & (run.values(gate, slice(None)) <= 1))
        assert np.abs(run.candidate).max() <= 1 and run.forget.std() > 0.1  # the gates really vary
    dec = states.decoder  # c_t = f c_(t-1) + i g, h_t = o tanh(c_t) (the first step starts from the bridge)
    carried = dec.forget[:, 1:] * dec.cell[:, :-1] + (dec.input * dec.candidate)[:, 1:]
    np.testing.assert_allclose(dec.cell[:, 1:], carried, atol=1e-5)
    np.testing.assert_allclose(dec.hidden, dec.output * np.tanh(dec.cell), atol=1e-6)
    assert dec.tokens == tuple(lm.target_tokens(lm.decoder_inputs(list(tr.tgt_ids))))
    table = states.to_pandas()
    assert set(LSTM_QUANTITIES) <= set(table.columns)
    assert set(table["side"]) == {"encoder_forward", "encoder_backward", "decoder"}


def planted_lstm(tokenizers, token: str) -> tuple[LanternModel, int]:
    """A tiny LSTM whose forward encoder unit 5 is on (h ≈ 0.76) exactly at ``token`` and off (h ≈ -0.72) at every
    other token; the other units' weights are scaled down so they stay near 0."""
    src, tgt = tokenizers
    model = make_tiny_lstm(len(src), len(tgt), seed=2)
    lstm, emb = model.encoder.lstm, model.encoder.embed_tokens
    unit, n = 5, lstm.hidden_size
    x = src.convert_tokens_to_ids(token)
    with torch.no_grad():
        for p in lstm.parameters():
            p.mul_(0.05)
        emb.weight[:, 0] = 0.0
        emb.weight[x, 0] = 4.0
        w_ih, w_hh, b = lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0
        for gate in range(4):
            w_ih[gate * n + unit] = 0.0
            w_hh[gate * n + unit] = 0.0
        b[unit], b[n + unit], b[3 * n + unit] = 6.0, -6.0, 6.0  # input and output gates open, no memory
        w_ih[2 * n + unit, 0], b[2 * n + unit] = 3.0, -1.0  # candidate: tanh(11) at the token, tanh(-1) elsewhere
    return LanternModel("planted", model, src, tgt), unit


SENTENCES = ["我喜欢猫。", "他喜欢狗。", "猫很累。", "我爱你。", "你好。", "我们走吧,猫。", "他很高。", "猫猫。"]


def test_pattern_search_finds_the_planted_unit_and_the_sentences_with_its_token(tokenizers):
    lm, unit = planted_lstm(tokenizers, "猫")
    tr = translate(lm, "我喜欢猫。", Decoding(max_new_tokens=3))
    at = tr.src_tokens.index("猫")
    found = pattern_search(lm, tr, "encoder_forward", (at, at + 1), SENTENCES, threshold=0.3, k=50)
    assert found.units.tolist() == [unit]
    assert found.values.shape == (1, len(tr.src_tokens)) and found.values[0, at] > 0.7
    with_cat = {i for i, s in enumerate(SENTENCES) if "猫" in s}
    assert {m.sentence for m in found.matches} == with_cat
    for m in found.matches:
        assert set(m.tokens[m.start : m.end]) == {"猫"} and m.score == pytest.approx(1.0)
    spans = {(m.sentence, m.start, m.end) for m in found.matches}
    assert (7, 0, 2) in spans  # 猫猫: one maximal span of two tokens
    ranked = [m.end - m.start for m in found.matches]
    assert ranked[-1] == 2  # as long as the selection first: the two-token span comes last
    assert set(found.to_pandas()["span_tokens"]) == {"猫", "猫 猫"}
    # nothing is on above the unit's peak, and a span that includes a token where the unit is off selects nothing
    assert len(pattern_search(lm, tr, "encoder_forward", (at, at + 1), SENTENCES, threshold=0.9).units) == 0
    assert len(pattern_search(lm, tr, "encoder_forward", (at - 1, at + 1), SENTENCES).matches) == 0


def test_unit_selection_needs_on_inside_and_off_around():
    values = np.array([[0.0, 0.9, 0.9], [0.9, 0.9, 0.9], [0.0, 0.0, 0.9]])  # [steps, units]
    assert select_units(values, (1, 2), 0.5).tolist() == [0]  # unit 1 is on before, unit 2 after the span
    assert select_units(values, (0, 3), 0.5).tolist() == [2]  # the whole sentence: no neighbours to be off


def test_pattern_search_and_states_name_bad_arguments(tokenizers):
    lm, _ = planted_lstm(tokenizers, "猫")
    tr = translate(lm, "我喜欢猫。", Decoding(max_new_tokens=3))
    with pytest.raises(InputError, match="reads the encoder"):
        pattern_search(lm, tr, "decoder", (0, 1), SENTENCES)
    with pytest.raises(InputError, match="within the sentence's"):
        pattern_search(lm, tr, "encoder_forward", (3, 2), SENTENCES)
    src, tgt = tokenizers
    marian = LanternModel("marian", make_tiny_marian(len(src), len(tgt)), src, tgt)
    with pytest.raises(InputError, match="Transformer"):
        lstm_states(marian, translate(marian, "我爱你。", Decoding(max_new_tokens=3)))


def test_the_shipped_lstm_states_are_recomputed_exactly():
    from models.loading import load_model

    lm = load_model("lstm-zh-en")
    tr = translate(lm, "我爱北京天安门", Decoding())
    states = lstm_states(lm, tr)
    assert states.max_error < 1e-4
    assert states.encoder_forward.hidden.shape == (1, 7, 256) and states.decoder.hidden.shape[2] == 512
