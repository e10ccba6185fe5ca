"""Parallel corpora: reading, cleaning and leak-free splitting.

Corpora are never committed. They are read from a data root: ``$LANTERN_DATA`` if set, else
``../shared/data`` relative to the repository. A missing file raises ``DataNotFoundError`` whose
message says which file to put where and where the public original lives.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.paths import DATA_ENV, data_root
from common.text import clean_text

# name -> (relative path, origin). Language pairs are named by the corpus, not by direction.
CORPORA: dict[str, dict[str, str]] = {
    "tatoeba-en-zh": {
        "path": "tatoeba-en-zh/cmn.txt",
        "origin": "https://www.manythings.org/anki/cmn-eng.zip (file cmn.txt; CC-BY 2.0 FR, tatoeba.org)",
    },
    "tatoeba-en-fr": {
        "path": "tatoeba-en-fr/fra.txt",
        "origin": "https://www.manythings.org/anki/fra-eng.zip (file fra.txt; CC-BY 2.0 FR, tatoeba.org)",
    },
    "multi30k-en-de": {
        "path": "multi30k-en-de/raw",
        "origin": "https://github.com/multi30k/dataset data/task1/raw/*.gz (gunzipped)",
    },
}
MULTI30K_SPLITS = {"train": "train", "val": "val", "test": "test_2016_flickr"}


class DataNotFoundError(FileNotFoundError):
    """A corpus file is not under the data root."""


class CorpusFormatError(ValueError):
    """An uploaded corpus is malformed; the message names the line and what is wrong."""


def corpus_path(name: str, *parts: str) -> Path:
    """Path of a corpus file; raises ``DataNotFoundError`` with instructions when absent."""
    if name not in CORPORA:
        raise ValueError(f"unknown corpus {name!r}; known: {', '.join(CORPORA)}")
    path = data_root() / CORPORA[name]["path"]
    path = path.joinpath(*parts)
    if not path.exists():
        raise DataNotFoundError(
            f"{path} not found. Put the corpus {name!r} there (origin: {CORPORA[name]['origin']}), "
            f"or point {DATA_ENV} at a folder that holds {CORPORA[name]['path']}. "
            "Lantern does not download corpora."
        )
    return path


# --- cleaning -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    src: str
    tgt: str
    attribution: str = ""


@dataclass
class CleaningReport:
    read: int = 0
    malformed: int = 0
    empty: int = 0
    too_long: int = 0
    duplicate: int = 0
    kept: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def clean_pairs(pairs: Iterable[Pair], max_chars: int = 200, report: CleaningReport | None = None) -> list[Pair]:
    """Clean both sides; drop empty, over-long (> max_chars on either side) and duplicate pairs."""
    report = report if report is not None else CleaningReport()
    seen: set[tuple[str, str]] = set()
    out = []
    for pair in pairs:
        report.read += 1
        src, tgt = clean_text(pair.src), clean_text(pair.tgt)
        if not src or not tgt:
            report.empty += 1
        elif len(src) > max_chars or len(tgt) > max_chars:
            report.too_long += 1
        elif (src, tgt) in seen:
            report.duplicate += 1
        else:
            seen.add((src, tgt))
            out.append(Pair(src, tgt, pair.attribution))
    report.kept = len(out)
    return out


# --- readers --------------------------------------------------------------------------------


def read_tatoeba(path: Path, src_lang: str, report: CleaningReport | None = None) -> list[Pair]:
    """Read a manythings TSV (English, other[, attribution]); ``src_lang`` "en" or the other side.

    The file starts with a byte-order mark (read as utf-8-sig); lines without 2 or 3 fields are
    counted as malformed and skipped. Text is returned raw: call ``clean_pairs`` next.
    """
    pairs = []
    with open(path, encoding="utf-8-sig") as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if line.strip() == "":
                continue
            if len(fields) not in (2, 3):
                if report is not None:
                    report.malformed += 1
                continue
            en, other = fields[0], fields[1]
            attribution = fields[2] if len(fields) == 3 else ""
            src, tgt = (en, other) if src_lang == "en" else (other, en)
            pairs.append(Pair(src, tgt, attribution))
    return pairs


def read_parallel(src_path: Path, tgt_path: Path) -> list[Pair]:
    """Read two line-aligned text files; unequal line counts raise ``ValueError``."""
    src_lines = src_path.read_text(encoding="utf-8").splitlines()
    tgt_lines = tgt_path.read_text(encoding="utf-8").splitlines()
    if len(src_lines) != len(tgt_lines):
        raise ValueError(f"{src_path} has {len(src_lines)} lines but {tgt_path} has {len(tgt_lines)}")
    return [Pair(s, t) for s, t in zip(src_lines, tgt_lines, strict=True)]


def multi30k_tokenized(split: str, lang: str) -> list[str]:
    """The official lowercased, tokenized side of a Multi30k split (``tok/<split>.lc.norm.tok.<lang>``)."""
    path = data_root() / "multi30k-en-de" / "tok" / f"{MULTI30K_SPLITS[split]}.lc.norm.tok.{lang}"
    if not path.exists():
        raise DataNotFoundError(
            f"{path} not found: put Multi30k's data/task1/tok files there ({CORPORA['multi30k-en-de']['origin']})"
        )
    return path.read_text(encoding="utf-8").splitlines()


def _lines(data: bytes, what: str) -> list[str]:
    """UTF-8 lines of an upload; a line that is not UTF-8 (mixed encodings) is reported by number."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":  # a final newline is not an empty line
        lines.pop()
    out = []
    for n, raw in enumerate(lines, start=1):
        try:
            out.append(raw.decode("utf-8").rstrip("\r"))
        except UnicodeDecodeError:
            raise CorpusFormatError(
                f"{what}, line {n}: not UTF-8 (is the file in another encoding, or mixed?)"
            ) from None
    return out


