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
    noise_std: float = 0.0  # Gaussian noise on the input, drawn per copy (GradientSHAP)
    noise: tuple[torch.Tensor, torch.Tensor] | None = None  # SmoothGrad: point k's fixed noise ([K, S, d], [K, P, d])


def ig_path(n_steps: int) -> Path:
    sizes, alphas = approximation_parameters("gausslegendre")
    return Path(torch.tensor(alphas(n_steps)), torch.tensor(sizes(n_steps)))


def point_path() -> Path:
    return Path(torch.ones(1), torch.ones(1))


def shap_path(n_samples: int, noise_std: float, generator: torch.Generator) -> Path:
    alphas = torch.rand(n_samples, generator=generator)
    return Path(alphas, torch.full((n_samples,), 1.0 / n_samples), noise_std)


def smooth_path(n_samples: int, level: float, src: torch.Tensor, dec: torch.Tensor, generator: torch.Generator) -> Path:
    """SmoothGrad (Smilkov et al. 2017): ``n_samples`` noisy copies of the input, each weighted 1 / n; the noise is
    Gaussian with σ = ``level`` × (max − min) of the input's embeddings (source and prefix together), drawn once
    (source, then prefix) so that every explained step averages over the same copies."""
    both = torch.cat([src.flatten(), dec.flatten()])
    sigma = level * float(both.max() - both.min()) if len(both) else 0.0
    noise_src = sigma * torch.randn(n_samples, *src.shape, generator=generator)
    noise_dec = sigma * torch.randn(n_samples, *dec.shape, generator=generator)
    return Path(torch.ones(n_samples), torch.full((n_samples,), 1.0 / n_samples), noise=(noise_src, noise_dec))


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
    alphas, weights = path.alphas.to(obj.src_embeds), path.weights.to(obj.src_embeds)
    attr_src, attr_dec = torch.zeros(r, s, d), torch.zeros(r, t, d)
    # Step t reads decoder inputs up to t only: group rows by step and cut the prefix to what the group
    # needs (about half the decoder's work), with groups of >= MIN_GROUP copies so calls stay large. Each chunk
    # builds its own path points and adds its weighted gradients to the rows it serves, so memory stays within
    # what one chunk holds (``Objective.copies_per_chunk``), whatever the number of steps or samples.
    order = sorted(range(r), key=lambda i: rows[i])
    per_group = max(1, -(-MIN_GROUP // k))
    done = 0
    for g in range(0, r, per_group):
        members = order[g : g + per_group]
        prefix = obj.prefix_length(max(rows[i] for i in members) + 1)
        copies = [(i, j) for i in members for j in range(k)]  # (row, path point)
        chunk = obj.copies_per_chunk(prefix, backward=True)
        for c in range(0, len(copies), chunk):
            part = copies[c : c + chunk]
            row_idx = torch.tensor([i for i, _ in part])
            point = torch.tensor([j for _, j in part])
            g_src, g_dec, m_src, m_dec = _chunk_gradients(
                obj, row_idx, point, prefix, rows, path, alphas, multiply, generator
            )
            w = weights[point][:, None, None]
            attr_src.index_add_(0, row_idx, g_src * m_src * w)
            attr_dec[:, :prefix].index_add_(0, row_idx, g_dec * m_dec * w)
            done += len(part)
            if progress:
                progress(min(1.0, done / (r * k)))
    return attr_src, attr_dec


def _chunk_gradients(
    obj: Objective,
    row_idx: torch.Tensor,
    point: torch.Tensor,
    prefix: int,
    rows: list[int],
    path: Path,
    alphas: torch.Tensor,
    multiply: str,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of each copy's own step at its path point, and what they are multiplied by."""
    n, (s, d) = len(row_idx), obj.src_embeds.shape
    x_src = obj.src_embeds.expand(n, s, d)
    x_dec = obj.dec_embeds[:prefix].expand(n, prefix, d)
    if path.noise_std:  # GradientSHAP: a noisy input per row and sample
        x_src = x_src + path.noise_std * torch.randn(n, s, d, generator=generator)
        x_dec = x_dec + path.noise_std * torch.randn(n, prefix, d, generator=generator)
    if path.noise is not None:  # SmoothGrad: the fixed noise of each copy's point
        x_src = x_src + path.noise[0].to(x_src)[point]
        x_dec = x_dec + path.noise[1].to(x_dec)[point, :prefix]
    base_src, base_dec = obj.src_base, obj.dec_base[:prefix]
    a = alphas[point][:, None, None]
    src = (base_src + a * (x_src - base_src)).detach().requires_grad_(True)
    dec = (base_dec + a * (x_dec - base_dec)).detach().requires_grad_(True)
    steps = torch.tensor([rows[i] for i in row_idx.tolist()])
    with torch.enable_grad():
        g_src, g_dec = torch.autograd.grad(obj.score_at(src, dec, steps).sum(), (src, dec))
    if multiply == "delta":
        return g_src, g_dec, x_src - base_src, x_dec - base_dec
    if multiply == "input":
        return g_src, g_dec, x_src, x_dec
    return g_src, g_dec, torch.ones(1, 1, 1), torch.ones(1, 1, 1)
