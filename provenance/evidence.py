"""Exact evidence: the training pairs that contain a token or an n-gram, and what their other side says.

    find_pairs(lm, "京")                         # 54 pairs with 京; their translations: "Tokyo" in 46 ...
    find_pairs(lm, "Tokyo", side="target")      # pairs whose translation has the word
    output_evidence(lm, tr, t=6, source=(4, 5))  # pairs with the aligned source n-gram AND the output token

A query is matched on the model's own tokens (the tokenizer of that side, no special tokens), so it finds what
the model saw: for a subword vocabulary "Tokyo" finds the word-initial piece "▁Tokyo", not "Tokyo" inside a
longer word. Counts are per pair (a pair with the n-gram twice counts once) beside the occurrences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from provenance.data import TrainingSet, training_set


@dataclass(frozen=True, eq=False)
class Evidence:
    """What the training split says about one n-gram.

    ``pairs``: indices of the training pairs that contain it (all of them, in corpus order); ``examples``: the
    first ``limit`` of them as a table; ``cooccurring``: the other side's tokens in those pairs, most frequent
    first, with ``lift`` = how much more often than in an average training pair (a translation's signature).
    ``with_other``: when an other-side token was asked for (``also``), the pairs that hold both.
    """

    query: tuple[str, ...]
    side: str
    ids: tuple[int, ...]
    n_training_pairs: int
    n_occurrences: int
    pairs: np.ndarray
    examples: pd.DataFrame
    cooccurring: pd.DataFrame
    also: tuple[str, ...] = ()
    with_other: np.ndarray | None = None

    @property
    def n_pairs(self) -> int:
        return len(self.pairs)

    def summary(self) -> str:
        q = (
            "".join(self.query)
            if self.side == "source" and all(len(t) == 1 for t in self.query)
            else " ".join(self.query)
        )
        text = f"{q!r} ({self.side}) occurs in {self.n_pairs:,} of {self.n_training_pairs:,} training pairs"
        if self.with_other is not None:
            text += f"; {len(self.with_other):,} of them have {' '.join(self.also)!r} on the other side"
        return text

    def _repr_html_(self) -> str:
        return f"<p>{self.summary()}</p>" + self.cooccurring.head(10).to_html(index=False)


def _ids(lm: Any, query: str | Sequence[int], side: str) -> list[int]:
    if isinstance(query, str):
        tok = lm.src_tokenizer if side == "source" else lm.tgt_tokenizer
        ids = list(tok(query.strip(), add_special_tokens=False).input_ids)
        if not ids:
            raise ValueError("the query is empty: type a word, a character or a few of them")
        if tok.unk_token_id is not None and tok.unk_token_id in ids:
            raise ValueError(
                f"{query.strip()!r} holds characters outside the model's {side} vocabulary: it never saw them in "
                "training, so no training pair has them"
            )
        return ids
    ids = [int(i) for i in query]
    if not ids:
        raise ValueError("the query is empty: give at least one token id")
    return ids


def _tokens(lm: Any, ids: Sequence[int], side: str) -> tuple[str, ...]:
    tok = lm.src_tokenizer if side == "source" else lm.tgt_tokenizer
    return tuple(tok.convert_ids_to_tokens(list(ids)))


def _cooccurring(lm: Any, ts: TrainingSet, pairs: np.ndarray, other: str, top: int) -> pd.DataFrame:
    side = ts.side(other)
    vocab = len(side.pairs_with)
    member = np.zeros(len(ts), dtype=bool)
    member[pairs] = True
    sel = member[side.pair_of]
    unique = np.unique(side.pair_of[sel].astype(np.int64) * vocab + side.ids[sel])
    counts = np.bincount((unique % vocab).astype(np.int64), minlength=vocab)
    tok = lm.src_tokenizer if other == "source" else lm.tgt_tokenizer
    counts[[i for i in tok.all_special_ids if i < vocab]] = 0
    order = np.argsort(-counts, kind="stable")[:top]
    order = order[counts[order] > 0]
    base = side.pairs_with[order] / max(1, len(ts))
    share = counts[order] / max(1, len(pairs))
    return pd.DataFrame(
        {
            "token": tok.convert_ids_to_tokens(order.tolist()),
            "id": order,
            "pairs": counts[order],
            "share": share.round(4),
            "lift": np.where(base > 0, share / np.maximum(base, 1e-12), 0.0).round(2),
        }
    )


def find_pairs(
    lm: Any,
    query: str | Sequence[int],
    side: str = "source",
    also: str | Sequence[int] | None = None,
    limit: int = 50,
    top: int = 30,
) -> Evidence:
    """The training pairs of ``lm`` with ``query`` (text or token ids) on ``side``.

    ``also``: an other-side token or n-gram; the pairs holding both are ``with_other`` (listed first in
    ``examples``). Raises ``NoTrainingData`` for a model Lantern did not train, ``ValueError`` for an empty query.
    """
    ts = training_set(lm)
    other = "target" if side == "source" else "source"
    ids = _ids(lm, query, side)
    positions = ts.side(side).occurrences(ids)
    pairs = np.unique(ts.side(side).pair_of[positions]).astype(np.int64)
    with_other, also_tokens = None, ()
    if also is not None:
        also_ids = _ids(lm, also, other)
        also_tokens = _tokens(lm, also_ids, other)
        holders = np.unique(ts.side(other).pair_of[ts.side(other).occurrences(also_ids)])
        with_other = np.intersect1d(pairs, holders)
    first = pairs if with_other is None else np.concatenate([with_other, np.setdiff1d(pairs, with_other)])
    shown = first[:limit]
    examples = pd.DataFrame(
        {
            "pair": shown,
            "source": [ts.src[i] for i in shown],
            "target": [ts.tgt[i] for i in shown],
            **({"has_both": np.isin(shown, with_other)} if with_other is not None else {}),
        }
    )
    return Evidence(
        query=_tokens(lm, ids, side),
        side=side,
        ids=tuple(ids),
        n_training_pairs=len(ts),
        n_occurrences=len(positions),
        pairs=pairs,
        examples=examples,
        cooccurring=_cooccurring(lm, ts, pairs, other, top),
        also=also_tokens,
        with_other=with_other,
    )


def output_evidence(lm: Any, translation: Any, t: int, source: tuple[int, int], limit: int = 50) -> Evidence:
    """Evidence for output token ``t`` of ``translation``: the training pairs with its aligned source n-gram
    (source token positions ``source[0]:source[1]``, e.g. from attention or an attribution) and how many of
    them have the output token in their translation."""
    if not 0 <= t < len(translation.tgt_ids):
        raise ValueError(f"output token {t} does not exist: the output has {len(translation.tgt_ids)} tokens")
    a, b = source
    if not 0 <= a < b <= len(translation.src_ids):
        raise ValueError(f"source span {source} is outside the {len(translation.src_ids)} source tokens")
    special = set(lm.src_tokenizer.all_special_ids)
    ids = [i for i in translation.src_ids[a:b] if i not in special]
    if not ids:
        raise ValueError("the source span holds only special tokens (like </s>): pick a word of the sentence")
    return find_pairs(lm, ids, "source", also=[translation.tgt_ids[t]], limit=limit)
