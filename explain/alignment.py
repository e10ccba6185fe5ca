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
    return row_argmax(weights)


# --- explanation -> word alignment: the published extraction choices -------------------------------
#
# A word-level score matrix is [target words, source words]. Scores are either absolute (|score| summed
# over subword pieces before linking, Lantern's published choice) or signed (the pieces' scores summed as
# they are): in both, a link needs a positive, finite best score, so a signed negative score never links.
# With ``null=True`` the last column (row argmax) or last row (column argmax) holds the special tokens
# (end of sentence): a word whose best partner is that token gets no link.

SYMMETRISATIONS = ("intersection", "union", "grow-diag", "grow-diag-final")
EXTRACTIONS = ("row", "column", *SYMMETRISATIONS)
_NEIGHBOURS = ((-1, 0), (0, -1), (1, 0), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1))  # diagonals included


def row_argmax(scores: np.ndarray, null: bool = False) -> set[Link]:
    """Each target word (row) linked to its best source word (column); ``null``: the last column is "no link"."""
    scores = np.asarray(scores, dtype=float)
    links = set()
    for t, row in enumerate(scores):
        if row.size == 0 or not np.isfinite(row).all():
            continue
        s = int(np.argmax(row))
        if row[s] > 0 and not (null and s == row.size - 1):
            links.add((s, t))
    return links


def column_argmax(scores: np.ndarray, null: bool = False) -> set[Link]:
    """Each source word (column) linked to its best target word (row); ``null``: the last row is "no link"."""
    return {(s, t) for t, s in row_argmax(np.asarray(scores, dtype=float).T, null)}


def grow_diag(rows: set[Link], columns: set[Link]) -> set[Link]:
    """Koehn et al. (2003) GROW-DIAG: start from the intersection of the two directions; until nothing changes,
    for every source word e and target word f in order that are linked, add each neighbour (diagonals included)
    that is in the union and whose source or target word is still unaligned. Links added during a sweep are
    visited later in the same sweep, as in the definition's loops over e and f."""
    union = rows | columns
    alignment = set(rows & columns)
    src_aligned = {e for e, _ in alignment}
    tgt_aligned = {f for _, f in alignment}
    added = True
    while added:
        added = False
        for e, f in sorted(union):  # only links of the union can be in the alignment: the same order as all (e, f)
            if (e, f) not in alignment:
                continue
            for de, df in _NEIGHBOURS:
                new = (e + de, f + df)
                if new in union and new not in alignment and (new[0] not in src_aligned or new[1] not in tgt_aligned):
                    alignment.add(new)
                    src_aligned.add(new[0])
                    tgt_aligned.add(new[1])
                    added = True
    return alignment


def final(alignment: set[Link], *directions: set[Link]) -> set[Link]:
    """Koehn et al. (2003) FINAL, applied to each direction in turn: add its links (in source, target order)
    whose source or target word is still unaligned."""
    alignment = set(alignment)
    src_aligned = {e for e, _ in alignment}
    tgt_aligned = {f for _, f in alignment}
    for direction in directions:
        for e, f in sorted(direction):
            if (e, f) not in alignment and (e not in src_aligned or f not in tgt_aligned):
                alignment.add((e, f))
                src_aligned.add(e)
                tgt_aligned.add(f)
    return alignment


def symmetrise(rows: set[Link], columns: set[Link], how: str) -> set[Link]:
    """Both directions combined: intersection ⊆ grow-diag ⊆ grow-diag-final ⊆ union."""
    if how == "intersection":
        return rows & columns
    if how == "union":
        return rows | columns
    if how == "grow-diag":
        return grow_diag(rows, columns)
    if how == "grow-diag-final":
        return final(grow_diag(rows, columns), rows, columns)
    raise ValueError(f"unknown symmetrisation {how!r}; choose from {', '.join(SYMMETRISATIONS)}")


def extract_all(scores: np.ndarray, eos: bool = False) -> dict[str, set[Link]]:
    """Every extraction of ``EXTRACTIONS`` from one word-level matrix whose last row and last column hold the
    special tokens (``to_words(..., specials=True)``). ``eos``: a word whose best partner is a special token gets
    no link; otherwise the special row and column are dropped first."""
    scores = np.asarray(scores, dtype=float)
    if eos:
        rows, columns = row_argmax(scores[:-1], null=True), column_argmax(scores[:, :-1], null=True)
    else:
        rows, columns = row_argmax(scores[:-1, :-1]), column_argmax(scores[:-1, :-1])
    out = {"row": rows, "column": columns}
    out.update(intersection=rows & columns, union=rows | columns)
    out["grow-diag"] = grow_diag(rows, columns)
    out["grow-diag-final"] = final(out["grow-diag"], rows, columns)
    return out


def extract(scores: np.ndarray, how: str = "row", eos: bool = False) -> set[Link]:
    """One extraction (``row``, ``column`` or a symmetrisation) from a matrix with the special row and column."""
    if how not in EXTRACTIONS:
        raise ValueError(f"unknown extraction {how!r}; choose from {', '.join(EXTRACTIONS)}")
    return extract_all(scores, eos)[how]


def pharaoh(links: Iterable[Link]) -> str:
    """Links as Pharaoh text, as fast_align writes it: ``i-j`` pairs, source index first, 0-based, sorted."""
    return " ".join(f"{s}-{t}" for s, t in sorted(links))


def parse_pharaoh(line: str) -> set[Link]:
    """The links of one line of Pharaoh ``i-j`` text (0-based, source first)."""
    links = set()
    for item in line.split():
        s, sep, t = item.partition("-")
        if not sep or not s.isdigit() or not t.isdigit():
            raise ValueError(f"not an i-j link: {item!r}")
        links.add((int(s), int(t)))
    return links


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
    scores: np.ndarray,
    tgt_words: Sequence[int | None],
    src_words: Sequence[int | None],
    n_tgt: int,
    n_src: int,
    specials: bool = False,
) -> np.ndarray:
    """Token scores [tgt tokens, src tokens] -> word scores [n_tgt, n_src]: sum over source pieces,
    mean over target pieces; special tokens are dropped, or with ``specials`` gathered into one extra last
    row (target specials, mean) and last column (source specials, sum): [n_tgt + 1, n_src + 1]."""
    extra = int(specials)
    out = np.zeros((n_tgt + extra, n_src + extra))
    count = np.zeros(n_tgt + extra)
    for t, tw in enumerate(tgt_words):
        if tw is None and not specials:
            continue
        tw = n_tgt if tw is None else tw
        row = np.zeros(n_src + extra)
        for s, sw in enumerate(src_words):
            if sw is not None or specials:
                row[n_src if sw is None else sw] += scores[t, s]
        out[tw] += row
        count[tw] += 1
    return out / np.maximum(count, 1)[:, None]
