"""The Inside page's computations on tiny Transformers: logit lens, layer norms, neuron view, FFN neurons."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import Gemma3ForCausalLM, Gemma3TextConfig

from explain.anatomy import block, describe_model
from explain.generation import translate
from explain.inside import layer_norms, logit_lens, neuron_view, top_neurons
from models.adapter import Decoding, LanternModel
from models.decoding import InputError
from tests.conftest import make_tiny_llama, make_tiny_lstm, make_tiny_marian

TEXTS = {"marian": "我爱你。", "llama": "I love you. He likes dogs.", "gemma": "I love you. He likes dogs."}


def make_tiny_gemma3(vocab: int) -> Gemma3ForCausalLM:
    """2 layers (a sliding-window one with a window of 3, then a global one), grouped-query attention, QK-norm,
    attention and final-logit soft-capping: every Gemma 3 detail the computations must follow."""
    torch.manual_seed(0)
    config = Gemma3TextConfig(
        vocab_size=vocab, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, head_dim=8, query_pre_attn_scalar=8, sliding_window=3,
        layer_types=["sliding_attention", "full_attention"], attn_logit_softcapping=2.0, final_logit_softcapping=3.0,
        max_position_embeddings=64, initializer_range=0.3, pad_token_id=0, bos_token_id=1, eos_token_id=2,
        attn_implementation="eager",
    )  # fmt: skip
    model = Gemma3ForCausalLM(config).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@pytest.fixture(scope="module")
def models(tokenizers) -> dict[str, LanternModel]:
    src, tgt = tokenizers
    marian = make_tiny_marian(len(src), len(tgt))
    torch.manual_seed(1)
    marian.final_logits_bias.copy_(torch.randn_like(marian.final_logits_bias))  # the lens must add it
    return {
        "marian": LanternModel("marian", marian, src, tgt),
        "llama": LanternModel("llama", make_tiny_llama(len(tgt)), tgt, tgt),
        "gemma": LanternModel("gemma", make_tiny_gemma3(len(tgt)), tgt, tgt),
    }


@pytest.fixture(scope="module")
def outputs(models):
    return {name: translate(lm, TEXTS[name], Decoding(max_new_tokens=6)) for name, lm in models.items()}


@pytest.mark.parametrize("name", ["marian", "llama", "gemma"])
def test_logit_lens_last_layer_is_the_models_own_distribution(models, outputs, name):
    lm, tr = models[name], outputs[name]
    lens = logit_lens(lm, tr, top_k=4)
    n_layers = 2
    assert lens.top_ids.shape == (n_layers + 1, len(tr.tgt_ids), 4) and lens.target_probs.shape == (3, len(tr.tgt_ids))
    with torch.no_grad():
        probs = lm.score(list(tr.src_ids), list(tr.tgt_ids)).logits[0].float().softmax(-1).numpy()
    np.testing.assert_allclose(lens.target_probs[-1], probs[np.arange(len(tr.tgt_ids)), list(tr.tgt_ids)], atol=1e-5)
    np.testing.assert_allclose(lens.top_probs[-1], -np.sort(-probs, axis=1)[:, :4], atol=1e-5)
    assert lens.final_gap < 1e-5
    assert np.all(lens.top_probs[:, :, :-1] >= lens.top_probs[:, :, 1:])  # best first, at every layer
    is_top = lens.top_ids[:, :, 0] == np.asarray(tr.tgt_ids)[None]
    assert np.array_equal(lens.target_ranks == 0, is_top)
    assert not np.allclose(lens.target_probs[0], lens.target_probs[-1], atol=1e-3)  # layers do differ
    table = lens.to_pandas()
    assert len(table) == 3 * len(tr.tgt_ids) and table["output_token_rank"].min() >= 0


def test_logit_lens_and_friends_explain_why_they_refuse_the_lstm(tokenizers):
    src, tgt = tokenizers
    lm = LanternModel("lstm", make_tiny_lstm(len(src), len(tgt)), src, tgt)
    tr = translate(lm, "我爱你。", Decoding(max_new_tokens=3))
    for fn in (logit_lens, layer_norms):
        with pytest.raises(InputError, match=r"one layer per side.*lstm_states"):
            fn(lm, tr)
    with pytest.raises(InputError, match="LSTM"):
        neuron_view(lm, tr, 0, 0, 0)
    assert describe_model(lm).family == "lstm" and describe_model(lm).units["decoder"] == 32


@pytest.mark.parametrize("name", ["marian", "llama", "gemma"])
def test_layer_norms_follow_the_residual_stream(models, outputs, name):
    lm, tr = models[name], outputs[name]
    norms = layer_norms(lm, tr)
    with torch.no_grad():
        if lm.is_seq2seq():
            dec = torch.tensor([lm.decoder_inputs(list(tr.tgt_ids))])
            out = lm.model(input_ids=torch.tensor([tr.src_ids]), decoder_input_ids=dec, output_hidden_states=True)
            hidden = out.decoder_hidden_states
        else:
            ids = torch.tensor([[*tr.src_ids, *lm.decoder_inputs(list(tr.tgt_ids))]])
            hidden = lm.model(input_ids=ids, output_hidden_states=True).hidden_states
    stream = torch.stack(hidden[:-1])[:, 0]  # HF's last entry of Llama/Gemma has the final norm applied
    np.testing.assert_allclose(norms.residual[:-1], stream.norm(dim=-1).numpy(), rtol=1e-5, atol=1e-5)
    assert norms.residual.shape == (3, len(norms.tokens)) and norms.attention.shape == (2, len(norms.tokens))
    assert (norms.cross is not None) == lm.is_seq2seq()
    if not lm.is_seq2seq():  # pre-norm: stream[l + 1] = stream[l] + attention + ffn, so the triangle inequality holds
        full = torch.stack([*stream, _last_stream(lm, ids)]).numpy()
        step = np.linalg.norm(full[1:] - full[:-1], axis=-1)
        assert np.all(step <= norms.attention + norms.ffn + 1e-4)
        assert np.all(step >= np.abs(norms.attention - norms.ffn) - 1e-4)
        np.testing.assert_allclose(norms.residual[-1], np.linalg.norm(full[-1], axis=-1), rtol=1e-5)
    encoder = layer_norms(lm, tr, "encoder") if lm.is_seq2seq() else None
    if encoder is not None:
        assert encoder.cross is None and encoder.tokens == tr.src_tokens
    assert set(norms.to_pandas()["quantity"]) == {"residual", "attention", "ffn"} | ({"cross"} if encoder else set())


def _last_stream(lm: LanternModel, ids: torch.Tensor) -> torch.Tensor:
    """The last block's output before the final norm, read with a hook of this test's own."""
    found = {}
    handle = lm.model.model.layers[-1].register_forward_hook(lambda m, a, out: found.update(out=out))
    try:
        with torch.no_grad():
            lm.model(input_ids=ids)
    finally:
        handle.remove()
    return found["out"][0]


KINDS = [("marian", "encoder"), ("marian", "decoder"), ("marian", "cross"), ("llama", "causal"), ("gemma", "causal")]


@pytest.mark.parametrize(("name", "kind"), KINDS)
def test_neuron_view_scores_give_the_models_attention_row(models, outputs, name, kind):
    lm, tr = models[name], outputs[name]
    with torch.no_grad():
        out = lm.score(list(tr.src_ids), list(tr.tgt_ids), output_attentions=True)
    stacks = {"encoder": "encoder_attentions", "decoder": "decoder_attentions", "cross": "cross_attentions"}
    attentions = getattr(out, stacks.get(kind, "attentions"))
    windows = set()
    for layer in range(2):
        for head in range(2):
            for position in range(attentions[layer].shape[2]):
                view = neuron_view(lm, tr, layer, head, position, kind)
                row = attentions[layer][0, head, position].numpy()
                soft = np.exp(view.scores - view.scores.max())
                full = np.zeros_like(row)
                full[view.key_positions] = soft / soft.sum()
                np.testing.assert_allclose(full, row, atol=1e-5)  # keys outside the mask get nothing
                np.testing.assert_allclose(view.attention, row[view.key_positions], atol=1e-6)
                assert view.products.shape == view.keys.shape == (len(view.key_tokens), view.query.shape[0])
                windows.add(len(view.key_positions))
                if name != "gemma":  # Gemma soft-caps its scores
                    np.testing.assert_allclose(view.products.sum(1) * view.scaling, view.scores, rtol=1e-4, atol=1e-5)
    if kind in ("decoder", "causal"):
        assert 1 in windows  # the first position sees itself only
    if name == "gemma":
        assert neuron_view(lm, tr, 0, 1, 10).key_positions.tolist() == [8, 9, 10]  # the sliding window of 3
        assert neuron_view(lm, tr, 1, 1, 10).key_positions.tolist() == list(range(11))  # global attention
        assert neuron_view(lm, tr, 0, 1, 3).kv_head == 0  # two query heads share one key/value head
    assert lm.model.config._attn_implementation == "eager"  # restored


def test_neuron_view_restores_the_model_when_the_pass_fails(models, outputs):
    lm, tr = models["llama"], outputs["llama"]
    broken = type(tr)(**{**tr.__dict__, "src_ids": (*tr.src_ids[:-1], 10**6)})  # an id beyond the vocabulary

    def hooks() -> list[set]:  # transformers installs output-capturing hooks of its own, for good
        return [set(m._forward_hooks) | set(m._forward_pre_hooks) for m in lm.model.modules()]

    before = hooks()
    for fn in (lambda: neuron_view(lm, broken, 0, 0, 0), lambda: layer_norms(lm, broken)):
        with pytest.raises(IndexError):
            fn()
        assert lm.model.config._attn_implementation == "eager"
        assert hooks() == before


@pytest.mark.parametrize(
    ("name", "layer", "position", "kind", "message"),
    [
        ("marian", 2, 0, "encoder", "layer must be between 0 and 1"),
        ("marian", 0, 99, "cross", "position must be between"),
        ("marian", 0, 0, "causal", "no 'causal' attention"),
        ("llama", 0, 0, "cross", "no 'cross' attention"),
    ],
)
def test_neuron_view_names_a_bad_argument(models, outputs, name, layer, position, kind, message):
    with pytest.raises(InputError, match=message):
        neuron_view(models[name], outputs[name], layer, 0, position, kind)


@pytest.mark.parametrize("name", ["marian", "llama", "gemma"])
def test_top_neurons_are_the_ffn_hidden_values(models, outputs, name):
    lm, tr = models[name], outputs[name]
    side = "decoder" if lm.is_seq2seq() else "causal"
    part = block(lm, side, 1)
    found = {}
    ffn = part.layer.mlp if hasattr(part.layer, "mlp") else part.ffn_in  # Marian: fc2's output is the FFN's
    handle = ffn.register_forward_hook(lambda m, a, out: found.update(out=out[0]))
    try:
        top = top_neurons(lm, tr, layer=1, position=2, kind=side, k=32)  # every neuron of the tiny FFN
    finally:
        handle.remove()
    assert top.n_neurons == 32 and sorted(top.neurons.tolist()) == list(range(32))
    assert np.all(np.diff(top.values) <= 0)  # most active first
    acts = np.zeros((len(top.tokens), 32), dtype=np.float32)
    acts[:, top.neurons] = top.activations.T
    with torch.no_grad():
        rebuilt = part.ffn_in(torch.from_numpy(acts))  # the FFN's output projection of these activations
    np.testing.assert_allclose(rebuilt.numpy(), found["out"].numpy(), atol=1e-5)
    few = top_neurons(lm, tr, layer=1, position=2, kind=side, k=3)
    assert few.neurons.tolist() == top.neurons[:3].tolist()
    with pytest.raises(InputError, match="k must be between 1 and 32"):
        top_neurons(lm, tr, layer=1, position=2, kind=side, k=33)


def test_results_show_themselves_in_a_notebook(models, outputs):
    lm, tr = models["gemma"], outputs["gemma"]
    for result in (logit_lens(lm, tr), layer_norms(lm, tr), neuron_view(lm, tr, 1, 0, 4), top_neurons(lm, tr, 0, 1)):
        assert "plotly" in result._repr_html_()


def test_shapes_of_the_anatomy(models):
    marian, gemma = describe_model(models["marian"]), describe_model(models["gemma"])
    assert marian.family == "seq2seq" and marian.kinds == ("encoder", "decoder", "cross")
    assert marian.layers == {"encoder": 2, "decoder": 2} and marian.ffn["decoder"] == 32
    assert gemma.family == "causal" and gemma.kinds == ("causal",) and gemma.heads == {"causal": 2}


def test_a_shipped_transformer_reads_the_same_inside():
    from models.loading import load_model

    lm = load_model("transformer-zh-en")  # Marian with scaled embeddings and sinusoidal positions, 3 + 3 layers
    tr = translate(lm, "我爱北京天安门", Decoding())
    lens = logit_lens(lm, tr)
    assert lens.final_gap < 1e-4 and lens.target_probs.shape == (4, len(tr.tgt_ids))
    np.testing.assert_allclose(lens.target_probs[-1], tr.probs, atol=1e-4)
    with torch.no_grad():
        cross = lm.score(list(tr.src_ids), list(tr.tgt_ids), output_attentions=True).cross_attentions
    view = neuron_view(lm, tr, layer=2, head=1, position=1, kind="cross")
    np.testing.assert_allclose(view.attention, cross[2][0, 1, 1].numpy(), atol=1e-6)
