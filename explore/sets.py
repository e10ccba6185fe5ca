"""Datasets a model can be run over: a shipped model's test split, the gold-alignment set, WinoMT, an upload.

A ``Dataset`` is plain data (sources, optional references, optional extra columns); ``dataset(name)`` builds one
by name, ``offered(src_lang)`` lists the names that fit a model's source language. Corpora are read from the data
root (``$LANTERN_DATA``, default ``../shared/data``) and never downloaded.

    from explore.sets import dataset
    ds = dataset("test:transformer-en-fr")       # 1,000 Tatoeba pairs, the split the model's card scores on
    ds = dataset("winomt")                        # 3,888 English sentences with gold gender, no references
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from common.paths import checkpoint_roots, data_root
from common.text import clean_text
from training.corpora import DataNotFoundError, Pair, load_splits, parse_tsv, parse_two_files

TRAINING_CONFIG = "training_config.json"
GOLD_ALIGN = "gold-align-en-fr"
WINOMT = "winomt"
MAX_UPLOAD_LINES = 20_000


class DatasetError(ValueError):
    """A dataset name that does not exist here, or one that does not fit the model."""


@dataclass(frozen=True)
class Dataset:
    name: str  # what ``dataset()`` takes: "test:<model>", "gold-align-en-fr", "winomt", "upload:<hash>"
    title: str
    src_lang: str
    tgt_lang: str | None  # None: any (WinoMT is English only; its targets are whatever the model writes)
    sources: tuple[str, ...]
    references: tuple[str, ...] | None = None
    extra: dict[str, tuple] = field(default_factory=dict)  # more columns, one value per sentence
    about: str = ""  # origin and licence, one line

    def __post_init__(self) -> None:
        if not self.sources:
            raise DatasetError(f"{self.title} has no sentences")
        if self.references is not None and len(self.references) != len(self.sources):
            raise DatasetError(f"{self.title}: {len(self.sources)} sources but {len(self.references)} references")
        for key, column in self.extra.items():
            if len(column) != len(self.sources):
                raise DatasetError(f"{self.title}: column {key} has {len(column)} values for {len(self.sources)}")

    def __len__(self) -> int:
        return len(self.sources)

    def head(self, n: int) -> Dataset:
        """The first ``n`` sentences (all of them when ``n`` is at least the length)."""
        if n >= len(self):
            return self
        return Dataset(
            f"{self.name}[:{n}]",
            f"{self.title}, first {n:,}",
            self.src_lang,
            self.tgt_lang,
            self.sources[:n],
            self.references[:n] if self.references is not None else None,
            {k: v[:n] for k, v in self.extra.items()},
            self.about,
        )

    def fingerprint(self) -> str:
        """A short hash of the text (sources and references): a run's cache key, with the model's."""
        h = hashlib.sha256()
        for s in self.sources:
            h.update(s.encode("utf-8", "surrogatepass") + b"\0")
        for r in self.references or ():
            h.update(r.encode("utf-8", "surrogatepass") + b"\1")
        return h.hexdigest()[:16]


def _checkpoint_folders() -> dict[str, Path]:
    out = {}
    for root in checkpoint_roots():
        if root.is_dir():
            for folder in sorted(root.iterdir()):
                if (folder / TRAINING_CONFIG).is_file():
                    out.setdefault(folder.name, folder)
    return out


def _run_data(folder: Path) -> dict:
    return json.loads((folder / TRAINING_CONFIG).read_text(encoding="utf-8"))["data"]


def test_split(model: str) -> Dataset:
    """The held-out test split a Lantern model's card scores on (read from its ``training_config.json``)."""
    folder = _checkpoint_folders().get(model)
    if folder is None:
        raise DatasetError(f"no Lantern checkpoint named {model!r} with a {TRAINING_CONFIG}")
    d = _run_data(folder)
    splits = load_splits(
        d["corpus"],
        d["src_lang"],
        d["tgt_lang"],
        d.get("val_size", 1000),
        d.get("test_size", 1000),
        d.get("split_seed", 1234),
        d.get("max_chars", 200),
    )
    return Dataset(
        name=f"test:{model}",
        title=f"test split of {model} ({d['corpus']}, {len(splits.test):,} pairs)",
        src_lang=d["src_lang"],
        tgt_lang=d["tgt_lang"],
        sources=tuple(p.src for p in splits.test),
        references=tuple(p.tgt for p in splits.test),
        about=f"{d['corpus']}: see {data_root()}/{d['corpus']}/SOURCE.md for origin and licence",
    )


