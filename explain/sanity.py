"""Model-randomisation sanity check (Adebayo et al. 2018) for explanations of generation.

Re-initialise a *copy* of the model block by block from the output down (cascading), explain the
same fixed output after each step, and measure how similar the explanation stays to the original
(Spearman correlation of absolute source scores, averaged over output tokens). An explanation that
barely changes when the weights are destroyed is not explaining the model.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import threading

import numpy as np
import torch

from explain.attribution import attribute, forward_passes
from explain.compare import rank_agreement
from explain.deadline import Progress, with_deadline
from explain.types import Attribution, Translation
from models.adapter import LanternModel
from models.threads import under_policy

_LAYER = re.compile(r"^(.*?\.(?:layers|layer|h|block)\.\d+)\.")


def _post_order(module: torch.nn.Module, prefix: str = "") -> list[str]:
    """Parameter names, each module's children before its own parameters (roughly the order data flows)."""
    names = []
    for child_name, child in module.named_children():
        names += _post_order(child, f"{prefix}{child_name}.")
    names += [f"{prefix}{n}" for n, _ in module.named_parameters(recurse=False)]
    return names


def parameter_blocks(model: torch.nn.Module) -> list[tuple[str, list[str]]]:
    """Parameter names grouped into blocks (a numbered layer, or a top-level module), output first."""
    blocks: dict[str, list[str]] = {}
    seen: set[int] = set()
    params = dict(model.named_parameters(remove_duplicate=False))
    for name in _post_order(model):
        if id(params[name]) in seen:  # tied weights (embeddings = output layer) count once
            continue
        seen.add(id(params[name]))
        if "embed_positions" in name:  # fixed sinusoidal positions, not learned
            continue
        match = _LAYER.match(name)
        key = match.group(1) if match else ".".join(name.split(".")[:2])
        blocks.setdefault(key, []).append(name)
    return list(reversed(blocks.items()))


@dataclasses.dataclass(frozen=True)
class RandomisationStep:
    block: str  # the block randomised last (all blocks above it are random too)
    similarity: float  # mean Spearman ρ of |scores| with the original explanation
    attribution: Attribution


def randomisation_passes(lm: LanternModel, method: str, n_src: int, n_tgt: int, **settings: int) -> int:
    """Sequences the check runs: the original explanation and one per randomised block (its cost before a run)."""
    return (len(parameter_blocks(lm.model)) + 1) * forward_passes(method, n_src, n_tgt, **settings)


@under_policy
def cascading_randomisation(
    lm: LanternModel,
    translation: Translation,
    method: str,
    seed: int = 0,
    max_blocks: int | None = None,
    progress: Progress | None = None,
    time_limit: float | None = None,
    **kwargs,
) -> tuple[Attribution, list[RandomisationStep]]:
    """The original explanation, then one per randomisation step of a copy of the model.

    ``progress`` is called with the fraction done (between chunks of each explanation); ``time_limit``
    (seconds, for the whole check) stops it with ``ComputationTimeout``.
    """
    progress = with_deadline(progress, time_limit)
    blocks = parameter_blocks(lm.model)[:max_blocks]
    total = len(blocks) + 1

    def part(i: int) -> Progress | None:  # explanation i of the check reports its share of the whole
        return None if progress is None else (lambda f: progress(min((i + f) / total, 0.999)))

    original = attribute(lm, translation, method, progress=part(0), **kwargs)
    with lm.lock:
        model = copy.deepcopy(lm.model)  # the shared model is never touched
    params = dict(model.named_parameters(remove_duplicate=False))
    gen = torch.Generator().manual_seed(seed)
    copy_lm = dataclasses.replace(lm, model=model, lock=threading.RLock())
    steps = []
    for i, (block, names) in enumerate(blocks, start=1):
        with torch.no_grad():
            for name in names:
                p = params[name]
                std = float(p.std()) if p.numel() > 1 else 0.02
                p.copy_(torch.randn(p.shape, generator=gen) * (std or 0.02))
        a = attribute(copy_lm, translation, method, progress=part(i), **kwargs)
        steps.append(RandomisationStep(block, float(np.nanmean(rank_agreement(original, a))), a))
    if progress:
        progress(1.0)
    return original, steps