def parse_tsv(data: bytes) -> list[Pair]:
    """``source<TAB>target`` per line (a third column, e.g. an attribution, is kept as such)."""
    pairs = []
    for n, line in enumerate(_lines(data, "the file"), start=1):
        if not line.strip():
            raise CorpusFormatError(f"line {n} is empty: every line must hold a source and a target")
        fields = line.split("\t")
        if len(fields) not in (2, 3):
            raise CorpusFormatError(f"line {n} has {len(fields)} tab-separated fields; expected 2 (source<TAB>target)")
        if not fields[0].strip() or not fields[1].strip():
            raise CorpusFormatError(f"line {n}: the {'source' if not fields[0].strip() else 'target'} is empty")
        pairs.append(Pair(fields[0], fields[1], fields[2] if len(fields) == 3 else ""))
    return pairs


def parse_two_files(src: bytes, tgt: bytes) -> list[Pair]:
    """Two line-aligned files; unequal lengths and empty lines are errors."""
    a, b = _lines(src, "the source file"), _lines(tgt, "the target file")
    if len(a) != len(b):
        raise CorpusFormatError(f"the source file has {len(a)} lines but the target file has {len(b)}")
    for n, (x, y) in enumerate(zip(a, b, strict=True), start=1):
        if not x.strip() or not y.strip():
            raise CorpusFormatError(f"line {n} is empty in the {'source' if not x.strip() else 'target'} file")
    return [Pair(x, y) for x, y in zip(a, b, strict=True)]


def load_multi30k(split: str, src_lang: str = "en", tgt_lang: str = "de") -> list[Pair]:
    """One official Multi30k split ("train", "val", "test"), raw cased text, uncleaned."""
    if split not in MULTI30K_SPLITS:
        raise ValueError(f"unknown Multi30k split {split!r}; known: {', '.join(MULTI30K_SPLITS)}")
    stem = MULTI30K_SPLITS[split]
    return read_parallel(
        corpus_path("multi30k-en-de", f"{stem}.{src_lang}"),
        corpus_path("multi30k-en-de", f"{stem}.{tgt_lang}"),
    )


# --- splitting ------------------------------------------------------------------------------


