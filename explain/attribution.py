"""Attribute each generated token to the source and target-prefix tokens.

    attribute(lm, translation, method="integrated_gradients", target="logprob") -> Attribution

Generate first (``explain.translate``), then explain the fixed output under teacher forcing. The
method (how importance is measured) and the target (what is explained: log-probability,
probability, or a contrast with an alternative) are chosen separately, as in Inseq.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from explain.attention import extract_attention
from explain.gradients import Path, ig_path, path_attributions, point_path, shap_path
from explain.objective import TARGETS, Objective
from explain.perturbation import lime, occlusion, shapley_sampling
from explain.types import Attribution, Translation
from models.adapter import LanternModel


@dataclass(frozen=True)
class MethodInfo:
    id: str
    title: str
    description: str
    family: str  # "gradient" | "perturbation" | "attention"
    signed: bool  # scores can be negative (diverging colour scale)
    has_delta: bool = False  # reports a completeness gap


METHODS: dict[str, MethodInfo] = {
    m.id: m
    for m in [
        MethodInfo(
            "saliency",
            "Saliency",
            "Size (L2 norm) of the gradient at each input token: how sensitive the score is to it.",
            "gradient",
            signed=False,
        ),
        MethodInfo(
            "input_x_gradient",
            "Input × gradient",
            "Embedding times gradient, summed: each token's first-order share of the score.",
            "gradient",
            signed=True,
        ),
        MethodInfo(
            "integrated_gradients",
            "Integrated gradients",
            "Gradients averaged on the path from padding to the input, times the difference; they add up "
            "to the score's change (the delta says how closely).",
            "gradient",
            signed=True,
            has_delta=True,
        ),
        MethodInfo(
            "deeplift",
            "DeepLIFT",
            "Differences from the padding baseline propagated back with DeepLIFT's rescale rule, to the "
            "source (Transformers only: an LSTM's gates are not separate modules).",
            "gradient",
            signed=True,
            has_delta=True,
        ),
        MethodInfo(
            "gradient_shap",
            "Gradient SHAP",
            "Input × gradient at random points between padding and a noisy input, averaged: an estimate "
            "of SHAP values.",
            "gradient",
            signed=True,
        ),
        MethodInfo(
            "occlusion",
            "Occlusion",
            "Replace one input token at a time by padding and measure how much the score drops (feature ablation).",
            "perturbation",
            signed=True,
        ),
        MethodInfo(
            "shapley_value_sampling",
            "Shapley value sampling",
            "Add tokens in random orders and average how much each one changes the score.",
            "perturbation",
            signed=True,
        ),
        MethodInfo(
            "lime",
            "LIME",
            "Fit a weighted linear model of the score on random subsets of the tokens; its weights are the scores.",
            "perturbation",
            signed=True,
        ),
        MethodInfo(
            "attention",
            "Attention",
            "Cross-attention averaged over layers and heads: where the decoder looked, a baseline rather "
            "than an explanation.",
            "attention",
            signed=False,
        ),
    ]
}
ALIASES = {"feature_ablation": "occlusion"}
EMBEDDING_AGGREGATIONS = ("sum", "l2", "mean", "max")


class AttributionTimeout(RuntimeError):
    """An attribution ran past its time limit (checked between batched chunks)."""


def list_methods() -> list[MethodInfo]:
    return list(METHODS.values())


def forward_passes(method: str, n_src: int, n_tgt: int, n_steps: int = 32, n_samples: int = 25) -> int:
    """Sequences the model runs for one attribution (the cost shown before a run)."""
    method = ALIASES.get(method, method)
    features = n_src + n_tgt
    return {
        "saliency": n_tgt,
        "input_x_gradient": n_tgt,
        "integrated_gradients": n_tgt * n_steps + 2,
        "deeplift": 2 * n_tgt,
        "gradient_shap": n_tgt * n_samples,
        "occlusion": features + 1,
        "shapley_value_sampling": n_samples * (features + 1),
        "lime": n_samples,
        "attention": 1,
    }.get(method, 0)


def _reduce(attr: torch.Tensor, how: str) -> torch.Tensor:
    """[..., d] -> [...] over the embedding dimension."""
    if how == "sum":
        return attr.sum(-1)
    if how == "l2":
        return attr.norm(dim=-1)
    if how == "mean":
        return attr.mean(-1)
    if how == "max":
        return attr.max(-1).values
    raise ValueError(f"unknown embedding aggregation {how!r}; choose one of {', '.join(EMBEDDING_AGGREGATIONS)}")


def _objective(
    lm: LanternModel,
    tr: Translation,
    target: str,
    contrast_token: tuple[int, str] | None,
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
            if not 0 <= step < len(tgt_ids):
                raise ValueError(f"contrast step {step} is outside the output (0..{len(tgt_ids) - 1})")
            ids = lm.tgt_tokenizer.convert_tokens_to_ids([token])
            if not token or ids[0] is None or ids[0] == lm.tgt_tokenizer.unk_token_id:
                raise ValueError(f"{token!r} is not a token of this model's output vocabulary")
            alt_ids = torch.full_like(tgt_ids, -1)
            alt_ids[step] = ids[0]
            rows, note = [step], f"{tr.tgt_tokens[step]} rather than {token} at step {step}"
        elif contrast_target and contrast_target.strip():
            alt = lm.tgt_tokenizer(contrast_target.strip()).input_ids
            n = min(len(alt), len(tgt_ids))
            alt_ids = torch.full_like(tgt_ids, -1)
            alt_ids[:n] = torch.tensor(alt[:n])
            rows, note = list(range(n)), f"rather than {contrast_target.strip()!r}"
        else:
            raise ValueError("a contrast needs an alternative token (step, token) or a non-empty alternative target")
    obj = Objective(lm, src_ids, dec_ids, tgt_ids, target, alt_ids, baseline)
    return obj, rows, note


def _deeplift(obj: Objective, rows: list[int], progress: Callable[[float], None] | None = None) -> torch.Tensor:
    """Captum's LayerDeepLift on the source embeddings, one call per row -> [R, S, d].

    Source only: Captum's LayerDeepLift takes one layer, and the decoder inputs stay as they are.
    """
    from captum.attr import LayerDeepLift

    if any(isinstance(m, nn.RNNBase) for m in obj.lm.model.modules()):
        raise ValueError(
            "DeepLIFT needs the model's nonlinearities as modules; an LSTM computes its gates inside "
            "nn.LSTM. Use integrated gradients."
        )

    class Step(nn.Module):  # Captum's DeepLIFT wants an nn.Module returning one score per example
        def __init__(self) -> None:
            super().__init__()
            self.model, self.row = obj.lm.model, 0

        def forward(self, src_ids: torch.Tensor) -> torch.Tensor:
            n = len(src_ids)
            logits = self.model(
                input_ids=src_ids, attention_mask=torch.ones_like(src_ids), decoder_input_ids=obj.dec_ids.expand(n, -1)
            ).logits
            logp = logits.float().log_softmax(-1)[:, self.row]
            chosen = logp[:, obj.tgt_ids[self.row]]
            if obj.target == "prob":
                return chosen.exp()
            if obj.target == "contrast" and obj.alt_ids[self.row] >= 0:
                return chosen - logp[:, obj.alt_ids[self.row]]
            return chosen

    step = Step()
    deeplift = LayerDeepLift(step, obj.src_module)
    src_ids = obj.src_ids[None]
    baseline = torch.full_like(src_ids, obj.lm.src_tokenizer.pad_token_id)
    out = []
    for row in rows:
        step.row = row
        out.append(deeplift.attribute(src_ids, baselines=baseline)[0].detach())
        if progress:
            progress(len(out) / len(rows))
    return torch.stack(out)


def attribute(
    lm: LanternModel,
    translation: Translation,
    method: str = "input_x_gradient",
    target: str = "logprob",
    *,
    contrast_token: tuple[int, str] | None = None,
    contrast_target: str | None = None,
    with_prefix: bool = True,
    n_steps: int = 32,
    n_samples: int = 25,
    noise_std: float = 0.0,
    embedding_agg: str | None = None,
    seed: int = 0,
    baseline: str = "pad",
    progress: Callable[[float], None] | None = None,
    time_limit: float | None = None,
) -> Attribution:
    """Explain every generated token of ``translation`` (or the contrasted ones) under ``method``.

    ``with_prefix``: also attribute to the decoder inputs (start token and earlier output tokens).
    ``embedding_agg``: how a token's per-dimension scores are combined; default L2 for saliency,
    sum otherwise (sums keep completeness). ``baseline``: "pad" or "unk" (see ``Objective``).
    ``progress`` is called with the fraction done; ``time_limit`` (seconds) stops a run between chunks with
    ``AttributionTimeout``.
    """
    method = ALIASES.get(method, method)
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    if not 1 <= n_steps <= 1024 or not 1 <= n_samples <= 1024:
        raise ValueError("n_steps and n_samples must be between 1 and 1024")
    if translation.model != lm.name:
        raise ValueError(f"this translation was made by {translation.model!r}, not {lm.name!r}")
    agg = embedding_agg or ("l2" if method == "saliency" else "sum")
    generator = torch.Generator().manual_seed(seed)
    progress = _with_deadline(progress, time_limit)
    with lm.lock:
        obj, rows, note = _objective(lm, translation, target, contrast_token, contrast_target, baseline)
        logprobs, entropy = obj.step_distribution()
        s, t = len(obj.src_ids), obj.n_steps
        scores, prefix, delta = torch.zeros(t, s), torch.zeros(t, obj.n_prefix), None
        if method == "attention":
            scores, prefix = _attention_scores(lm, translation)
        elif METHODS[method].family == "gradient":
            if method == "deeplift":
                with_prefix = False  # see _deeplift
                a_src = _deeplift(obj, rows, progress)
                a_dec = torch.zeros(len(rows), obj.n_prefix, a_src.shape[-1])
            else:
                path, multiply = _gradient_setup(method, n_steps, n_samples, noise_std, generator)
                a_src, a_dec = path_attributions(obj, rows, path, multiply, generator, progress)
            if not with_prefix:
                a_dec = torch.zeros_like(a_dec)
            if method == "saliency":
                a_src, a_dec = a_src.abs(), a_dec.abs()
            scores[rows], prefix[rows] = _reduce(a_src, agg), _reduce(a_dec, agg)
            if METHODS[method].has_delta:
                delta = _completeness_gap(obj, rows, a_src, a_dec, with_prefix)
        else:
            run: Callable[..., torch.Tensor] = {
                "occlusion": lambda: occlusion(obj, with_prefix, progress),
                "shapley_value_sampling": lambda: shapley_sampling(obj, with_prefix, n_samples, generator, progress),
                "lime": lambda: lime(obj, with_prefix, n_samples, generator, progress=progress),
            }[method]
            values = run()  # [T, S (+ T)]
            scores[rows] = values[rows, :s]
            if with_prefix:
                prefix[rows] = values[rows, s:]
        if prefix is not None:
            # step t reads decoder inputs 0..t (encoder-decoder) or the prompt and prefix 0..t-1 (decoder-only)
            prefix = torch.tril(prefix, diagonal=0 if lm.is_seq2seq() else -1)
            if not with_prefix and method != "attention":
                prefix = None
    params = (
        ("n_steps", n_steps),
        ("n_samples", n_samples),
        ("noise_std", noise_std),
        ("embedding_agg", agg),
        ("with_prefix", with_prefix),
        ("seed", seed),
        ("baseline", baseline),
    )
    return Attribution(
        model=lm.name,
        method=method,
        target=target,
        src_tokens=translation.src_tokens,
        tgt_tokens=translation.tgt_tokens,
        prefix_tokens=tuple(lm.target_tokens(obj.dec_ids.tolist())),
        scores=scores.numpy().astype(np.float32),
        prefix_scores=None if prefix is None else prefix.numpy().astype(np.float32),
        step_logprobs=logprobs.numpy().astype(np.float32),
        step_entropy=entropy.numpy().astype(np.float32),
        delta=None if delta is None else delta.numpy().astype(np.float32),
        steps=tuple(rows) if len(rows) < t else (),
        contrast=note,
        params=params,
    )


def _with_deadline(
    progress: Callable[[float], None] | None, time_limit: float | None
) -> Callable[[float], None] | None:
    """A progress callback that also enforces ``time_limit`` (the engines call it after every chunk)."""
    if time_limit is None:
        return progress
    deadline = time.monotonic() + time_limit

    def check(fraction: float) -> None:
        if time.monotonic() > deadline and fraction < 1.0:
            raise AttributionTimeout(
                f"stopped after {time_limit:g} s, {fraction:.0%} done: fewer steps or samples, or a shorter text"
            )
        if progress:
            progress(fraction)

    return check


def _attention_scores(lm: LanternModel, translation: Translation) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Attention averaged over layers and heads, split into source and target-prefix parts."""
    maps = extract_attention(lm, translation)
    if maps.cross is not None:
        prefix = None if maps.decoder_self is None else torch.from_numpy(maps.decoder_self.mean((0, 1)))
        return torch.from_numpy(maps.cross.mean((0, 1))), prefix
    s = len(translation.src_ids)
    rows = torch.from_numpy(maps.decoder_self.mean((0, 1)))[s - 1 :]  # positions that predict each token
    return rows[:, :s], rows[:, s:]


def _gradient_setup(
    method: str, n_steps: int, n_samples: int, noise_std: float, generator: torch.Generator
) -> tuple[Path, str]:
    if method == "integrated_gradients":
        return ig_path(n_steps), "delta"
    if method == "gradient_shap":
        return shap_path(n_samples, noise_std, generator), "delta"
    return point_path(), "input" if method == "input_x_gradient" else "none"


@torch.no_grad()
def _completeness_gap(
    obj: Objective, rows: list[int], a_src: torch.Tensor, a_dec: torch.Tensor, with_prefix: bool
) -> torch.Tensor:
    """Σ attributions − (score(input) − score(baseline)) per step; 0 for rows not explained."""
    base_dec = obj.dec_base if with_prefix else obj.dec_embeds
    ends = obj(torch.stack([obj.src_embeds, obj.src_base]), torch.stack([obj.dec_embeds, base_dec]))
    change = ends[0] - ends[1]
    gap = torch.zeros(obj.n_steps)
    total = a_src.sum((1, 2)) + (a_dec.sum((1, 2)) if with_prefix else 0)
    gap[rows] = total - change[rows]
    return gap