def _data_file(*parts: str) -> Path:
    path = data_root().joinpath(*parts)
    if not path.is_file():
        raise DataNotFoundError(
            f"{path} not found: put the {parts[0]} set there (see the data README) or point LANTERN_DATA at a "
            "folder that holds it. Lantern does not download data."
        )
    return path


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def gold_alignment_set() -> Dataset:
    """The 447 Hansards en–fr sentences with human word alignments (lowercased, tokenized)."""
    src = _lines(_data_file(GOLD_ALIGN, "en.txt"))
    ref = _lines(_data_file(GOLD_ALIGN, "fr.txt"))
    return Dataset(
        name=GOLD_ALIGN,
        title=f"Hansards en–fr with gold word alignments ({len(src)} pairs)",
        src_lang="en",
        tgt_lang="fr",
        sources=tuple(src),
        references=tuple(ref),
        about=f"see {data_root()}/{GOLD_ALIGN}/SOURCE.md",
    )


def winomt_set() -> Dataset:
    """WinoMT (Stanovsky et al. 2019): 3,888 English sentences whose profession's gender a pronoun fixes."""
    from explore.winomt import read_winomt, winomt_folder

    items = read_winomt()
    return Dataset(
        name=WINOMT,
        title=f"WinoMT gender-bias challenge set ({len(items):,} English sentences)",
        src_lang="en",
        tgt_lang=None,
        sources=tuple(i.sentence for i in items),
        extra={
            "gold gender": tuple(i.gender for i in items),
            "profession": tuple(i.profession for i in items),
            "profession index": tuple(i.index for i in items),
            "stereotype": tuple(i.stereotype for i in items),
        },
        about=f"MIT; see {winomt_folder()}/SOURCE.md",
    )


def uploaded(pairs: list[Pair], src_lang: str, tgt_lang: str | None, label: str = "upload") -> Dataset:
    """A dataset from pairs a user uploaded (``training.corpora.parse_tsv`` / ``parse_two_files``)."""
    if len(pairs) > MAX_UPLOAD_LINES:
        raise DatasetError(f"the upload has {len(pairs):,} lines; the explorer takes up to {MAX_UPLOAD_LINES:,}")
    sources = tuple(clean_text(p.src) for p in pairs)
    refs = tuple(clean_text(p.tgt) for p in pairs)
    ds = Dataset("upload", label, src_lang, tgt_lang, sources, refs)
    return Dataset(
        f"upload:{ds.fingerprint()}",
        f"{label} ({len(pairs):,} pairs)",
        src_lang,
        tgt_lang,
        sources,
        refs,
        about="uploaded",
    )


def from_upload(
    data: bytes | None, src_lang: str, tgt_lang: str | None, src: bytes | None = None, tgt: bytes | None = None
) -> Dataset:
    """A TSV (``source<TAB>reference``) or two line-aligned files, the formats of the training page."""
    pairs = parse_tsv(data) if data is not None else parse_two_files(src or b"", tgt or b"")
    return uploaded(pairs, src_lang, tgt_lang)


def offered(src_lang: str | None) -> dict[str, str]:
    """Names -> short titles of the datasets on this machine whose source language is ``src_lang`` (None: all).

    Reading nothing large: a test split is offered when its model is; WinoMT and the gold set when their files are.
    """
    out: dict[str, str] = {}
    for model, folder in _checkpoint_folders().items():
        d = _run_data(folder)
        if src_lang in (None, d["src_lang"]):
            out[f"test:{model}"] = f"test split of {model} ({d['corpus']}, {d['src_lang']}→{d['tgt_lang']})"
    if src_lang in (None, "en"):
        if (data_root() / GOLD_ALIGN / "en.txt").is_file():
            out[GOLD_ALIGN] = "Hansards en–fr, 447 sentences with gold word alignments"
        if (data_root() / "winomt-en" / "en.txt").is_file():
            out[WINOMT] = "WinoMT gender bias, 3,888 English sentences"
    return out


def dataset(name: str) -> Dataset:
    """The dataset called ``name`` (see ``offered``; ``name[:n]`` is its first n sentences); uploads are not named
    here (see ``from_upload``)."""
    if name.endswith("]") and "[:" in name:
        base, _, count = name[:-1].rpartition("[:")
        if not count.isdigit() or int(count) < 1:
            raise DatasetError(f"{name!r}: write the first n sentences as name[:n] with n ≥ 1")
        return dataset(base).head(int(count))
    if name.startswith("test:"):
        return test_split(name[len("test:") :])
    if name == GOLD_ALIGN:
        return gold_alignment_set()
    if name == WINOMT:
        return winomt_set()
    raise DatasetError(f"unknown dataset {name!r}; known here: {', '.join(offered(None)) or 'none'}")
