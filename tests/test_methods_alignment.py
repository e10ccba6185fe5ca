"""Attention norms, value zeroing and SmoothGrad against direct, unbatched computations of their papers' definitions
on tiny random models (Marian, T5, a Llama with grouped key/value heads, the LSTM where a method covers it)."""

import numpy as np
import pytest
import torch
from transformers import T5Config, T5ForConditionalGeneration

from explain.attribution import attribute
from explain.generation import translate
from explain.mixing import attention_norms, value_zeroing
from models.adapter import Decoding, LanternModel
from tests.conftest import assert_near_zero, make_tiny_llama, make_tiny_lstm, make_tiny_marian


def make_tiny_t5(vocab: int) -> T5ForConditionalGeneration:
    torch.manual_seed(0)
    config = T5Config(
        vocab_size=vocab, d_model=16, d_kv=8, d_ff=32, num_layers=2, num_heads=2, pad_token_id=0, eos_token_id=2,
        decoder_start_token_id=0, attn_implementation="eager",
    )  # fmt: skip
    model = T5ForConditionalGeneration(config).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@pytest.fixture(scope="module")
def models(tokenizers) -> dict[str, LanternModel]:
    src, tgt = tokenizers
    lstm = make_tiny_lstm(len(src), len(tgt), seed=1)
    for p in lstm.parameters():
        p.requires_grad_(False)
    return {
        "marian": LanternModel("marian", make_tiny_marian(len(src), len(tgt)), src, tgt),
        "t5": LanternModel("t5", make_tiny_t5(len(tgt)), tgt, tgt),
        "llama": LanternModel("llama", make_tiny_llama(len(tgt)), tgt, tgt),
        "lstm": LanternModel("lstm", lstm, src, tgt),
    }


def output(lm: LanternModel) -> tuple[list[int], list[int]]:
    tr = translate(lm, "我爱你。" if lm.name in ("marian", "lstm") else "I love you.", Decoding(max_new_tokens=5))
    return list(tr.src_ids), list(tr.tgt_ids)


def parts(lm: LanternModel, layer: int) -> tuple[torch.nn.Module, torch.nn.Module, torch.nn.Module, int]:
    """(the layer, its value projection, its output projection, heads), by each architecture's own names."""
    if lm.name == "marian":
        mod = lm.model.get_decoder().layers[layer]
        return mod, mod.encoder_attn.v_proj, mod.encoder_attn.out_proj, mod.encoder_attn.num_heads
    if lm.name == "t5":
        mod = lm.model.get_decoder().block[layer]
        return mod, mod.layer[1].EncDecAttention.v, mod.layer[1].EncDecAttention.o, lm.model.config.num_heads
    mod = lm.model.model.layers[layer]
    return mod, mod.self_attn.v_proj, mod.self_attn.o_proj, lm.model.config.num_attention_heads


def forward(lm: LanternModel, src: list[int], tgt: list[int], **kwargs):
    dec = lm.decoder_inputs(tgt)
    if lm.is_seq2seq():
        return lm.model(input_ids=torch.tensor([src]), decoder_input_ids=torch.tensor([dec]), use_cache=False, **kwargs)
    return lm.model(input_ids=torch.tensor([src + dec]), use_cache=False, **kwargs)


def n_layers(lm: LanternModel) -> int:
    return len(lm.model.get_decoder().layers if lm.name == "marian" else
               lm.model.get_decoder().block if lm.name == "t5" else lm.model.model.layers)  # fmt: skip


def rows(lm: LanternModel, src: list[int], tgt: list[int]) -> range:
    return range(len(tgt)) if lm.is_seq2seq() else range(len(src) - 1, len(src) - 1 + len(tgt))


