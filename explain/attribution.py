"""Attribute each generated token to the source and target-prefix tokens.

    attribute(lm, "我爱你。", "integrated_gradients")               # a text: translated first (greedy)
    attribute(lm, translation, "occlusion", target="prob")          # or a fixed output from explain.generation

Generate first, then explain the fixed output under teacher forcing. The method (how importance is
measured, ``explain.methods``) and the target (what is explained: log-probability, probability, or a
contrast with an alternative, ``explain.objective``) are chosen separately, as in Inseq.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from explain.deadline import ComputationTimeout, with_deadline
from explain.generation import translate
from explain.methods import ALIASES, EMBEDDING_AGGREGATIONS, METHODS, Settings, get_method, list_methods
from explain.objective import TARGETS, Objective
from explain.types import Attribution, Translation
from models.adapter import Decoding, LanternModel, check_length
from models.threads import under_policy

__all__ = ["ALIASES", "EMBEDDING_AGGREGATIONS", "METHODS", "ComputationTimeout", "attribute", "list_methods"]


def forward_passes(method: str, n_src: int, n_tgt: int, n_steps: int = 32, n_samples: int = 25) -> int:
    """Sequences the model runs for one attribution (the cost shown before a run)."""
    return get_method(method).passes(n_src, n_tgt, Settings(n_steps=n_steps, n_samples=n_samples))


def _objective(
    lm: LanternModel,
    tr: Translation,
    target: str,
    contrast_token: tuple[int, str | int] | None,
    contrast_target: str | None,
    baseline: str,
) -> tuple[Objective, list[int], str]:
    """The scores to explain, the rows that carry them, and a description of the contrast."""
    dev = lm.device
    tgt_ids = torch.tensor(tr.tgt_ids, device=dev)
    dec_ids = torch.tensor(lm.decoder_inputs(list(tr.tgt_ids)), device=dev, dtype=torch.long)
    src_ids = torch.tensor(tr.src_ids, device=dev)
    rows, note, alt_ids = list(range(len(tgt_ids))), "", None
    if target == "contrast":
        if contrast_token is not None:
            step, token = contrast_token
            if isinstance(step, bool) or not isinstance(step, int | np.integer):
                raise ValueError(f"the contrast step must be a whole number, not {step!r}")
            if not 0 <= step < len(tgt_ids):
                raise ValueError(f"contrast step {step} is outside the output (0..{len(tgt_ids) - 1})")
            alt_id = _token_id(lm, token)
            alt_ids = torch.full_like(tgt_ids, -1)
            alt_ids[step] = alt_id
            shown = lm.target_tokens([alt_id])[0]
            rows, note = [step], f"{tr.tgt_tokens[step]} rather than {shown} at step {step}"
        elif contrast_target and contrast_target.strip():
            alt = lm.tgt_tokenizer(check_length(contrast_target, "alternative output").strip()).input_ids
            n = min(len(alt), len(tgt_ids))
            alt_ids = torch.full_like(tgt_ids, -1)
            alt_ids[:n] = torch.tensor(alt[:n])
            rows, note = list(range(n)), f"rather than {contrast_target.strip()!r}"
        else:
            raise ValueError("a contrast needs an alternative token (step, token) or a non-empty alternative target")
    obj = Objective(lm, src_ids, dec_ids, tgt_ids, target, alt_ids, baseline, span=tr.src_span)
    return obj, rows, note


def _token_id(lm: LanternModel, token: str | int) -> int:
    """An output-vocabulary id: given as such (e.g. ``Translation.alt_ids``), or as the token's own string."""
    if isinstance(token, int | np.integer) and not isinstance(token, bool):
        if not 0 <= int(token) < len(lm.tgt_tokenizer):
            raise ValueError(
                f"token id {token} is outside this model's output vocabulary (0..{len(lm.tgt_tokenizer) - 1})"
            )
        return int(token)
    ids = lm.tgt_tokenizer.convert_tokens_to_ids([token]) if isinstance(token, str) and token else [None]
    if ids[0] is None or ids[0] == lm.tgt_tokenizer.unk_token_id:
        raise ValueError(f"{token!r} is not a token of this model's output vocabulary")
    return int(ids[0])


