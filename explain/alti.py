"""ALTI+: how much each source token and each target-prefix token contributes to each output step.

ALTI (Ferrando, Gállego, Costa-jussà 2022, "Measuring the Mixing of Contextual Information in the Transformer",
EMNLP) and its encoder-decoder extension ALTI+ (Ferrando, Gállego, Alastruey, Escolano, Costa-jussà 2022, "Towards
Opening the Black Box of Neural Machine Translation: Source and Target Contributions of Each Input Token", EMNLP),
following the authors' code (mt-upc/transformer-contributions-nmt) except where noted.

One attention block: its output at position i is a sum of one vector per input token j,
T_i(x_j) = Σ_h α^h_ij f_h(x_j) with f_h(x) = (x W_V + b_V)_h W_O^h (the value through head h's slice of the output
projection), plus the residual x_i, counted with j = i in a self-attention and as one more term in a
cross-attention, plus the output projection's bias, which goes with the whole.

- Post-norm (Marian, BART; Lantern's Transformers): the block's output is LN(Σ_j T_i(x_j) + b_O). The layer norm is
  applied to each term linearly: centred, times the norm's weight, divided by the standard deviation of the whole
  sum, exactly as the norm computes it (√(biased variance + ε); the authors' code divides by the unbiased standard
  deviation of the input plus ε); the centred, scaled b_O and the norm's bias go with the whole. The terms and
  that bias add up to the block's output.
- Pre-norm (Llama-, Qwen-, Gemma-1-style decoder-only models): the value reads the normed stream, a token-wise
  function of x_j, and the block's output (the residual stream after it) is the plain sum of the terms and b_O.

With y_i the block's output, the contribution of j to i is c_ij = max(0, ‖y_i‖₁ − ‖y_i − T_i(x_j)‖₁), each row
divided by its sum (a row that would be all zeros keeps position i, or the residual, alone). The feed-forward
layers work token by token and mix nothing.

Rollout: the encoder's maps multiply, R_enc = C_L ⋯ C_1 [S, S]. Decoder layer l has a self-attention map
SA_l [T, T] over the decoder positions and a cross-attention map CA_l [T, S + 1] over the encoder's outputs and
the residual (the self-attention block's output); the residual's share is split as SA_l says, so the layer's map
over [source tokens, decoder positions] is [CA_l[:, :S] R_enc, CA_l[:, S] · SA_l], and
R_l = [CA_l[:, :S] R_enc, 0] + (CA_l[:, S] · SA_l) R_{l−1}, starting from R_{−1} = [0, I_T]. Every row of every R_l
sums to 1. A decoder-only model is plain ALTI: R_l = C_l R_{l−1} over the prompt and prefix positions.

``alti_plus`` returns R_l for every layer l of the decoder (or of the decoder-only model), [L, T, K]: row t is the
position that predicts output token t; K is the source tokens then the T decoder inputs (start token, y_0 ..
y_{T−2}) of an encoder-decoder, or the prompt + prefix positions of a decoder-only model. Layer l is what reaches
that layer's output; ALTI+ itself is the last layer, ``[-1]``, the one map the explanation method ``alti_plus``
reports (source and prefix scores), and the one the Alignments page and ``python -m explain.evaluate`` score (the
earlier layers' rollouts are partial: they miss what the later layers mix in).

Refused with ``ValueError``: the LSTM (no value vectors), GPT-2 (fused projections), pre-norm encoder-decoders (T5,
mBART) and models that normalise the attention's output before adding it (Gemma 2 and 3).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from common.limits import limit
from explain.anatomy import first_module
from explain.capture import hooks
from explain.mixing import mixing_layers
from models.adapter import LanternModel

POST_NORM = ("marian", "bart")  # encoder-decoders whose blocks add, then normalise


@dataclass(frozen=True)
class AltiBlock:
    """One attention block by role."""

    name: str  # "encoder.0", "decoder.0.self", "decoder.0.cross", "layers.0"
    value: nn.Linear
    out: nn.Linear
    residual: nn.Module  # its first input is the residual stream the attention's output is added to
    norm: nn.LayerNorm | None  # post-norm: the layer norm of residual + attention; None: pre-norm
    weights: str  # the model output holding its attention weights ("encoder_attentions", "cross_attentions"...)
    layer: int
    cross: bool = False


@dataclass(frozen=True)
class Decomposition:
    """A block's output at some query positions as per-input-token terms: terms.sum(1) + bias is the output."""

    terms: torch.Tensor  # [q, K, D] (a cross-attention: K encoder outputs, then the residual)
    bias: torch.Tensor  # [q, D]


