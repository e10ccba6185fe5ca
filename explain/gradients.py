"""Gradient attributions for every generated step at once.

Row t needs the gradient of step t's score, so the batch holds one copy of the input per
(step, interpolation point): a single forward and backward pass (in chunks under a memory cap)
replaces Captum's loop of one call per step. Gradients are taken with respect to the embedding
rows only; the model's weights stay frozen. Conventions follow Captum's layer methods on the
embedding modules (``LayerIntegratedGradients`` with Gauss-Legendre points, pad-token baselines).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from captum.attr._utils.approximation_methods import approximation_parameters

from explain.objective import Objective

MIN_GROUP = 64  # copies per forward pass below which shorter prefixes stop paying for the extra calls


@dataclass(frozen=True)
class Path:
    """Where gradients are taken: point k is ``baseline + alphas[k] * (input - baseline)``."""

    alphas: torch.Tensor  # [K]
    weights: torch.Tensor  # [K] how point k's gradient is weighted in the average
    noise_std: float = 0.0  # Gaussian noise on the input (GradientSHAP)


def ig_path(n_steps: int) -> Path:
    sizes, alphas = approximation_parameters("gausslegendre")
    return Path(torch.tensor(alphas(n_steps)), torch.tensor(sizes(n_steps)))


def point_path() -> Path:
    return Path(torch.ones(1), torch.ones(1))


def shap_path(n_samples: int, noise_std: float, generator: torch.Generator) -> Path:
    alphas = torch.rand(n_samples, generator=generator)
    return Path(alphas, torch.full((n_samples,), 1.0 / n_samples), noise_std)


def path_attributions(
    obj: Objective,
    rows: list[int],
    path: Path,
    multiply: str,
    generator: torch.Generator | None = None,
    progress: Callable[[float], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension attributions of each row: ``Σ_k weights[k] · m_k · ∇ score_t`` at path point k.

    ``multiply``: "none" (the gradient itself), "input" (m = x, input × gradient) or "delta"
    (m = x − baseline, integrated gradients and GradientSHAP). Returns (src [R, S, d], dec [R, T, d]).
    """
    k, (s, d), t, r = len(path.alphas), obj.src_embeds.shape, obj.n_prefix, len(rows)
    x_src = obj.src_embeds.expand(r, k, s, d)
    x_dec = obj.dec_embeds.expand(r, k, t, d)
    if path.noise_std:  # GradientSHAP: a noisy input per row and sample
        x_src = x_src + path.noise_std * torch.randn(r, k, s, d, generator=generator)
        x_dec = x_dec + path.noise_std * torch.randn(r, k, t, d, generator=generator)
    alphas = path.alphas.to(obj.src_embeds)[None, :, None, None]
    points_src = (obj.src_base + alphas * (x_src - obj.src_base)).reshape(r * k, s, d)
    points_dec = (obj.dec_base + alphas * (x_dec - obj.dec_base)).reshape(r * k, t, d)
    if multiply == "delta":
        m_src, m_dec = x_src - obj.src_base, x_dec - obj.dec_base
    elif multiply == "input":
        m_src, m_dec = x_src, x_dec
    else:
        m_src, m_dec = torch.ones(1, 1, 1, 1), torch.ones(1, 1, 1, 1)
    g_src, g_dec = torch.zeros_like(points_src), torch.zeros_like(points_dec)
    # Step t reads decoder inputs up to t only: group rows by step and cut the prefix to what the group
    # needs (about half the decoder's work), with groups of >= MIN_GROUP copies so calls stay large.
    order = sorted(range(r), key=lambda i: rows[i])
    per_group = max(1, -(-MIN_GROUP // k))
    done = 0
    for g in range(0, r, per_group):
        members = order[g : g + per_group]
        prefix = obj.prefix_length(max(rows[i] for i in members) + 1)
        copies = torch.tensor([i * k + j for i in members for j in range(k)])
        step = torch.tensor([rows[i] for i in members]).repeat_interleave(k)
        chunk = max(1, obj.tokens_per_chunk(backward=True) // (s + prefix))
        for c in range(0, len(copies), chunk):
            idx = copies[c : c + chunk]
            a = points_src[idx].detach().requires_grad_(True)
            b = points_dec[idx, :prefix].detach().requires_grad_(True)
            with torch.enable_grad():
                picked = obj.score_at(a, b, step[c : c + chunk])
                g_src[idx], g_dec[idx, :prefix] = torch.autograd.grad(picked.sum(), (a, b))
            done += len(idx)
            if progress:
                progress(min(1.0, done / (r * k)))
    w = path.weights.to(g_src)[None, :, None, None]
    attr_src = (g_src.reshape(r, k, s, d) * m_src * w).sum(1)
    attr_dec = (g_dec.reshape(r, k, t, d) * m_dec * w).sum(1)
    return attr_src, attr_dec
