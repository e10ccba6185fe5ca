"""Generate, then look at every step: probabilities, entropy and the runners-up."""

from __future__ import annotations

import numpy as np
import torch

from common.text import clean_text
from explain.types import Translation
from models.adapter import LanternModel, SourceEncoding
from models.decoding import MAX_OUTPUT_TOKENS, Decoding, InputError, check_length


def translate(
    lm: LanternModel, text: str, decoding: Decoding | None = None, top_k: int = 5, prefix: tuple[int, ...] = ()
) -> Translation:
    """Generate an output for ``text``, then describe every step of it (see ``_describe``).

    ``prefix``: output token ids forced first (e.g. the model's own output up to a step, then an
    alternative the user picked); decoding continues from there.
    """
    decoding = decoding or Decoding()
    src = lm.encode_source(text)
    tgt_ids = lm.generate_ids(src.ids, decoding, list(prefix))
    if not tgt_ids:
        raise ValueError("the model generated nothing")
    label = decoding.label if not prefix else f"{decoding.label} after {len(prefix)} forced tokens"
    return _describe(lm, src, tgt_ids, label, top_k)


def force_translation(
    lm: LanternModel, text: str, output: str = "", top_k: int = 5, ids: tuple[int, ...] = ()
) -> Translation:
    """Score a given output for ``text`` token by token (forced decoding), as if the model had produced it.

    The output is a text (tokenized here, ending in EOS) or, with ``ids``, exact target token ids.
    """
    src = lm.encode_source(text)
    if ids:
        tgt_ids = [int(i) for i in ids]
        if any(not 0 <= i < len(lm.tgt_tokenizer) for i in tgt_ids):
            raise InputError(f"output token ids must lie in the output vocabulary (0..{len(lm.tgt_tokenizer) - 1})")
    else:
        cleaned = clean_text(check_length(output, "output to score"))
        if not cleaned:
            raise InputError("the output to score is empty")
        tgt_ids = lm.output_ids(cleaned)  # ends with EOS (or a prompted model's line end): scored too
    if len(tgt_ids) > MAX_OUTPUT_TOKENS:
        raise InputError(f"the output to score has {len(tgt_ids):,} tokens; Lantern scores up to {MAX_OUTPUT_TOKENS}")
    return _describe(lm, src, tgt_ids, "forced", top_k)


def _describe(lm: LanternModel, src: SourceEncoding, tgt_ids: list[int], decoding: str, top_k: int) -> Translation:
    """One teacher-forced pass over (source, output): each step's probability, entropy and runners-up.

    Probabilities come from that pass, so greedy, beam and forced outputs are described the same
    way: p(token_t | source, tokens before t) under the model.
    """
    with torch.no_grad():
        logits = lm.score(src.ids, tgt_ids).logits[0].float()  # [tgt, vocab]
    return describe_logits(lm, src, tgt_ids, logits, decoding, top_k)


def describe_logits(
    lm: LanternModel, src: SourceEncoding, tgt_ids: list[int], logits: torch.Tensor, decoding: str, top_k: int
) -> Translation:
    """The Translation of (source, output) from a teacher-forced pass's logits [T, V]: each step's probability,
    entropy and runners-up (also used by the batched corpus path, explain/corpus.py)."""
    logp = logits.log_softmax(-1)
    chosen = logp.gather(-1, torch.tensor(tgt_ids, device=logp.device)[:, None])[:, 0]
    entropy = -(logp.exp() * logp).sum(-1)
    top = logp.topk(min(top_k, logp.shape[-1]), dim=-1)
    top_ids = top.indices.tolist()
    return Translation(
        model=lm.name,
        src_text=src.text,
        src_tokens=tuple(lm.source_tokens(src.ids)),
        src_ids=tuple(src.ids),
        tgt_tokens=tuple(lm.target_tokens(tgt_ids)),
        tgt_ids=tuple(tgt_ids),
        text=lm.decode(tgt_ids),
        logprobs=chosen.cpu().numpy().astype(np.float32),
        entropy=entropy.cpu().numpy().astype(np.float32),
        alt_tokens=tuple(tuple(lm.target_tokens(row)) for row in top_ids),
        alt_probs=top.values.exp().cpu().numpy().astype(np.float32),
        decoding=decoding,
        unknown=src.unknown,
        n_src_tokens=src.n_tokens,
        n_kept_tokens=src.kept_tokens,
        alt_ids=tuple(tuple(row) for row in top_ids),
        src_span=src.span,
    )