def alti_blocks(lm: LanternModel) -> list[AltiBlock]:
    """The attention blocks ALTI+ reads, in the order they run; ``ValueError`` for models it cannot decompose."""
    mixing_layers(lm, "ALTI+")  # the LSTM and GPT-2 are refused there, with the same words as the other methods
    model, found = lm.model, []
    kind = getattr(model.config, "model_type", "")

    def part(mod: nn.Module, *names: str) -> nn.Module:
        found_part = first_module(mod, *names)
        if found_part is None:
            raise ValueError(f"ALTI+ cannot find {names[0]} in {type(model).__name__} ({lm.name})")
        return found_part

    if lm.is_seq2seq():
        if kind not in POST_NORM:
            raise ValueError(
                f"ALTI+ here decomposes post-norm encoder-decoders (Marian, BART); {lm.name} is a {kind or 'other'} "
                "model, whose layer norms sit elsewhere. Use attention norms or value zeroing"
            )
        for i, mod in enumerate(model.get_encoder().layers):
            att = part(mod, "self_attn")
            norm = part(mod, "self_attn_layer_norm")
            found.append(AltiBlock(f"encoder.{i}", att.v_proj, att.out_proj, att, norm, "encoder_attentions", i))
        for i, mod in enumerate(model.get_decoder().layers):
            att, cross = part(mod, "self_attn"), part(mod, "encoder_attn")
            self_norm, cross_norm = part(mod, "self_attn_layer_norm"), part(mod, "encoder_attn_layer_norm")
            found.append(
                AltiBlock(f"decoder.{i}.self", att.v_proj, att.out_proj, att, self_norm, "decoder_attentions", i)
            )
            found.append(
                AltiBlock(
                    f"decoder.{i}.cross", cross.v_proj, cross.out_proj, cross, cross_norm, "cross_attentions", i, True
                )
            )
        return found
    for i, m in enumerate(mixing_layers(lm, "ALTI+")):
        mod = m.layer
        if hasattr(mod, "pre_feedforward_layernorm") or not hasattr(mod, "input_layernorm"):
            raise ValueError(
                f"ALTI+ here decomposes pre-norm decoder-only models that add the attention's output to the residual "
                f"stream as it is (Llama, Qwen, Gemma 1); {lm.name} ({type(model).__name__}) normalises it first"
            )
        found.append(AltiBlock(f"layers.{i}", m.value, m.out, mod, None, "attentions", i))
    return found


def _chunk(n_keys: int, d: int) -> int:
    """Query positions per chunk: the terms [q, K, D] and a few temporaries of that size, fp32."""
    return max(1, int(limit("attribution_mb") * 2**20 / (4 * 4 * max(1, n_keys) * d)))


