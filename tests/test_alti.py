"""ALTI+ against a direct, unbatched computation of its papers' definition on tiny random models (a post-norm Marian,
a pre-norm Llama with grouped key/value heads); its invariants; the models it refuses."""

import numpy as np
import pytest
import torch

from explain.alignment import alignment_maps
from explain.alti import alti_blocks, alti_plus, block_contributions, decompose
from explain.attribution import attribute
from explain.generation import translate
from models.adapter import Decoding, LanternModel
from tests.conftest import assert_near_zero, make_tiny_llama, make_tiny_lstm, make_tiny_marian
from tests.test_methods_alignment import make_tiny_t5


def with_random_biases(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random biases and layer-norm weights: the models start with zero biases and unit norm weights, under which a
    scale or a bias misplaced in the decomposition would go unnoticed."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.Linear | torch.nn.LayerNorm) and m.bias is not None:
            m.bias.copy_(0.3 * torch.randn(m.bias.shape, generator=g))
        if isinstance(m, torch.nn.LayerNorm) or type(m).__name__.endswith("RMSNorm"):
            m.weight.copy_(1 + 0.3 * torch.randn(m.weight.shape, generator=g))
    return model


@pytest.fixture(scope="module")
def models(tokenizers) -> dict[str, LanternModel]:
    src, tgt = tokenizers
    lstm = make_tiny_lstm(len(src), len(tgt), seed=1)
    for p in lstm.parameters():
        p.requires_grad_(False)
    return {
        "marian": LanternModel("marian", with_random_biases(make_tiny_marian(len(src), len(tgt))), src, tgt),
        "llama": LanternModel("llama", with_random_biases(make_tiny_llama(len(tgt))), tgt, tgt),
        "t5": LanternModel("t5", make_tiny_t5(len(tgt)), tgt, tgt),
        "lstm": LanternModel("lstm", lstm, src, tgt),
    }


def output(lm: LanternModel, n: int = 5):
    return translate(lm, "我爱你。" if lm.name in ("marian", "lstm") else "I love you.", Decoding(max_new_tokens=n))


def record(lm: LanternModel, src: list[int], tgt: list[int]) -> tuple[object, dict]:
    """One teacher-forced pass with attention weights and hidden states, and, per attention block (named as
    ``explain.alti`` names them), what its value projection reads, the residual stream, its norm's input and the
    block's real output: a Marian block's layer norm's output, a Llama block's residual stream after attention
    (the input of its pre-FFN norm)."""
    found, handles, model = {}, [], lm.model

    def keep(key, what):
        def hook(module, args, out):
            found[(key, what)] = (args[0] if what.endswith("in") else out)[0].detach()

        return hook

    def pre(key, what):
        def hook(module, args, kwargs):
            found[(key, what)] = (args[0] if args else kwargs["hidden_states"])[0].detach()

        return hook

    if lm.is_seq2seq():
        parts = [
            (f"encoder.{i}", m.self_attn, m.self_attn_layer_norm) for i, m in enumerate(model.get_encoder().layers)
        ]
        for i, m in enumerate(model.get_decoder().layers):
            parts += [(f"decoder.{i}.self", m.self_attn, m.self_attn_layer_norm)]
            parts += [(f"decoder.{i}.cross", m.encoder_attn, m.encoder_attn_layer_norm)]
        for key, att, norm in parts:
            handles.append(att.v_proj.register_forward_hook(keep(key, "value_in")))
            handles.append(att.q_proj.register_forward_hook(keep(key, "residual_in")))  # post-norm: the query's input
            handles.append(norm.register_forward_hook(keep(key, "norm_in")))
            handles.append(norm.register_forward_hook(keep(key, "y")))
    else:
        for i, m in enumerate(model.model.layers):
            key = f"layers.{i}"
            handles.append(m.self_attn.v_proj.register_forward_hook(keep(key, "value_in")))
            handles.append(m.register_forward_pre_hook(pre(key, "residual_in"), with_kwargs=True))
            handles.append(m.post_attention_layernorm.register_forward_pre_hook(pre(key, "y"), with_kwargs=True))
    dec = lm.decoder_inputs(tgt)
    try:
        with torch.no_grad():
            if lm.is_seq2seq():
                out = model(input_ids=torch.tensor([src]), decoder_input_ids=torch.tensor([dec]), use_cache=False,
                            output_attentions=True, output_hidden_states=True)  # fmt: skip
            else:
                out = model(input_ids=torch.tensor([src + dec]), use_cache=False, output_attentions=True,
                            output_hidden_states=True)  # fmt: skip
    finally:
        for h in handles:
            h.remove()
    return out, found


def blocks_of(lm: LanternModel) -> list[tuple[str, torch.nn.Module, torch.nn.Module | None, str, int]]:
    """(name, attention, post-norm layer norm or None, attention output field, layer) in running order."""
    model = lm.model
    if not lm.is_seq2seq():
        return [(f"layers.{i}", m.self_attn, None, "attentions", i) for i, m in enumerate(model.model.layers)]
    found = [(f"encoder.{i}", m.self_attn, m.self_attn_layer_norm, "encoder_attentions", i)
             for i, m in enumerate(model.get_encoder().layers)]  # fmt: skip
    for i, m in enumerate(model.get_decoder().layers):
        found += [(f"decoder.{i}.self", m.self_attn, m.self_attn_layer_norm, "decoder_attentions", i)]
        found += [(f"decoder.{i}.cross", m.encoder_attn, m.encoder_attn_layer_norm, "cross_attentions", i)]
    return found


def reference_contributions(lm: LanternModel, src: list[int], tgt: list[int]) -> dict[str, torch.Tensor]:
    """ALTI's c_ij per block, position by position: T_i(x_j) = Σ_h α^h_ij ((x_j W_V + b_V)_h W_O^h), plus x_i when
    j = i (self-attention) or as one more term (cross-attention); post-norm: each term centred, times the norm's
    weight, over the norm's own σ = √(Var[input] + ε); c_ij = max(0, ‖y_i‖₁ − ‖y_i − T_i(x_j)‖₁) / Σ_k, with y_i
    the block's real output."""
    out, found = record(lm, src, tgt)
    maps = {}
    for name, att, norm, field, layer in blocks_of(lm):
        alpha = getattr(out, field)[layer][0]  # [H, Q, K]
        heads, n_q, n_keys = alpha.shape
        v_proj, o_proj = att.v_proj, first(att, "out_proj", "o_proj")
        dh = o_proj.in_features // heads
        groups = heads // (v_proj.out_features // dh)
        x, residual, y = found[(name, "value_in")], found[(name, "residual_in")], found[(name, "y")]
        cross = name.endswith(".cross")
        c = torch.zeros(n_q, n_keys + cross)
        for i in range(n_q):
            terms = []
            for j in range(n_keys):
                t = torch.zeros(o_proj.out_features)
                for h in range(heads):
                    kv = h // groups
                    value = x[j] @ v_proj.weight[kv * dh : (kv + 1) * dh].T
                    if v_proj.bias is not None:
                        value = value + v_proj.bias[kv * dh : (kv + 1) * dh]
                    t += alpha[h, i, j] * (value @ o_proj.weight[:, h * dh : (h + 1) * dh].T)
                if j == i and not cross:
                    t = t + residual[i]
                terms.append(t)
            if cross:
                terms.append(residual[i])
            if norm is not None:
                z = found[(name, "norm_in")][i]
                sigma = torch.sqrt(((z - z.mean()) ** 2).mean() + norm.eps)
                terms = [(t - t.mean()) / sigma * norm.weight for t in terms]  # the biases go with the whole
            for j, t in enumerate(terms):
                c[i, j] = max(0.0, float(y[i].abs().sum() - (y[i] - t).abs().sum()))
            c[i] /= c[i].sum()
        maps[name] = c
    return maps


def first(module: torch.nn.Module, *names: str) -> torch.nn.Module:
    return next(getattr(module, n) for n in names if hasattr(module, n))


def reference_rollout(lm: LanternModel, src: list[int], tgt: list[int]) -> torch.Tensor:
    """The rollout written out entry by entry. Encoder-decoder: R_enc = C_L … C_1; per decoder layer,
    R_new[i, k] = Σ_j CA[i, j] R_enc[j, k] (k a source token) + Σ_m CA[i, residual] SA[i, m] R[m, k], from R = [0, I].
    Decoder-only: R_new[i, k] = Σ_m C[i, m] R[m, k] from I, read at the positions that predict the outputs."""
    c = reference_contributions(lm, src, tgt)
    s, t = len(src), len(tgt)

    def product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(a.shape[0], b.shape[1])
        for i in range(a.shape[0]):
            for k in range(b.shape[1]):
                out[i, k] = sum(float(a[i, m]) * float(b[m, k]) for m in range(a.shape[1]))
        return out

    layers = []
    if lm.is_seq2seq():
        r_enc = torch.eye(s)
        for name in (n for n in c if n.startswith("encoder.")):
            r_enc = product(c[name], r_enc)
        rolled = torch.cat([torch.zeros(t, s), torch.eye(t)], 1)
        for i in range(sum(n.endswith(".cross") for n in c)):
            cross, self_ = c[f"decoder.{i}.cross"], c[f"decoder.{i}.self"]
            through_prefix = product(cross[:, s : s + 1] * self_, rolled)
            from_source = torch.cat([product(cross[:, :s], r_enc), torch.zeros(t, t)], 1)
            rolled = through_prefix + from_source
            layers.append(rolled)
        return torch.stack(layers)
    rolled = torch.eye(s + t - 1)
    for name in c:
        rolled = product(c[name], rolled)
        layers.append(rolled[s - 1 : s - 1 + t])
    return torch.stack(layers)


@pytest.mark.parametrize("name", ["marian", "llama"])
def test_each_blocks_decomposition_adds_up_to_its_real_output(models, name):
    """The terms and the bias of every block, from the model's own attention weights and hidden states (the
    encoder's layer inputs, its last output for the cross-attention), sum to the block's real output."""
    lm = models[name]
    tr = output(lm)
    src, tgt = list(tr.src_ids), list(tr.tgt_ids)
    out, found = record(lm, src, tgt)
    for block in alti_blocks(lm):
        alpha = getattr(out, block.weights)[block.layer][0]
        if block.weights == "encoder_attentions":
            x = residual = out.encoder_hidden_states[block.layer][0]
        elif block.weights == "cross_attentions":
            x, residual = out.encoder_last_hidden_state[0], found[(block.name, "residual_in")]
        elif block.weights == "decoder_attentions":
            x = residual = out.decoder_hidden_states[block.layer][0]
        else:  # Llama: the value reads the normed stream
            residual = out.hidden_states[block.layer][0]
            x = lm.model.model.layers[block.layer].input_layernorm(residual)
        values = x @ block.value.weight.T + (block.value.bias if block.value.bias is not None else 0)
        parts = decompose(block, alpha, values, residual, range(alpha.shape[1]))
        real = found[(block.name, "y")]
        assert parts.terms.shape == (alpha.shape[1], alpha.shape[2] + block.cross, real.shape[-1])
        assert_near_zero(parts.terms.sum(1) + parts.bias - real, real, rel=1e-5)


@pytest.mark.parametrize("name", ["marian", "llama"])
def test_alti_plus_is_the_papers_definition(models, name):
    lm = models[name]
    tr = output(lm)
    src, tgt = list(tr.src_ids), list(tr.tgt_ids)
    ref_blocks = reference_contributions(lm, src, tgt)
    ours_blocks = block_contributions(lm, src, tgt)
    assert list(ours_blocks) == list(ref_blocks)
    for key, ref in ref_blocks.items():
        assert_near_zero(ours_blocks[key] - ref, ref, rel=1e-5)
    ref = reference_rollout(lm, src, tgt)
    ours = alti_plus(lm, src, tgt)
    n_keys = len(src) + len(tgt) - (0 if lm.is_seq2seq() else 1)
    assert ours.shape == ref.shape == (2, len(tgt), n_keys)
    assert_near_zero(ours - ref, ref, rel=1e-5)


@pytest.mark.parametrize("name", ["marian", "llama"])
def test_rows_are_non_negative_shares_summing_to_one(models, name):
    lm = models[name]
    tr = output(lm, 6)
    src, tgt = list(tr.src_ids), list(tr.tgt_ids)
    for c in block_contributions(lm, src, tgt).values():
        assert float(c.min()) >= 0.0
        np.testing.assert_allclose(c.sum(-1).numpy(), 1.0, atol=1e-5)
    rolled = alti_plus(lm, src, tgt)
    assert float(rolled.min()) >= 0.0
    np.testing.assert_allclose(rolled.sum(-1).numpy(), 1.0, atol=1e-5)
    s, t = len(src), len(tgt)
    prefix = rolled[:, :, s:].numpy()  # step t reads decoder inputs 0..t (after a prompt: prefix 0..t-1)
    np.testing.assert_allclose(np.triu(prefix, 1 if lm.is_seq2seq() else 0), 0.0, atol=1e-7)
    a = attribute(lm, tr, "alti_plus")
    assert not a.signed and a.scores.shape == (t, s)
    assert a.prefix_scores.shape == (t, t if lm.is_seq2seq() else t - 1)
    np.testing.assert_allclose(a.scores, rolled[-1, :, :s].numpy(), atol=1e-6)
    np.testing.assert_allclose(a.scores.sum(1) + a.prefix_scores.sum(1), 1.0, atol=1e-5)
    assert attribute(lm, tr, "alti_plus", with_prefix=False).prefix_scores is None


def test_small_chunks_give_the_same_maps(models, monkeypatch):
    lm = models["marian"]
    tr = output(lm)
    whole = alti_plus(lm, list(tr.src_ids), list(tr.tgt_ids))
    monkeypatch.setenv("LANTERN_ATTRIBUTION_MB", "0.0001")  # one query position per chunk
    assert_near_zero(alti_plus(lm, list(tr.src_ids), list(tr.tgt_ids)) - whole, whole, rel=1e-6)


def test_word_alignments_read_the_last_layers_source_part(models):
    lm = models["marian"]
    tr = output(lm)
    maps = alignment_maps(lm, tr, "alti_plus")
    final = alti_plus(lm, list(tr.src_ids), list(tr.tgt_ids))[-1, :, : len(tr.src_ids)]
    np.testing.assert_allclose(maps.maps["mean"], final.numpy(), atol=1e-6)


def test_the_lstm_is_refused_clearly(models):
    lm = models["lstm"]
    tr = output(lm, 3)
    with pytest.raises(ValueError, match=r"LSTM's additive attention has none\. Use attention or a gradient method"):
        attribute(lm, tr, "alti_plus")
    with pytest.raises(ValueError, match="LSTM"):
        alti_plus(lm, list(tr.src_ids), list(tr.tgt_ids))


def test_a_pre_norm_encoder_decoder_is_refused_clearly(models):
    lm = models["t5"]
    tr = output(lm, 3)
    with pytest.raises(ValueError, match=r"post-norm encoder-decoders \(Marian, BART\); t5 is a t5 model"):
        alti_plus(lm, list(tr.src_ids), list(tr.tgt_ids))
