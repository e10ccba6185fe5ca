"""Inside a Transformer: the logit lens, the norms of the residual stream, one head's neuron view, FFN neurons.

Every function reads one teacher-forced pass over (source or prompt, generated output), the same pass as
``LanternModel.score``, with hooks that live only for that call (under the model's lock), and returns a plain
result of ``explain.inside_types``. Sides: "encoder" and "decoder" of an encoder-decoder, "causal" for a
decoder-only model (prompt then output prefix); attention kinds add "cross" (decoder → source).
"""

from __future__ import annotations

import numpy as np
import torch

from explain.anatomy import attention_kinds, block, check_side, head_logits, layers, require_transformer, sides
from explain.capture import capturing_attention, hooks
from explain.inside_types import LayerNorms, LogitLens, NeuronView, TopNeurons
from explain.types import Translation
from models.adapter import LanternModel
from models.decoding import InputError
from models.threads import under_policy

MAX_TOP_K = 50  # tokens per cell of the logit lens
MAX_NEURONS = 200  # FFN neurons listed at once


def side_tokens(lm: LanternModel, translation: Translation, side: str) -> tuple[str, ...]:
    """The token read at each position of one side: source, decoder inputs, or prompt + output prefix."""
    prefix = tuple(lm.target_tokens(lm.decoder_inputs(list(translation.tgt_ids))))
    if side == "encoder":
        return translation.src_tokens
    if side == "decoder":
        return prefix
    return (*translation.src_tokens, *prefix)