def decompose(
    block: AltiBlock, alpha: torch.Tensor, values: torch.Tensor, residual: torch.Tensor, rows: range
) -> Decomposition:
    """The block's output at query positions ``rows`` as terms per input token (see the module's docstring).

    ``alpha`` [H, Q, K]: attention weights; ``values`` [K, kv heads × head dim]: the value projection's output
    (bias included); ``residual`` [Q, D]: the stream the attention's output is added to."""
    alpha, values, residual = alpha.float(), values.float(), residual.float()
    heads, n_keys = alpha.shape[0], alpha.shape[2]
    w_o = block.out.weight.float()  # [D, H dh]
    d, head_dim = w_o.shape[0], w_o.shape[1] // heads
    v = values.view(n_keys, -1, head_dim)
    v = v.repeat_interleave(heads // v.shape[1], dim=1)  # [K, H, dh] (grouped key/value heads shared)
    idx = torch.arange(rows.start, rows.stop, device=alpha.device)
    a = alpha[:, idx]  # [H, q, K]
    mixed = torch.einsum("hqk,khe->qkhe", a, v).reshape(len(idx), n_keys, heads * head_dim) @ w_o.T  # [q, K, D]
    b_o = block.out.bias.float() if block.out.bias is not None else torch.zeros(d, device=w_o.device)
    r = residual[idx]
    if block.cross:
        terms = torch.cat([mixed, r[:, None]], 1)
    else:  # self-attention: the query's own key is its position
        terms = mixed
        terms[torch.arange(len(idx), device=idx.device), idx] += r
    bias = b_o.expand(len(idx), d)
    if block.norm is not None:  # post-norm: the layer norm applied to every term with the whole's scale
        norm = block.norm
        w = norm.weight.float() if norm.weight is not None else torch.ones(d, device=w_o.device)
        b_ln = norm.bias.float() if norm.bias is not None else torch.zeros(d, device=w_o.device)
        whole = terms.sum(1) + b_o
        scale = (whole.var(-1, unbiased=False, keepdim=True) + norm.eps).rsqrt()  # [q, 1]
        terms = (terms - terms.mean(-1, keepdim=True)) * (w * scale)[:, None]
        bias = (b_o - b_o.mean()) * w * scale + b_ln
    return Decomposition(terms, bias)


def contributions(parts: Decomposition, rows: range, causal: bool = False, cross: bool = False) -> torch.Tensor:
    """ALTI's c_ij [q, K] of a decomposition (rows sum to 1): max(0, ‖y_i‖₁ − ‖y_i − T_i(x_j)‖₁), normalised.
    ``causal``: keys after the query are masked (they are zero terms; rounding could leave crumbs). A row of zeros
    keeps the query's own position (``cross``: the residual, the last column)."""
    y = parts.terms.sum(1) + parts.bias  # [q, D]
    c = (y.abs().sum(-1, keepdim=True) - (y[:, None] - parts.terms).abs().sum(-1)).clamp(min=0)  # [q, K]
    q, k = c.shape
    own = torch.arange(rows.start, rows.stop, device=c.device)  # a self-attention's own position
    if causal:
        c = c * (torch.arange(k, device=c.device)[None] <= own[:, None])
    total = c.sum(-1, keepdim=True)
    keep = torch.zeros_like(c)
    keep[torch.arange(q, device=c.device), torch.full_like(own, k - 1) if cross else own] = 1.0
    return torch.where(total > 0, c / total.clamp(min=1e-30), keep)


@torch.no_grad()
def block_contributions(lm: LanternModel, src_ids: list[int], tgt_ids: list[int]) -> dict[str, torch.Tensor]:
    """ALTI's map of every attention block, by ``AltiBlock.name``: [Q, K] (a cross-attention: [T, S + 1], the
    last column the residual). One teacher-forced pass."""
    blocks = alti_blocks(lm)
    with (
        lm.lock,
        hooks(
            outputs={f"v {b.name}": b.value for b in blocks}, inputs={f"r {b.name}": b.residual for b in blocks}
        ) as found,
    ):
        out = lm.score(list(src_ids), list(tgt_ids), output_attentions=True)
    maps = {}
    for b in blocks:
        alpha = getattr(out, b.weights)[b.layer][0]  # [H, Q, K]
        values, residual = found[f"v {b.name}"][0], found[f"r {b.name}"][0]
        n_q, n_keys = alpha.shape[1], alpha.shape[2]
        step = _chunk(n_keys + 1, residual.shape[-1])
        causal = b.weights in ("decoder_attentions", "attentions")
        parts = []
        for start in range(0, n_q, step):
            rows = range(start, min(n_q, start + step))
            c = contributions(decompose(b, alpha, values, residual, rows), rows, causal and not b.cross, b.cross)
            parts.append(c)
        maps[b.name] = torch.cat(parts)
    return maps


@torch.no_grad()
def alti_plus(lm: LanternModel, src_ids: list[int], tgt_ids: list[int]) -> torch.Tensor:
    """The rolled-out contributions R_l of every decoder layer: [L, T, K] (see the module's docstring); ALTI+ is
    ``[-1]``. Rows sum to 1."""
    maps = {k: v.float().cpu() for k, v in block_contributions(lm, src_ids, tgt_ids).items()}
    s, t = len(src_ids), len(tgt_ids)
    out = []
    if lm.is_seq2seq():
        n_enc = sum(name.startswith("encoder.") for name in maps)
        r_enc = torch.eye(s)
        for i in range(n_enc):
            r_enc = maps[f"encoder.{i}"] @ r_enc
        n_dec = sum(name.endswith(".cross") for name in maps)
        rolled = torch.cat([torch.zeros(t, s), torch.eye(t)], 1)  # the decoder inputs are themselves
        for i in range(n_dec):
            cross, self_ = maps[f"decoder.{i}.cross"], maps[f"decoder.{i}.self"]
            rolled = (cross[:, -1:] * self_) @ rolled
            rolled[:, :s] += cross[:, :s] @ r_enc
            out.append(rolled)
        return torch.stack(out)
    n = s + t - 1
    rolled = torch.eye(n)
    rows = slice(s - 1, s - 1 + t)
    for i in range(len(maps)):
        rolled = maps[f"layers.{i}"] @ rolled
        out.append(rolled[rows])
    return torch.stack(out)
