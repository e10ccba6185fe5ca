"""Plausibility: word alignments read off an explanation, scored against human gold alignments (AER).

Gold files in the WPT/Hansards "talp" format: ``i-j`` is a sure link, ``ipj`` a possible one, 1-based,
``i`` indexing the source (English) words and ``j`` the target (French) words. AER, precision and
recall follow Och & Ney (2003): with A the predicted links, S the sure and P the possible ones
(S ⊆ P), AER = 1 − (|A∩S| + |A∩P|) / (|A| + |S|).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

Link = tuple[int, int]  # (source word, target word), 0-based

# Published AER (%) of dedicated word aligners on the same 447 En–Fr Hansards sentences
# (neulab/awesome-align README, Dou & Neubig 2021): what an explanation's alignments can be held against.
PUBLISHED_AER_EN_FR = {
    "fast_align": 10.5,
    "eflomal": 8.2,
    "Mgiza, grow-diag-final": 5.9,
    "mBERT, no fine-tuning": 5.6,
    "awesome-align, fine-tuned": 4.1,
}


@dataclass(frozen=True)
class GoldAlignment:
    sure: frozenset[Link]
    possible: frozenset[Link]  # includes the sure links


def parse_gold_line(line: str) -> GoldAlignment:
    sure, possible = set(), set()
    for item in line.split():
        sep = "-" if "-" in item else "p"
        i, j = item.split(sep)
        link = (int(i) - 1, int(j) - 1)
        possible.add(link)
        if sep == "-":
            sure.add(link)
    return GoldAlignment(frozenset(sure), frozenset(possible))


def read_gold(path: str | Path) -> list[GoldAlignment]:
    return [parse_gold_line(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


@dataclass(frozen=True)
class AlignmentScore:
    aer: float
    precision: float
    recall: float
    n_predicted: int
    n_sure: int


def score_alignments(predicted: Iterable[Iterable[Link]], gold: Sequence[GoldAlignment]) -> AlignmentScore:
    """Corpus-level AER, precision and recall (counts summed over sentences, as Och & Ney)."""
    a_s = a_p = n_a = n_s = 0
    for links, g in zip(predicted, gold, strict=True):
        links = set(links)
        a_s += len(links & g.sure)
        a_p += len(links & g.possible)
        n_a += len(links)
        n_s += len(g.sure)
    if n_a + n_s == 0:
        raise ValueError("no links on either side")
    return AlignmentScore(
        aer=1 - (a_s + a_p) / (n_a + n_s),
        precision=a_p / n_a if n_a else 0.0,
        recall=a_s / n_s if n_s else 0.0,
        n_predicted=n_a,
        n_sure=n_s,
    )


def argmax_links(weights: np.ndarray) -> set[Link]:
    """Each target word linked to its highest-scoring source word. ``weights`` [tgt words, src words]."""
    return {(int(np.argmax(row)), t) for t, row in enumerate(weights) if np.isfinite(row).all() and row.max() > 0}


def diagonal_links(n_src: int, n_tgt: int) -> set[Link]:
    """The no-model baseline: target word j linked to the source word at the same relative position.

    Close languages are nearly monotonic, so an explanation's alignments mean something only where
    they beat this line.
    """
    if n_src < 1:
        return set()
    return {(round(j * (n_src - 1) / max(1, n_tgt - 1)), j) for j in range(n_tgt)}


def word_index(offsets: Sequence[tuple[int, int]], text: str) -> list[int | None]:
    """For each token (by its character span in ``text``), the index of the space-separated word it is in.

    A token is placed by its last character: SentencePiece-style pieces (``▁cat``) often span the space
    before the word, so their first character belongs to the previous one.
    """
    starts, pos = [], 0
    for word in text.split(" "):
        starts.append(pos)
        pos += len(word) + 1
    out: list[int | None] = []
    for start, end in offsets:
        if end <= start:  # special tokens have empty spans
            out.append(None)
            continue
        out.append(int(np.searchsorted(starts, end - 1, side="right")) - 1)
    return out


def to_words(
    scores: np.ndarray, tgt_words: Sequence[int | None], src_words: Sequence[int | None], n_tgt: int, n_src: int
) -> np.ndarray:
    """Token scores [tgt tokens, src tokens] -> word scores [n_tgt, n_src]: sum over source pieces,
    mean over target pieces; special tokens are dropped."""
    out = np.zeros((n_tgt, n_src))
    count = np.zeros(n_tgt)
    for t, tw in enumerate(tgt_words):
        if tw is None:
            continue
        row = np.zeros(n_src)
        for s, sw in enumerate(src_words):
            if sw is not None:
                row[sw] += scores[t, s]
        out[tw] += row
        count[tw] += 1
    return out / np.maximum(count, 1)[:, None]