@under_policy
def attribute(
    lm: LanternModel,
    translation: Translation | str,
    method: str = "input_x_gradient",
    target: str = "logprob",
    *,
    contrast_token: tuple[int, str | int] | None = None,
    contrast_target: str | None = None,
    with_prefix: bool = True,
    n_steps: int = 32,
    n_samples: int = 25,
    noise_std: float = 0.0,
    embedding_agg: str | None = None,
    seed: int = 0,
    baseline: str = "pad",
    noise_level: float = 0.15,
    decoding: Decoding | None = None,
    progress: Callable[[float], None] | None = None,
    time_limit: float | None = None,
) -> Attribution:
    """Explain every generated token of ``translation`` (or the contrasted ones) under ``method``.

    ``translation``: an output from ``explain.generation``, or a text, which is translated first with
    ``decoding`` (greedy by default). ``contrast_token``: (step, alternative token string or id).
    ``with_prefix``: also attribute to the decoder inputs (start token and earlier output tokens).
    ``embedding_agg``: how a token's per-dimension scores are combined; default L2 for saliency,
    sum otherwise (sums keep completeness). ``baseline``: "pad" or "unk" (see ``Objective``). ``noise_level``:
    SmoothGrad's noise σ as a share of the range of the input's embeddings (``n_samples`` noisy copies).
    ``progress`` is called with the fraction done; ``time_limit`` (seconds) stops a run between chunks with
    ``ComputationTimeout``.
    """
    m = get_method(method)
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    settings = Settings(n_steps, n_samples, noise_std, embedding_agg, with_prefix, seed, baseline, noise_level)
    if isinstance(translation, str):
        translation = translate(lm, translation, decoding)
    if translation.model != lm.name:
        raise ValueError(f"this translation was made by {translation.model!r}, not {lm.name!r}")
    progress = with_deadline(progress, time_limit)
    # no lock here: each hooked forward pass takes the model's lock itself (see ``Objective``)
    obj, rows, note = _objective(lm, translation, target, contrast_token, contrast_target, baseline)
    logprobs, entropy = obj.step_distribution()
    result = m.run(obj, rows, settings, progress)
    prefix = result.prefix
    if prefix is not None:
        # step t reads decoder inputs 0..t (encoder-decoder) or the prompt and prefix 0..t-1 (decoder-only)
        prefix = torch.tril(prefix, diagonal=0 if lm.is_seq2seq() else -1)
    agg = settings.embedding_agg or getattr(m, "default_agg", "sum")
    params = (
        ("n_steps", n_steps),
        ("n_samples", n_samples),
        ("noise_std", noise_std),
        ("embedding_agg", agg),
        ("with_prefix", with_prefix and prefix is not None),
        ("seed", seed),
        ("baseline", baseline),
        ("noise_level", noise_level),
    )
    return Attribution(
        model=lm.name,
        method=m.id,
        target=target,
        src_tokens=translation.src_tokens,
        tgt_tokens=translation.tgt_tokens,
        prefix_tokens=tuple(lm.target_tokens(obj.dec_ids.tolist())),
        scores=result.src.numpy().astype(np.float32),
        prefix_scores=None if prefix is None else prefix.numpy().astype(np.float32),
        step_logprobs=logprobs.numpy().astype(np.float32),
        step_entropy=entropy.numpy().astype(np.float32),
        delta=None if result.delta is None else result.delta.numpy().astype(np.float32),
        steps=tuple(rows) if len(rows) < obj.n_steps else (),
        contrast=note,
        params=params,
        signed=m.signed,
        src_span=translation.src_span,
    )