@pytest.mark.parametrize("name", ["marian", "t5", "llama"])
def test_attention_norms_are_the_papers_definition(models, name):
    """‖Σ_h α^h_ij ((x_j W_V + b_V)_h W_O^h)‖, looping over layers, heads and tokens; x_j is what the value
    projection reads (the encoder's output, or Llama's normed residual stream), recorded by a hook."""
    lm = models[name]
    src, tgt = output(lm)
    ours = attention_norms(lm, src, tgt)
    inputs, handles = {}, []
    for layer in range(n_layers(lm)):
        _, v_proj, _, _ = parts(lm, layer)
        handles.append(v_proj.register_forward_hook(lambda m, a, o, k=layer: inputs.__setitem__(k, a[0][0])))
    with torch.no_grad():
        out = forward(lm, src, tgt, output_attentions=True)
    for h in handles:
        h.remove()
    weights = out.cross_attentions if lm.is_seq2seq() else out.attentions
    for layer in range(n_layers(lm)):
        _, v_proj, o_proj, heads = parts(lm, layer)
        dh = o_proj.in_features // heads
        groups = heads // (v_proj.out_features // dh)  # query heads per key/value head (Llama's GQA)
        x = inputs[layer]
        ref = torch.zeros(len(tgt), x.shape[0])
        for t, i in enumerate(rows(lm, src, tgt)):
            for j in range(x.shape[0]):
                total = torch.zeros(o_proj.out_features)
                for h in range(heads):
                    kv = h // groups
                    value = x[j] @ v_proj.weight[kv * dh : (kv + 1) * dh].T
                    if v_proj.bias is not None:
                        value = value + v_proj.bias[kv * dh : (kv + 1) * dh]
                    total += weights[layer][0, h, i, j] * (value @ o_proj.weight[:, h * dh : (h + 1) * dh].T)
                ref[t, j] = total.norm()
        assert_near_zero(ours[layer] - ref, ref, rel=1e-5)


