"""Perturbation attributions for every generated step at once.

A feature is one input token: each source token and (optionally) each decoder input. A mask row
``z`` keeps the features where it is 1 and puts the baseline (padding) embedding where it is 0; the
model scores every step of the fixed output for every mask row in one batched pass, so all steps
share the same perturbed forwards (Captum re-runs them per step).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from explain.objective import Objective


@torch.no_grad()
def evaluate_masks(
    obj: Objective, masks: torch.Tensor, with_prefix: bool, progress: Callable[[float], None] | None = None
) -> torch.Tensor:
    """masks [N, S (+ T)] of 0/1 -> step scores [N, T].

    Each distinct mask is run once (faithfulness asks for the same leave-one-out and all-removed masks
    at every output step, Shapley orders share their first and last masks).
    """
    s, t = len(obj.src_ids), obj.n_prefix
    masks = masks.clone()
    masks[:, :s][:, obj.fixed.cpu()] = 1  # the prompt around a text is never perturbed: equal masks run once
    masks, inverse = torch.unique(masks, dim=0, return_inverse=True)
    out = torch.empty(len(masks), obj.n_steps)
    chunk = obj.copies_per_chunk(t, backward=False)
    for i in range(0, len(masks), chunk):
        m = masks[i : i + chunk].to(obj.src_embeds)
        src = obj.src_base + m[:, :s, None] * (obj.src_embeds - obj.src_base)
        if with_prefix:
            dec = obj.dec_base + m[:, s:, None] * (obj.dec_embeds - obj.dec_base)
        else:
            dec = obj.dec_embeds.expand(len(m), -1, -1)
        out[i : i + chunk] = obj(src, dec)
        if progress:
            progress(min(1.0, (i + chunk) / len(masks)))
    return out[inverse]


def occlusion(obj: Objective, with_prefix: bool, progress: Callable[[float], None] | None = None) -> torch.Tensor:
    """Drop in each step's score when one feature is replaced by the baseline -> [T, J]."""
    n = len(obj.src_ids) + (obj.n_prefix if with_prefix else 0)
    masks = torch.cat([torch.ones(1, n), 1 - torch.eye(n)])
    scores = evaluate_masks(obj, masks, with_prefix, progress)
    return (scores[0] - scores[1:]).T


def shapley_sampling(
    obj: Objective,
    with_prefix: bool,
    n_samples: int,
    generator: torch.Generator,
    progress: Callable[[float], None] | None = None,
) -> torch.Tensor:
    """Shapley values estimated from ``n_samples`` random feature orders (Castro et al. 2009) -> [T, J].

    For each order, features are switched from baseline to input one at a time; a feature's value
    is the mean change it causes. Orders come from ``torch.randperm`` as in Captum's
    ``ShapleyValueSampling``, so the same generator state gives the same estimate.
    """
    n = len(obj.src_ids) + (obj.n_prefix if with_prefix else 0)
    orders = [torch.randperm(n, generator=generator) for _ in range(n_samples)]
    masks = torch.zeros(n_samples, n + 1, n)
    for p, order in enumerate(orders):
        for i in range(n):
            masks[p, i + 1 :, order[i]] = 1  # coalition i+1 onwards contains feature order[i]
    scores = evaluate_masks(obj, masks.reshape(-1, n), with_prefix, progress).reshape(n_samples, n + 1, -1)
    gains = scores[:, 1:] - scores[:, :-1]  # [P, n, T]: gain of the i-th feature added
    values = torch.zeros(n, scores.shape[-1])
    for p, order in enumerate(orders):
        values[order] += gains[p]
    return (values / n_samples).T


def lime(
    obj: Objective,
    with_prefix: bool,
    n_samples: int,
    generator: torch.Generator,
    ridge: float = 1e-3,
    progress: Callable[[float], None] | None = None,
) -> torch.Tensor:
    """LIME (Ribeiro et al. 2016): a weighted linear fit of step scores on random keep/drop masks -> [T, J].

    Masks keep each feature with probability 1/2; samples are weighted by ``exp(-d²)`` with d the
    cosine distance to the all-kept input (Captum's default kernel); one least-squares solve fits
    every step.
    """
    n = len(obj.src_ids) + (obj.n_prefix if with_prefix else 0)
    masks = (torch.rand(n_samples, n, generator=generator) < 0.5).float()
    masks[0] = 1.0  # the unperturbed input anchors the fit
    fixed = torch.cat([obj.fixed.cpu(), torch.zeros(n - len(obj.fixed), dtype=torch.bool)])
    masks[:, fixed] = 1.0  # never perturbed: constant columns, fitted 0 below
    scores = evaluate_masks(obj, masks, with_prefix, progress).double()
    cos = masks.sum(1) / (masks.norm(dim=1) * n**0.5).clamp(min=1e-12)
    w = torch.exp(-((1 - cos) ** 2)).double()
    x = torch.cat([masks.double(), torch.ones(n_samples, 1, dtype=torch.float64)], 1)  # intercept last
    reg = ridge * torch.eye(n + 1, dtype=torch.float64)
    reg[-1, -1] = 0.0
    coef = torch.linalg.solve(x.T @ (w[:, None] * x) + reg, x.T @ (w[:, None] * scores))
    coef[:n][fixed] = 0.0
    return coef[:n].T.float()
