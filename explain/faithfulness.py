"""Faithfulness of an explanation: does removing what it calls important change the output?

Per generated token, under teacher forcing, on the probability of that token:

- comprehensiveness (DeYoung et al. 2020, ERASER): p(y_t | x) − p(y_t | x without its top-k% source
  tokens); AOPC averages it over k = 10..100%. Higher: the explanation found what the output needs.
- sufficiency: p(y_t | x) − p(y_t | only the top-k% tokens); AOPC over k. Lower is better.
- soft variants (Zhao & Aletras 2023): instead of deleting, scale each token's embedding toward the
  baseline by its normalised importance (comprehensiveness) or by one minus it (sufficiency), so the
  magnitudes of the scores count, not only their ranks.
- Kendall τ between the scores and leave-one-out erasure (Jain & Wallace 2019; ferret's τ-LOO).

"Removing" a token puts the baseline (padding) embedding in its place, as occlusion does; the target
prefix is kept. All masked inputs of a sentence run as one batch (``explain.perturbation.evaluate_masks``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from explain.deadline import Progress, with_deadline
from explain.objective import Objective
from explain.perturbation import evaluate_masks
from explain.types import Attribution, Translation
from models.adapter import LanternModel
from models.threads import under_policy

FRACTIONS = tuple(k / 10 for k in range(1, 11))


@dataclass(frozen=True, eq=False)
class Faithfulness:
    method: str
    comprehensiveness: np.ndarray  # [tgt, len(FRACTIONS)] drop in p(y_t) with the top-k% removed
    sufficiency: np.ndarray  # [tgt, len(FRACTIONS)] drop in p(y_t) with only the top-k% kept
    soft_comprehensiveness: np.ndarray  # [tgt]
    soft_sufficiency: np.ndarray  # [tgt]
    kendall_loo: np.ndarray  # [tgt] τ between the scores and leave-one-out drops
    fractions: tuple[float, ...] = FRACTIONS

    @property
    def aopc_comprehensiveness(self) -> float:
        return float(self.comprehensiveness.mean())

    @property
    def aopc_sufficiency(self) -> float:
        return float(self.sufficiency.mean())

    def summary(self) -> dict[str, float]:
        return {
            "AOPC comprehensiveness ↑": self.aopc_comprehensiveness,
            "AOPC sufficiency ↓": self.aopc_sufficiency,
            "soft comprehensiveness ↑": float(np.mean(self.soft_comprehensiveness)),
            "soft sufficiency ↓": float(np.mean(self.soft_sufficiency)),
            # NaN when no step has a τ (a one-token text: nothing to rank)
            "Kendall τ with leave-one-out ↑": (
                float(np.nanmean(self.kendall_loo)) if np.isfinite(self.kendall_loo).any() else float("nan")
            ),
        }


def kendall_tau(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's τ-b (ties handled); NaN when either side is constant."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    da = np.sign(a[:, None] - a[None, :])
    db = np.sign(b[:, None] - b[None, :])
    upper = np.triu_indices(len(a), 1)
    da, db = da[upper], db[upper]
    denom = np.sqrt((da != 0).sum() * (db != 0).sum())
    return float((da * db).sum() / denom) if denom else float("nan")


def _top_masks(scores: np.ndarray, fractions: tuple[float, ...], keep: bool) -> np.ndarray:
    """[len(fractions), S] masks: 1 = token kept. ``keep``: keep only the top-k%, else remove it."""
    s = len(scores)
    order = np.argsort(-scores, kind="stable")
    masks = np.ones((len(fractions), s)) if not keep else np.zeros((len(fractions), s))
    for i, frac in enumerate(fractions):
        top = order[: max(1, round(frac * s))]
        masks[i, top] = 1.0 if keep else 0.0
    return masks


def _prob_objective(lm: LanternModel, translation: Translation) -> Objective:
    """p(y_t) for every output token of ``translation``, as a function of source masks."""
    dev = lm.device
    return Objective(
        lm,
        torch.tensor(translation.src_ids, device=dev),
        torch.tensor(lm.decoder_inputs(list(translation.tgt_ids)), device=dev, dtype=torch.long),
        torch.tensor(translation.tgt_ids, device=dev),
        "prob",
        span=translation.src_span,
    )


def masks_needed(n_src: int, n_tgt: int) -> int:
    """Masked inputs the measures run for one explanation (their cost before a run; each reads the sentence)."""
    return 1 + n_tgt * (2 * len(FRACTIONS) + 2 + n_src)


@under_policy
def measure(
    lm: LanternModel,
    translation: Translation,
    attribution: Attribution,
    progress: Progress | None = None,
    time_limit: float | None = None,
) -> Faithfulness:
    """Faithfulness of ``attribution`` (its source scores) for every explained output token.

    ``progress`` is called with the fraction done; ``time_limit`` (seconds) stops the run with
    ``ComputationTimeout``."""
    if attribution.src_tokens != translation.src_tokens or attribution.tgt_tokens != translation.tgt_tokens:
        raise ValueError("the attribution explains a different sentence or output than this translation")
    obj = _prob_objective(lm, translation)
    # [T, S] ranked as given: for signed methods the most positive tokens are those supporting the output
    # (removing a token that pushed against it would raise p); unsigned methods are magnitudes already.
    # A prompted model: the text's tokens only (the prompt around it is never removed; see ``Objective.span``).
    a, b = translation.src_span or (0, len(translation.src_ids))
    importance = attribution.scores[:, a:b].astype(float)
    t_len, s_len, n_k = importance.shape[0], importance.shape[1], len(FRACTIONS)
    blocks = []  # per step: n_k removal masks, n_k keep masks, soft comp, soft suff, S leave-one-out masks
    for t in range(t_len):
        pos = np.clip(importance[t], 0, None)  # soft masks scale by the supporting part of the scores
        norm = pos / pos.max() if pos.max() > 0 else pos
        blocks += [
            _top_masks(importance[t], FRACTIONS, keep=False),
            _top_masks(importance[t], FRACTIONS, keep=True),
            (1 - norm)[None],
            norm[None],
            1 - np.eye(s_len),
        ]
    text_masks = np.concatenate([np.ones((1, s_len)), *blocks])
    masks = np.ones((len(text_masks), len(translation.src_ids)))
    masks[:, a:b] = text_masks
    masks = torch.from_numpy(masks).float()
    probs = evaluate_masks(obj, masks, False, with_deadline(progress, time_limit)).numpy()  # [N, T]
    full, per = probs[0], 2 * n_k + 2 + s_len
    comp, suff = np.zeros((t_len, n_k)), np.zeros((t_len, n_k))
    soft_c, soft_s, tau = np.zeros(t_len), np.zeros(t_len), np.zeros(t_len)
    for t in range(t_len):
        rows = probs[1 + t * per : 1 + (t + 1) * per, t]
        comp[t], suff[t] = full[t] - rows[:n_k], full[t] - rows[n_k : 2 * n_k]
        soft_c[t], soft_s[t] = full[t] - rows[2 * n_k], full[t] - rows[2 * n_k + 1]
        tau[t] = kendall_tau(importance[t], full[t] - rows[2 * n_k + 2 :])
    keep = list(attribution.rows)
    return Faithfulness(attribution.method, comp[keep], suff[keep], soft_c[keep], soft_s[keep], tau[keep])


def oracle_ranking(lm: LanternModel, translation: Translation) -> np.ndarray:
    """Leave-one-out drops in p(y_t) [tgt, src]: the ranking that best explains single deletions."""
    obj = _prob_objective(lm, translation)
    s = len(translation.src_ids)
    masks = torch.from_numpy(np.concatenate([np.ones((1, s)), 1 - np.eye(s)])).float()
    probs = evaluate_masks(obj, masks, with_prefix=False).numpy()
    return (probs[0][None, :] - probs[1:]).T