@pytest.mark.parametrize("name", ["marian", "t5", "llama"])
def test_value_zeroing_is_the_papers_definition(models, name):
    """For each layer and token j: a full forward of the model whose value projection output at j is zeroed in that
    layer, the layer's output at each position compared with the original's by cosine distance, rows over 1."""
    lm = models[name]
    src, tgt = output(lm)
    ours = value_zeroing(lm, src, tgt)
    n_keys = len(src) if lm.is_seq2seq() else len(src) + len(tgt) - 1
    for layer in range(n_layers(lm)):
        mod, v_proj, _, _ = parts(lm, layer)
        found = {}
        read = mod.register_forward_hook(
            lambda m, a, o, found=found: found.__setitem__("out", o[0] if isinstance(o, tuple) else o)
        )
        with torch.no_grad():
            forward(lm, src, tgt)
        original = found["out"][0]
        ref = torch.zeros(len(tgt), n_keys)
        for j in range(n_keys):

            def zero(m, a, o, j=j):
                o = o.clone()
                o[:, j] = 0
                return o

            handle = v_proj.register_forward_hook(zero)
            with torch.no_grad():
                forward(lm, src, tgt)
            handle.remove()
            for t, i in enumerate(rows(lm, src, tgt)):
                if j <= i or lm.is_seq2seq():
                    ref[t, j] = 1 - torch.cosine_similarity(found["out"][0, i], original[i], dim=0)
        read.remove()
        ref = ref / ref.sum(1, keepdim=True)
        assert_near_zero(ours[layer] - ref, ref, rel=1e-4)
        np.testing.assert_allclose(ours[layer].sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("name", ["marian", "llama"])
def test_the_methods_average_the_layers_and_keep_their_invariants(models, name):
    lm = models[name]
    tr = translate(lm, "我爱你。" if name == "marian" else "I love you.", Decoding(max_new_tokens=5))
    t, s = len(tr.tgt_ids), len(tr.src_ids)
    norms, zeroing = attribute(lm, tr, "attention_norms"), attribute(lm, tr, "value_zeroing")
    maps = {"attention_norms": attention_norms, "value_zeroing": value_zeroing}
    for a in (norms, zeroing):
        per_layer = maps[a.method](lm, list(tr.src_ids), list(tr.tgt_ids)).mean(0).numpy()
        whole = a.scores if a.prefix_scores is None else np.concatenate([a.scores, a.prefix_scores], 1)
        assert a.scores.shape == (t, s) and (whole >= 0).all() and not a.signed
        if lm.is_seq2seq():
            assert a.prefix_scores is None  # the cross-attention reads the source only
            np.testing.assert_allclose(whole, per_layer, atol=1e-6)
        else:
            assert a.prefix_scores.shape == (t, t - 1)
            np.testing.assert_allclose(whole, np.concatenate([per_layer[:, :s], np.tril(per_layer[:, s:], -1)], 1))
    whole = zeroing.scores if zeroing.prefix_scores is None else np.hstack([zeroing.scores, zeroing.prefix_scores])
    np.testing.assert_allclose(whole.sum(1), 1.0, atol=1e-5)  # each layer's rows sum to 1, and so does their mean


def test_value_zeroing_gives_the_same_maps_in_small_chunks(models, monkeypatch):
    lm = models["marian"]
    src, tgt = output(lm)
    whole = value_zeroing(lm, src, tgt)
    monkeypatch.setenv("LANTERN_ATTRIBUTION_MB", "0.001")  # one copy per pass
    assert_near_zero(value_zeroing(lm, src, tgt) - whole, whole, rel=1e-5)


@pytest.mark.parametrize("method", ["attention_norms", "value_zeroing"])
def test_the_lstm_is_refused_clearly(models, method):
    lm = models["lstm"]
    tr = translate(lm, "我爱你。", Decoding(max_new_tokens=3))
    with pytest.raises(ValueError, match=r"LSTM's additive attention has none\. Use attention or a gradient method"):
        attribute(lm, tr, method)


@pytest.mark.parametrize("name", ["marian", "llama", "lstm"])
def test_smoothgrad_without_noise_is_saliency(models, name):
    lm = models[name]
    tr = translate(lm, "我爱你。" if name != "llama" else "I love you.", Decoding(max_new_tokens=4))
    smooth = attribute(lm, tr, "smoothgrad", noise_level=0.0, n_samples=3)
    saliency = attribute(lm, tr, "saliency")
    assert_near_zero(smooth.scores - saliency.scores, saliency.scores, rel=1e-5)
    assert_near_zero(smooth.prefix_scores - saliency.prefix_scores, saliency.prefix_scores, rel=1e-5)


@pytest.mark.parametrize("name", ["marian", "llama", "lstm"])
def test_smoothgrad_is_the_mean_gradient_over_noisy_copies(models, name):
    """σ = level × (max − min) of the sentence's source and prefix embeddings; the noise drawn with the seed
    (source [n, S, d], then prefix [n, P, d]); for each copy, one forward pass and the gradient of each step's
    log-probability; the L2 norm of each token's mean gradient."""
    lm = models[name]
    tr = translate(lm, "我爱你。" if name != "llama" else "I love you.", Decoding(max_new_tokens=4))
    n, level, seed = 3, 0.2, 7
    ours = attribute(lm, tr, "smoothgrad", noise_level=level, n_samples=n, seed=seed)
    src, tgt, dec = list(tr.src_ids), list(tr.tgt_ids), lm.decoder_inputs(list(tr.tgt_ids))
    e_src = lm.source_embedding()(torch.tensor([src]))[0]
    e_dec = lm.target_embedding()(torch.tensor([dec]))[0]
    both = torch.cat([e_src.flatten(), e_dec.flatten()])
    sigma = level * float(both.max() - both.min())
    g = torch.Generator().manual_seed(seed)
    noise_src = sigma * torch.randn(n, *e_src.shape, generator=g)
    noise_dec = sigma * torch.randn(n, *e_dec.shape, generator=g)
    grads_src, grads_dec = torch.zeros(len(tgt), *e_src.shape), torch.zeros(len(tgt), *e_dec.shape)
    for k in range(n):
        x_src = (e_src + noise_src[k]).requires_grad_(True)
        x_dec = (e_dec + noise_dec[k]).requires_grad_(True)
        if lm.is_seq2seq():
            handles = [
                lm.source_embedding().register_forward_hook(lambda m, i, o, x=x_src: x[None]),
                lm.target_embedding().register_forward_hook(lambda m, i, o, x=x_dec: x[None]),
            ]
        else:
            whole = torch.cat([x_src, x_dec])[None]
            handles = [lm.source_embedding().register_forward_hook(lambda m, i, o, x=whole: x)]
        with torch.enable_grad():
            logp = forward(lm, src, tgt).logits[0].float().log_softmax(-1)
        for h in handles:
            h.remove()
        for t, i in enumerate(rows(lm, src, tgt)):
            a, b = torch.autograd.grad(logp[i, tgt[t]], (x_src, x_dec), retain_graph=True, allow_unused=True)
            grads_src[t] += a / n
            grads_dec[t] += (b if b is not None else torch.zeros_like(x_dec)) / n
    ref_src, ref_dec = grads_src.norm(dim=-1).numpy(), grads_dec.norm(dim=-1).numpy()
    assert_near_zero(ours.scores - ref_src, ref_src, rel=1e-4)
    assert_near_zero(ours.prefix_scores - np.tril(ref_dec, 0 if lm.is_seq2seq() else -1), ref_dec, rel=1e-4)
    assert not np.allclose(ours.scores, attribute(lm, tr, "saliency").scores)  # the noise changed something


def test_smoothgrad_noise_level_is_checked(models):
    lm = models["marian"]
    tr = translate(lm, "我爱你。", Decoding(max_new_tokens=2))
    with pytest.raises(ValueError, match="noise_level must be between 0 and 1"):
        attribute(lm, tr, "smoothgrad", noise_level=2.0)
