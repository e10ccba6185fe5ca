"""Where the parts of a model are: its blocks, their attention and feed-forward modules, the final norm and head.

One place that knows the module names of the architectures Lantern reads inside (Marian/BART-style
encoder-decoders, Llama- and Gemma-style and GPT-2 decoder-only models, Lantern's LSTM), so the explanation code
hooks modules by role, not by name. Nothing here changes a model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from explain.inside_types import Anatomy
from models.adapter import LanternModel
from models.decoding import InputError
from models.lstm_attention import LstmAttnForConditionalGeneration

SEQ2SEQ_KINDS = ("encoder", "decoder", "cross")


@dataclass(frozen=True)
class Block:
    """One Transformer layer by role. ``*_out``: the module whose output is what that part adds to the residual
    stream (Gemma normalises a block's output before adding it: its post-norms). ``ffn_in``: the module whose
    input is the FFN's hidden activation (the neurons)."""

    layer: nn.Module
    attention: nn.Module
    attention_out: nn.Module
    ffn_out: nn.Module
    ffn_in: nn.Module
    cross: nn.Module | None = None


def family(lm: LanternModel) -> str:
    """ "lstm", "seq2seq" (a Transformer encoder-decoder) or "causal" (a decoder-only Transformer)."""
    if isinstance(lm.model, LstmAttnForConditionalGeneration):
        return "lstm"
    return "seq2seq" if lm.is_seq2seq() else "causal"


def sides(lm: LanternModel) -> tuple[str, ...]:
    """The Transformer stacks of the model: ("encoder", "decoder") or ("causal",); none for the LSTM."""
    return {"lstm": (), "seq2seq": ("encoder", "decoder"), "causal": ("causal",)}[family(lm)]


def attention_kinds(lm: LanternModel) -> tuple[str, ...]:
    return SEQ2SEQ_KINDS if family(lm) == "seq2seq" else sides(lm)


def require_transformer(lm: LanternModel, what: str) -> None:
    if family(lm) == "lstm":
        raise InputError(
            f"{what} reads the layers of a Transformer; {lm.name} is an LSTM with one layer per side and one "
            "attention: look at its states and gates (explain.recurrent.lstm_states) instead"
        )


def check_side(lm: LanternModel, side: str) -> None:
    if side not in sides(lm):
        raise InputError(f"{lm.name} has no {side!r} stack; it has {', '.join(sides(lm))}")


def stack(lm: LanternModel, side: str) -> nn.Module:
    """The module that holds one side's layers."""
    check_side(lm, side)
    if side == "encoder":
        return lm.model.get_encoder()
    if side == "decoder":
        return lm.model.get_decoder()
    inner = getattr(lm.model, "model", None) or getattr(lm.model, "transformer", None)
    if inner is None:
        raise InputError(f"Lantern cannot find the layers of {lm.name} ({type(lm.model).__name__})")
    return inner


def layers(lm: LanternModel, side: str) -> nn.ModuleList:
    found = getattr(stack(lm, side), "layers", None)
    if found is None:
        found = getattr(stack(lm, side), "h", None)  # GPT-2
    if found is None:
        raise InputError(f"Lantern cannot find the layers of {lm.name} ({type(lm.model).__name__})")
    return found


def first_module(module: nn.Module, *names: str) -> nn.Module | None:
    """The first of the dotted submodule paths ``names`` that ``module`` has, or None."""
    for name in names:
        part = module
        for attr in name.split("."):
            part = getattr(part, attr, None)
            if part is None:
                break
        if part is not None:
            return part
    return None


def block(lm: LanternModel, side: str, layer: int) -> Block:
    """The parts of layer ``layer`` (0-based) of one side."""
    stack_layers = layers(lm, side)
    if not 0 <= layer < len(stack_layers):
        raise InputError(f"{lm.name}'s {side} has layers 0 to {len(stack_layers) - 1}, not {layer}")
    mod = stack_layers[layer]
    attention = first_module(mod, "self_attn", "attn", "self_attention")
    ffn = first_module(mod, "mlp", "feed_forward")
    ffn_in = first_module(mod, "mlp.down_proj", "mlp.c_proj", "fc2", "mlp.fc2", "feed_forward.down_proj")
    if attention is None or ffn_in is None:
        raise InputError(f"Lantern does not know the layers of {type(lm.model).__name__} ({lm.name})")
    sandwich = hasattr(mod, "pre_feedforward_layernorm") and hasattr(mod, "post_feedforward_layernorm")
    return Block(
        layer=mod,
        attention=attention,
        attention_out=mod.post_attention_layernorm if sandwich else attention,  # Gemma: normed, then added
        ffn_out=mod.post_feedforward_layernorm if sandwich else (ffn if ffn is not None else ffn_in),
        ffn_in=ffn_in,
        cross=first_module(mod, "encoder_attn", "crossattention"),
    )


def final_norm(lm: LanternModel) -> nn.Module | None:
    """The norm between the last block and the output head (Llama/Gemma ``norm``, GPT-2 ``ln_f``, mBART and T5
    decoders); None for post-norm models such as Marian, whose blocks end normalised."""
    side = "decoder" if lm.is_seq2seq() else "causal"
    return first_module(stack(lm, side), "norm", "ln_f", "layer_norm", "final_layer_norm")


def head_logits(lm: LanternModel, hidden: torch.Tensor) -> torch.Tensor:
    """Logits [..., vocab] the model's head gives a residual stream [..., d]: final norm, output projection, Marian's
    ``final_logits_bias``, Gemma's soft-capping."""
    config = lm.model.config
    if getattr(config, "model_type", "") == "t5" and getattr(config, "tie_word_embeddings", False):
        raise InputError("the logit lens does not handle T5's rescaled tied head")
    norm = final_norm(lm)
    x = norm(hidden) if norm is not None else hidden
    logits = lm.model.get_output_embeddings()(x)
    bias = getattr(lm.model, "final_logits_bias", None)
    if bias is not None:
        logits = logits + bias.to(logits.dtype)
    cap = getattr(config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits


def _heads(lm: LanternModel, module: nn.Module) -> int:
    config = lm.model.config
    for value in (
        getattr(module, "num_heads", None),
        getattr(config, "num_attention_heads", None),
        getattr(config, "n_head", None),
    ):
        if isinstance(value, int) and value > 0:
            return value
    raise InputError(f"Lantern cannot find the number of heads of {lm.name}")


def _ffn_size(mod: nn.Module) -> int:
    weight = mod.weight
    # nn.Linear stores [out, in]; GPT-2's Conv1D stores [in, out]
    return int(weight.shape[0] if type(mod).__name__ == "Conv1D" else weight.shape[1])


def describe_model(lm: LanternModel) -> Anatomy:
    """The model's family and sizes: layers per side, heads per attention kind, FFN neurons, LSTM units."""
    kind = family(lm)
    if kind == "lstm":
        config = lm.model.config
        units = {
            "encoder_forward": config.hidden_size // 2,
            "encoder_backward": config.hidden_size // 2,
            "decoder": config.hidden_size,
        }
        n_layers = {
            "encoder_forward": config.encoder_layers,
            "encoder_backward": config.encoder_layers,
            "decoder": config.decoder_layers,
        }
        return Anatomy(lm.name, kind, layers=n_layers, units=units)
    n_layers, heads, ffn = {}, {}, {}
    for side in sides(lm):
        first = block(lm, side, 0)
        n_layers[side] = len(layers(lm, side))
        heads[side] = _heads(lm, first.attention)
        ffn[side] = _ffn_size(first.ffn_in)
        if first.cross is not None:
            heads["cross"] = _heads(lm, first.cross)
    return Anatomy(lm.name, kind, layers=n_layers, heads=heads, ffn=ffn)