@dataclass
class Splits:
    train: list[Pair]
    val: list[Pair]
    test: list[Pair]
    seed: int = 0
    report: dict[str, int] = field(default_factory=dict)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def _groups(pairs: Sequence[Pair]) -> list[list[int]]:
    """Connected components of pairs that share a source or a target sentence (union-find)."""
    parent = list(range(len(pairs)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[tuple[str, str], int] = {}
    for i, pair in enumerate(pairs):
        for key in (("s", pair.src), ("t", pair.tgt)):
            j = first.setdefault(key, i)
            parent[find(i)] = find(j)
    comps: dict[int, list[int]] = {}
    for i in range(len(pairs)):
        comps.setdefault(find(i), []).append(i)
    return list(comps.values())


def split_pairs(pairs: Sequence[Pair], val_size: int, test_size: int, seed: int = 1234) -> Splits:
    """Shuffle with ``seed`` and split so that no sentence (source or target) is in two splits.

    Pairs sharing a sentence form a group that goes to one split as a whole; val and test are
    filled with whole groups up to their size (they may overshoot by one group).
    """
    groups = _groups(pairs)
    groups.sort(key=lambda g: g[0])  # deterministic order before the seeded shuffle
    random.Random(seed).shuffle(groups)
    buckets: dict[str, list[Pair]] = {"test": [], "val": [], "train": []}
    for group in groups:
        if len(buckets["test"]) < test_size:
            name = "test"
        elif len(buckets["val"]) < val_size:
            name = "val"
        else:
            name = "train"
        buckets[name].extend(pairs[i] for i in group)
    return Splits(buckets["train"], buckets["val"], buckets["test"], seed=seed)


def load_splits(
    corpus: str,
    src_lang: str,
    tgt_lang: str,
    val_size: int = 1000,
    test_size: int = 1000,
    seed: int = 1234,
    max_chars: int = 200,
) -> Splits:
    """Read, clean and split a corpus. Multi30k keeps its official splits (val, test2016)."""
    report = CleaningReport()
    if corpus.startswith("tatoeba"):
        other = corpus.split("-")[-1]
        if {src_lang, tgt_lang} != {"en", other}:
            raise ValueError(f"{corpus} holds en and {other}, not {src_lang}->{tgt_lang}")
        raw = read_tatoeba(corpus_path(corpus), src_lang, report)
        splits = split_pairs(clean_pairs(raw, max_chars, report), val_size, test_size, seed)
    elif corpus.startswith("file:"):  # a TSV a user uploaded (source<TAB>target), split like Tatoeba
        path = Path(corpus[len("file:") :])
        raw = parse_tsv(path.read_bytes())
        report.read = len(raw)
        splits = split_pairs(clean_pairs(raw, max_chars, report), val_size, test_size, seed)
    elif corpus == "multi30k-en-de":
        parts = {}
        for name in MULTI30K_SPLITS:
            raw = load_multi30k(name, src_lang, tgt_lang)
            # Official splits are kept whole: only train is filtered; val/test are cleaned only.
            parts[name] = (
                clean_pairs(raw, max_chars, report)
                if name == "train"
                else [Pair(clean_text(p.src), clean_text(p.tgt)) for p in raw]
            )
        splits = Splits(parts["train"], parts["val"], parts["test"], seed=seed)
    else:
        raise ValueError(f"unknown corpus {corpus!r}; known: {', '.join(CORPORA)}")
    splits.report = report.as_dict()
    return splits


def adaptation_pairs(
    train: Sequence[Pair],
    source: str,
    target: str,
    mix: int = 0,
    lowercase: bool = False,
    seed: int = 1234,
    max_chars: int = 200,
) -> tuple[list[Pair], dict[str, Any]]:
    """The pairs of an unsupervised adaptation run and a record of them for the model card.

    ``source``/``target``: two line-aligned text files of in-domain sentence pairs (a path relative to the data
    root, or absolute), e.g. the sentences of a gold alignment set (their text only, never their links: the "plus
    test" practice of unsupervised aligners). ``mix``: that many pairs drawn at random (``seed``) from the corpus's
    training part train beside them, so the model keeps its general translation (0: none). ``lowercase``: both
    sides of every pair lowercased (for in-domain text that is, like the Hansards, lowercased). Without
    ``source`` the training part is returned as it is (lowercased if asked).
    """
    record: dict[str, Any] = {}
    pairs = list(train)
    if source:
        paths = [Path(p) if Path(p).is_absolute() else data_root() / p for p in (source, target)]
        for path in paths:
            if not path.exists():
                raise DataNotFoundError(f"{path} not found (data.adapt_source / data.adapt_target)")
        report = CleaningReport()
        adapt = clean_pairs(read_parallel(*paths), max_chars, report)
        drawn = random.Random(seed).sample(pairs, min(mix, len(pairs))) if mix else []
        pairs = adapt + drawn
        record = {"source": str(source), "target": str(target), "pairs": len(adapt), "mixed": len(drawn)}
        record["cleaning"] = report.as_dict()
    if lowercase:
        pairs = [Pair(p.src.lower(), p.tgt.lower(), p.attribution) for p in pairs]
        record["lowercase"] = True
    return pairs, record


def training_pairs(splits: Splits, limit_train: int = 0, exclude: str = "") -> list[Pair]:
    """The pairs a run trains on: the split's training part, cut to ``limit_train``, less the pairs listed (by index
    into that part) in the JSON file ``exclude`` (e.g. the top proponents of a removal experiment)."""
    train = splits.train[:limit_train] if limit_train else splits.train
    if exclude:
        drop = set(json.loads(Path(exclude).read_text(encoding="utf-8")))
        train = [p for i, p in enumerate(train) if i not in drop]
    return train
