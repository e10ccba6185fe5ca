"""Context mixing read off the attention's value vectors, per layer: attention norms and value zeroing.

Both read the attention through which the output reads the input: the decoder's cross-attention of an
encoder-decoder (Marian, Lantern's Transformers, T5), the causal self-attention of a decoder-only model
(Llama-, Gemma-, Qwen-style modules with separate value and output projections) over prompt and prefix.

- ``attention_norms`` (Kobayashi et al. 2020, "Attention is not only a weight: analyzing transformers with vector
  norms", EMNLP): with f_h(x) = (x W_V^h + b_V^h) W_O^h the value vector of head h carried through that head's slice
  of the output projection (the output projection's bias, added once, is left out), layer l's score of output
  position i for input token j is ‖Σ_h α^h_ij f_h(x_j)‖: the norm of what token j adds to position i through the
  whole layer. This is the layer-level measure the authors' code computes (``summed_weighted_vector_norm``) and
  aligns with in their NMT experiment, not the sum of per-head norms.
- ``value_zeroing`` (Mohebbi et al. 2023, "Quantifying Context Mixing in Transformers", EACL): for each input token
  j, its value vector (all heads, bias included) is set to zero in one layer's attention and the model is run
  again up to that layer's output; the score of position i is the cosine distance between the layer's original
  and altered output at i, and each row is normalised to sum to 1.

Each returns one map per layer [L, T, K] (row t: the position that predicts output token t; K: the source tokens
of an encoder-decoder, or prompt + prefix positions of a decoder-only model). The explanation methods average
the layers (``explain.methods``); ``python -m explain.evaluate`` also scores each layer alone.
An LSTM has no value vectors: both raise ``ValueError`` for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput

from common.limits import limit
from explain.anatomy import first_module
from explain.capture import hooks
from models.adapter import LanternModel
from models.lstm_attention import LstmAttnForConditionalGeneration

Progress = Callable[[float], None] | None


@dataclass(frozen=True)
class MixingLayer:
    """One layer's attention by role: the module whose output is the layer's representation, the linear map that
    makes the values (bias included) and the one that maps the concatenated heads back to the residual stream."""

    layer: nn.Module
    value: nn.Linear
    out: nn.Linear
    heads: int

    @property
    def head_dim(self) -> int:
        return self.out.in_features // self.heads

    @property
    def kv_heads(self) -> int:
        return self.value.out_features // self.head_dim


def mixing_layers(lm: LanternModel, what: str = "this method") -> list[MixingLayer]:
    """The attention the output reads the input through, per layer; ``ValueError`` for models without value
    vectors (the LSTM) or with projections Lantern cannot split by head (GPT-2's fused ``c_attn``)."""
    model = lm.model
    if isinstance(model, LstmAttnForConditionalGeneration) or any(isinstance(m, nn.RNNBase) for m in model.modules()):
        raise ValueError(
            f"{what} cannot explain {lm.name}: it reads the value vectors of a Transformer's attention, and an "
            "LSTM's additive attention has none. Use attention or a gradient method"
        )
    if lm.is_seq2seq():
        decoder = model.get_decoder()
        stack = getattr(decoder, "layers", None) or getattr(decoder, "block", None)
        names = ("encoder_attn", "crossattention", "layer.1.EncDecAttention")  # Marian/BART, T5
    else:
        inner = getattr(model, "model", None)
        stack = getattr(inner, "layers", None)
        names = ("self_attn",)
    found = []
    for mod in stack or []:
        attention = first_module(mod, *names)
        value = first_module(attention, "v_proj", "v") if attention is not None else None
        out = first_module(attention, "out_proj", "o_proj", "o") if attention is not None else None
        if not isinstance(value, nn.Linear) or not isinstance(out, nn.Linear):
            break
        heads = next(
            (
                v
                for v in (
                    getattr(attention, "num_heads", None),
                    getattr(attention, "n_heads", None),
                    getattr(model.config, "decoder_attention_heads", None),
                    getattr(model.config, "num_attention_heads", None),
                )
                if isinstance(v, int) and v > 0
            ),
            None,
        )
        if heads is None or out.in_features % heads:
            break
        found.append(MixingLayer(mod, value, out, heads))
    if not found or len(found) != len(stack):
        raise ValueError(
            f"{what} needs attention modules with separate value and output projections (Marian, T5, Llama- or "
            f"Gemma-style); Lantern cannot find them in {type(model).__name__} ({lm.name})"
        )
    return found


def _output(out: object) -> torch.Tensor:
    return out[0] if isinstance(out, tuple | list) else out


def _rows(lm: LanternModel, n_src: int, n_tgt: int) -> slice:
    """The query positions that predict the output tokens."""
    return slice(0, n_tgt) if lm.is_seq2seq() else slice(n_src - 1, n_src - 1 + n_tgt)


@torch.no_grad()
def attention_norms(lm: LanternModel, src_ids: list[int], tgt_ids: list[int]) -> torch.Tensor:
    """‖Σ_h α^h_ij f_h(x_j)‖ per layer: [L, T, K] (see the module's docstring)."""
    layers = mixing_layers(lm, "Attention norms")
    with lm.lock, hooks(outputs={str(i): m.value for i, m in enumerate(layers)}) as values:
        out = lm.score(list(src_ids), list(tgt_ids), output_attentions=True)
    weights = out.cross_attentions if lm.is_seq2seq() else out.attentions
    rows = _rows(lm, len(src_ids), len(tgt_ids))
    maps = []
    for i, m in enumerate(layers):
        v = values[str(i)][0].float()  # [K, kv * dh]
        v = v.view(len(v), m.kv_heads, m.head_dim).repeat_interleave(m.heads // m.kv_heads, dim=1)  # [K, H, dh]
        w_o = m.out.weight.float().view(m.out.out_features, m.heads, m.head_dim)  # [D, H, dh]
        f = torch.einsum("khe,dhe->hkd", v, w_o)  # f_h(x_k) [H, K, D]
        alpha = weights[i][0, :, rows].float()  # [H, T, K]
        maps.append(torch.einsum("htk,hkd->tkd", alpha, f).norm(dim=-1))
    return torch.stack(maps)


class _Stop(Exception):
    """Raised by the hook on the layer read: nothing after it is needed."""


@torch.no_grad()
def value_zeroing(
    lm: LanternModel,
    src_ids: list[int],
    tgt_ids: list[int],
    progress: Progress = None,
) -> torch.Tensor:
    """Cosine distance of each layer's output with and without each input token's value vector, rows normalised
    to 1: [L, T, K] (see the module's docstring). One batched pass per layer and chunk: copy 0 keeps every value,
    copy 1 + j zeroes token j's; each pass stops at the layer it reads."""
    layers = mixing_layers(lm, "Value zeroing")
    dev, seq2seq = lm.device, lm.is_seq2seq()
    src = torch.tensor([src_ids], device=dev)
    dec = torch.tensor([lm.decoder_inputs(list(tgt_ids))], device=dev)
    with lm.lock:
        if seq2seq:
            encoded = lm.model.get_encoder()(input_ids=src, attention_mask=torch.ones_like(src)).last_hidden_state
            n_keys, length = len(src_ids), dec.shape[1]
        else:
            ids = torch.cat([src, dec], 1)
            n_keys = length = ids.shape[1]
    d, rows = layers[0].out.out_features, _rows(lm, len(src_ids), len(tgt_ids))
    # a copy's activations within one layer, without gradients: the residual stream and its transients (~16 d per
    # position), the attention scores over the keys (2 per head); fp32
    per_copy = 4 * (length * 16 * d + 2 * layers[0].heads * length * max(length, n_keys))
    chunk = max(1, int(limit("attribution_mb") * 2**20 / per_copy))
    zeroed = list(range(-1, n_keys))  # -1: nothing zeroed (the original)
    maps, done, total = [], 0, len(layers) * len(zeroed)
    for m in layers:
        outputs = []
        for c in range(0, len(zeroed), chunk):
            part = torch.tensor(zeroed[c : c + chunk], device=dev)
            keep = torch.ones(len(part), n_keys, 1, device=dev)
            keep[torch.arange(len(part), device=dev)[part >= 0], part[part >= 0]] = 0.0
            outputs.append(_layer_output(lm, m, keep, encoded if seq2seq else None, dec if seq2seq else ids))
            done += len(part)
            if progress:
                progress(min(1.0, done / total))
        hidden = torch.cat(outputs).float()[:, rows]  # [1 + K, T, D]
        distance = (1 - torch.cosine_similarity(hidden[1:], hidden[:1], dim=-1)).clamp(min=0).T  # [T, K]
        if not seq2seq:  # a position reads only the keys up to itself; later ones change it by rounding at most
            distance = distance * torch.ones_like(distance).tril(rows.start)
        total_row = distance.sum(-1, keepdim=True)
        maps.append(torch.where(total_row > 0, distance / total_row.clamp(min=1e-30), distance))
    return torch.stack(maps)


def _layer_output(
    lm: LanternModel,
    m: MixingLayer,
    keep: torch.Tensor,
    encoded: torch.Tensor | None,
    ids: torch.Tensor,
) -> torch.Tensor:
    """Layer ``m``'s output for a batch whose values at the keys are multiplied by ``keep`` [B, K, 1]: the decoder
    on ``encoded`` [1, S, D] reading ``ids`` [1, T] (encoder-decoder), or the model on ``ids`` (decoder-only)."""
    found: dict[str, torch.Tensor] = {}
    b = len(keep)

    def zero(module: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
        return out * keep.to(out.dtype)

    def read(module: nn.Module, args: tuple, out: object) -> None:
        found["out"] = _output(out)
        raise _Stop

    handles = [m.value.register_forward_hook(zero), m.layer.register_forward_hook(read)]
    try:
        with lm.lock:
            if encoded is not None:
                lm.model(
                    encoder_outputs=BaseModelOutput(last_hidden_state=encoded.expand(b, -1, -1)),
                    attention_mask=torch.ones(b, encoded.shape[1], dtype=torch.long, device=encoded.device),
                    decoder_input_ids=ids.expand(b, -1),
                    use_cache=False,
                )
            else:
                mask = torch.ones_like(ids).expand(b, -1)
                lm.model(input_ids=ids.expand(b, -1), attention_mask=mask, use_cache=False)
    except _Stop:
        pass
    finally:
        for h in handles:
            h.remove()
    return found["out"]