def _check_index(value: int, size: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not 0 <= value < size:
        raise InputError(f"{what} must be between 0 and {size - 1}, not {value!r}")
    return int(value)


def _check_count(value: int, most: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not 1 <= value <= most:
        raise InputError(f"{what} must be between 1 and {most}, not {value!r}")
    return int(value)


def _default_side(lm: LanternModel) -> str:
    return "decoder" if lm.is_seq2seq() else "causal"


def _score(lm: LanternModel, translation: Translation):
    return lm.score(list(translation.src_ids), list(translation.tgt_ids))


@under_policy
@torch.no_grad()
def logit_lens(lm: LanternModel, translation: Translation, top_k: int = 5) -> LogitLens:
    """For every layer (0: the embeddings) and output position t, the top-k tokens of the model's head applied to
    the residual stream there, and the rank and probability of the token the model finally produced.

    The stream is read at each block's output (a forward hook, before any final norm: HF's own last
    ``hidden_states`` entry of Llama/Gemma already has the final norm applied), then passed through the model's
    final norm, output head (Marian: plus ``final_logits_bias``) and soft-capping, so the last layer's row is the
    model's own distribution (``final_gap`` checks it). Caveat: early layers do not live in the output basis,
    so their rows are biased towards tokens the head favours; the tuned lens (Belrose et al. 2023, "Eliciting
    latent predictions from transformers with the tuned lens") fixes that with a learned translator per layer.
    One layer's [T, vocab] logits exist at a time.
    """
    require_transformer(lm, "The logit lens")
    top_k = _check_count(top_k, MAX_TOP_K, "top_k")
    side = _default_side(lm)
    mods = layers(lm, side)
    first = 0 if lm.is_seq2seq() else len(translation.src_ids) - 1  # position that predicts output token 0
    outputs = {str(i): m for i, m in enumerate(mods)}
    with lm.lock, hooks(outputs, {"embeddings": mods[0]}, keep=lambda t: t[0, first:]) as found:
        model_logits = _score(lm, translation).logits[0]
    target = torch.tensor(translation.tgt_ids, device=model_logits.device)[:, None]
    model_probs = model_logits.float().softmax(-1)
    streams = [found["embeddings"], *(found[str(i)] for i in range(len(mods)))]
    ids, probs, tgt_probs, ranks, gap = [], [], [], [], 0.0
    for i, stream in enumerate(streams):
        with lm.lock:  # the final norm and head are modules of the shared model: no pass while another's hooks sit
            logits = head_logits(lm, stream)
        logp = logits.float().log_softmax(-1)  # [T, vocab]
        del logits
        top = logp.topk(top_k, dim=-1)
        chosen = logp.gather(-1, target)  # [T, 1]
        ids.append(top.indices)
        probs.append(top.values.exp())
        tgt_probs.append(chosen[:, 0].exp())
        ranks.append((logp > chosen).sum(-1))
        if i == len(streams) - 1:
            gap = float((logp.exp() - model_probs).abs().max())
        del logp
    top_ids = torch.stack(ids).cpu().numpy()
    return LogitLens(
        model=lm.name,
        tgt_tokens=translation.tgt_tokens,
        input_tokens=side_tokens(lm, translation, side)[first:],
        top_ids=top_ids,
        top_tokens=tuple(tuple(tuple(lm.target_tokens(row)) for row in layer.tolist()) for layer in top_ids),
        top_probs=torch.stack(probs).cpu().numpy().astype(np.float32),
        target_probs=torch.stack(tgt_probs).cpu().numpy().astype(np.float32),
        target_ranks=torch.stack(ranks).cpu().numpy(),
        final_gap=gap,
    )


@under_policy
@torch.no_grad()
def layer_norms(lm: LanternModel, translation: Translation, side: str | None = None) -> LayerNorms:
    """Per layer and position: the L2 norm of the residual stream, and of what self-attention, cross-attention
    (an encoder-decoder's decoder) and the feed-forward block add to it (forward hooks on those modules).

    ``side``: "encoder" or "decoder" (default) of an encoder-decoder; "causal" for a decoder-only model.
    """
    require_transformer(lm, "Layer norms")
    side = side or _default_side(lm)
    check_side(lm, side)
    blocks = [block(lm, side, i) for i in range(len(layers(lm, side)))]
    outputs = {}
    for i, b in enumerate(blocks):
        outputs |= {f"stream{i}": b.layer, f"attention{i}": b.attention_out, f"ffn{i}": b.ffn_out}
        if b.cross is not None:
            outputs[f"cross{i}"] = b.cross
    with lm.lock, hooks(outputs, {"embeddings": blocks[0].layer}, keep=lambda t: t[0].float().norm(dim=-1)) as found:
        _score(lm, translation)

    def rows(name: str) -> np.ndarray:
        return torch.stack([found[f"{name}{i}"] for i in range(len(blocks))]).cpu().numpy()

    residual = torch.stack([found["embeddings"], *(found[f"stream{i}"] for i in range(len(blocks)))])
    return LayerNorms(
        model=lm.name,
        side=side,
        tokens=side_tokens(lm, translation, side),
        residual=residual.cpu().numpy(),
        attention=rows("attention"),
        ffn=rows("ffn"),
        cross=rows("cross") if blocks[0].cross is not None else None,
    )


@under_policy
@torch.no_grad()
def neuron_view(
    lm: LanternModel, translation: Translation, layer: int, head: int, position: int, kind: str | None = None
) -> NeuronView:
    """BertViz's neuron view of one head: the query at ``position``, the keys it may attend (the mask decides:
    causal, sliding window), q ∘ k, the scaled scores and the attention row the model used.

    ``kind``: "encoder", "decoder" or "cross" for an encoder-decoder; "causal" for a decoder-only model (the
    default: "decoder", "causal"). Queries and keys are captured as the attention function receives them: after
    RoPE and QK-norm; with grouped-query attention the head reads key/value head ``head // (heads // kv_heads)``.
    """
    require_transformer(lm, "The neuron view")
    kind = kind or _default_side(lm)
    if kind not in attention_kinds(lm):
        raise InputError(f"{lm.name} has no {kind!r} attention; it has {', '.join(attention_kinds(lm))}")
    side = "decoder" if kind == "cross" else kind
    layer = _check_index(layer, len(layers(lm, side)), "layer")
    part = block(lm, side, layer)
    module = part.cross if kind == "cross" else part.attention
    q_tokens = side_tokens(lm, translation, side)
    k_tokens = translation.src_tokens if kind == "cross" else q_tokens
    position = _check_index(position, len(q_tokens), "position")
    with capturing_attention(lm, module) as captured:
        _score(lm, translation)
        got = captured()
    if got is None:
        raise InputError(f"{lm.name}'s attention did not pass through Lantern's capture (an unknown architecture)")
    n_heads, n_kv = got.query.shape[1], got.key.shape[1]
    head = _check_index(head, n_heads, "head")
    kv_head = head // (n_heads // n_kv)
    query = got.query[0, head, position].float()  # [d]
    keys = got.key[0, kv_head].float()  # [K, d]
    scaling = got.kwargs.get("scaling") or module.head_dim**-0.5
    scores = keys @ query * scaling
    if got.kwargs.get("softcap"):
        cap = float(got.kwargs["softcap"])
        scores = torch.tanh(scores / cap) * cap
    row = torch.zeros_like(scores)
    if got.mask is not None:
        row = got.mask[0, 0, min(position, got.mask.shape[2] - 1), : len(keys)].float()
    allowed = row > torch.finfo(row.dtype).min / 2
    weights = got.weights[0, head, position] if got.weights is not None else (scores + row).softmax(-1)
    where = allowed.nonzero()[:, 0]
    return NeuronView(
        model=lm.name,
        kind=kind,
        layer=layer,
        head=head,
        position=position,
        query_token=q_tokens[position],
        key_tokens=tuple(k_tokens[int(j)] for j in where),
        key_positions=where.cpu().numpy(),
        query=query.cpu().numpy(),
        keys=keys[where].cpu().numpy(),
        scores=scores[where].cpu().numpy(),
        attention=weights[where].float().cpu().numpy(),
        scaling=float(scaling),
        kv_head=kv_head,
    )


@under_policy
@torch.no_grad()
def top_neurons(
    lm: LanternModel, translation: Translation, layer: int, position: int, kind: str | None = None, k: int = 10
) -> TopNeurons:
    """The ``k`` FFN neurons of ``layer`` with the highest activation at ``position``, and their activations at
    every position of that side (``kind``: "encoder", "decoder" or "causal"; default "decoder"/"causal")."""
    require_transformer(lm, "FFN neurons")
    side = kind or _default_side(lm)
    if side not in sides(lm):
        raise InputError(f"{lm.name} has FFN neurons on its {', '.join(sides(lm))} side, not {side!r}")
    layer = _check_index(layer, len(layers(lm, side)), "layer")
    tokens = side_tokens(lm, translation, side)
    position = _check_index(position, len(tokens), "position")
    part = block(lm, side, layer)
    with lm.lock, hooks(inputs={"ffn": part.ffn_in}, keep=lambda t: t[0].float()) as found:
        _score(lm, translation)
    acts = found["ffn"]  # [P, neurons]
    k = _check_count(k, min(acts.shape[1], MAX_NEURONS), "k")
    order = acts[position].topk(k).indices
    return TopNeurons(
        model=lm.name,
        side=side,
        layer=layer,
        position=position,
        tokens=tokens,
        neurons=order.cpu().numpy(),
        activations=acts[:, order].T.cpu().numpy(),
        n_neurons=int(acts.shape[1]),
    )
