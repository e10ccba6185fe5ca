"""A Lantern model's training split, tokenized as the model read it, in flat arrays that search fast.

The corpora are never committed: the split is rebuilt from the data root with the run's own config
(``training_config.json`` in the model folder: corpus, split seed, sizes, length limit), so it is exactly the
pairs the model was trained on. Built on first use (3 s for 26k pairs, 20 s for 163k on 2 cores), kept in memory
and in ``cache/provenance/`` (keyed by the config, the tokenizers and the corpus file's size and time), so a
later process loads it in well under a second.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.folder import TARGET_TOKENIZER_DIR, TRAINING_CONFIG


class NoTrainingData(LookupError):
    """The model has no training data Lantern can show (a pretrained model, or the corpus is not on this machine)."""


@dataclass(frozen=True, eq=False)
class Side:
    """One side of the training pairs: every pair's token ids end to end, and where each pair starts."""

    ids: np.ndarray  # int32 [n_tokens]
    starts: np.ndarray  # int64 [n_pairs + 1]; pair i is ids[starts[i]:starts[i + 1]]
    pair_of: np.ndarray  # int32 [n_tokens]: the pair each position belongs to
    pairs_with: np.ndarray  # int32 [vocab]: in how many pairs each token occurs (document frequency)

    @classmethod
    def build(cls, rows: list[list[int]], vocab: int) -> Side:
        lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
        starts = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=starts[1:])
        ids = np.fromiter((t for r in rows for t in r), dtype=np.int32, count=int(starts[-1]))
        return cls.from_arrays(ids, starts, vocab)

    @classmethod
    def from_arrays(cls, ids: np.ndarray, starts: np.ndarray, vocab: int, pairs_with: np.ndarray | None = None) -> Side:
        pair_of = np.repeat(np.arange(len(starts) - 1, dtype=np.int32), np.diff(starts))
        if pairs_with is None:
            unique = np.unique(pair_of.astype(np.int64) * vocab + ids)  # each (pair, token) once
            pairs_with = np.bincount((unique % vocab).astype(np.int64), minlength=vocab).astype(np.int32)
        return cls(ids, starts, pair_of, pairs_with)

    def occurrences(self, ngram: list[int]) -> np.ndarray:
        """Start positions of ``ngram`` inside one pair (never across two), in ``ids``' order."""
        n = len(ngram)
        if n == 0 or n > len(self.ids):
            return np.zeros(0, dtype=np.int64)
        last = len(self.ids) - n + 1
        hit = self.ids[:last] == ngram[0]
        for k in range(1, n):
            hit &= self.ids[k : k + last] == ngram[k]
        pos = np.flatnonzero(hit)
        if n > 1:  # the n-gram must not run into the next pair
            pos = pos[self.pair_of[pos] == self.pair_of[pos + n - 1]]
        return pos

    def row(self, i: int) -> list[int]:
        return self.ids[self.starts[i] : self.starts[i + 1]].tolist()


@dataclass(frozen=True, eq=False)
class TrainingSet:
    """The training pairs of one model: texts, token ids per side, and the config they came from."""

    name: str
    src: list[str]
    tgt: list[str]
    source: Side
    target: Side
    config: dict[str, Any]

    def __len__(self) -> int:
        return len(self.src)

    def side(self, name: str) -> Side:
        if name not in ("source", "target"):
            raise ValueError(f"side must be 'source' or 'target', not {name!r}")
        return self.source if name == "source" else self.target


def model_folder(lm_or_folder: Any) -> Path | None:
    """The folder a model was loaded from (a ``LanternModel``, a Hugging Face model or a path), or None."""
    if isinstance(lm_or_folder, str | Path):
        return Path(lm_or_folder)
    model = getattr(lm_or_folder, "model", lm_or_folder)
    folder = getattr(getattr(model, "config", None), "name_or_path", "") or getattr(model, "name_or_path", "")
    return Path(str(folder)) if folder else None


def training_config(lm_or_folder: Any) -> dict[str, Any]:
    """The run config a Lantern model was trained with (``NoTrainingData`` for any other model)."""
    folder = model_folder(lm_or_folder)
    path = folder / TRAINING_CONFIG if folder else None
    if path is None or not path.is_file():
        what = getattr(lm_or_folder, "name", None) or folder or "this model"
        raise NoTrainingData(
            f"{what} was not trained by Lantern (no {TRAINING_CONFIG} in its folder): its training data is not "
            "known here, so there is no evidence from it to show"
        )
    return json.loads(path.read_text(encoding="utf-8"))


_LOCK = threading.Lock()


def training_set(lm_or_folder: Any) -> TrainingSet:
    """The model's training split (built on first use from the data root; ``NoTrainingData`` if it cannot be)."""
    folder = model_folder(lm_or_folder)
    training_config(lm_or_folder)  # raises for models Lantern did not train
    with _LOCK:  # two sessions asking at once build it once
        return _build(str(Path(folder).resolve()))


def _key(folder: Path, raw: dict[str, Any]) -> str:
    """What the index depends on: the run's data config, the tokenizers, the corpus file (size, time)."""
    from training.corpora import CORPORA, corpus_path

    h = hashlib.sha256(json.dumps(raw["data"], sort_keys=True).encode())
    if raw["data"].get("exclude"):
        h.update(Path(raw["data"]["exclude"]).read_bytes())
    for tok in sorted(folder.rglob("tokenizer.json")):
        h.update(tok.read_bytes())
    corpus = raw["data"]["corpus"]
    path = Path(corpus[len("file:") :]) if corpus.startswith("file:") else None
    if corpus in CORPORA:
        path = corpus_path(corpus)
    if path is not None and path.exists():
        st = path.stat()
        h.update(f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def _save(ts: TrainingSet, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    arrays = {
        f"{s}_{k}": getattr(getattr(ts, s), k) for s in ("source", "target") for k in ("ids", "starts", "pairs_with")
    }
    np.savez(
        tmp,
        src=np.frombuffer("\n".join(ts.src).encode(), np.uint8),
        tgt=np.frombuffer("\n".join(ts.tgt).encode(), np.uint8),
        **arrays,
    )
    tmp.replace(path)


def _load(path: Path, name: str, raw: dict[str, Any], vocab: tuple[int, int]) -> TrainingSet:
    z = np.load(path)
    sides = []
    for s, v in zip(("source", "target"), vocab, strict=True):
        sides.append(Side.from_arrays(z[f"{s}_ids"], z[f"{s}_starts"], v, z[f"{s}_pairs_with"]))
    src, tgt = (bytes(z[k]).decode().split("\n") for k in ("src", "tgt"))
    return TrainingSet(name, src, tgt, sides[0], sides[1], raw)


@functools.lru_cache(maxsize=4)
def _build(folder: str) -> TrainingSet:
    from transformers import PreTrainedTokenizerFast

    from common.paths import cache_root
    from training.config import config_from_dict
    from training.corpora import DataNotFoundError, load_splits, training_pairs

    raw = json.loads((Path(folder) / TRAINING_CONFIG).read_text(encoding="utf-8"))
    cfg = config_from_dict({k: v for k, v in raw.items() if k != "name"} | {"name": raw.get("name", "model")})
    d = cfg.data
    src_tok = PreTrainedTokenizerFast.from_pretrained(folder)
    tgt_dir = Path(folder) / TARGET_TOKENIZER_DIR
    tgt_tok = PreTrainedTokenizerFast.from_pretrained(str(tgt_dir)) if tgt_dir.is_dir() else src_tok
    try:
        cached = cache_root() / "provenance" / f"{cfg.name}-{_key(Path(folder), raw)}.npz"
    except (DataNotFoundError, FileNotFoundError) as err:
        raise NoTrainingData(f"the training corpus of {Path(folder).name} is not on this machine: {err}") from err
    if cached.exists():
        return _load(cached, cfg.name, raw, (len(src_tok), len(tgt_tok)))
    try:
        splits = load_splits(d.corpus, d.src_lang, d.tgt_lang, d.val_size, d.test_size, d.split_seed, d.max_chars)
    except (DataNotFoundError, FileNotFoundError) as err:
        raise NoTrainingData(f"the training corpus of {Path(folder).name} is not on this machine: {err}") from err
    train = training_pairs(splits, d.limit_train, d.exclude)
    src_rows = src_tok([p.src for p in train], add_special_tokens=False).input_ids
    tgt_rows = tgt_tok([p.tgt for p in train], add_special_tokens=False).input_ids
    extra_src, extra_tgt = _specials(src_tok), _specials(tgt_tok)
    keep = [  # the pairs training kept (``training.batching.encode_pairs``: specials count towards the limit)
        i
        for i, (s, t) in enumerate(zip(src_rows, tgt_rows, strict=True))
        if 0 < len(s) + extra_src <= d.max_tokens and 0 < len(t) + extra_tgt <= d.max_tokens
    ]
    ts = TrainingSet(
        name=cfg.name,
        src=[train[i].src for i in keep],
        tgt=[train[i].tgt for i in keep],
        source=Side.build([src_rows[i] for i in keep], len(src_tok)),
        target=Side.build([tgt_rows[i] for i in keep], len(tgt_tok)),
        config=raw,
    )
    with contextlib.suppress(OSError):  # a read-only cache: build again next time
        _save(ts, cached)
    return ts


def _specials(tok: Any) -> int:
    """How many special tokens the tokenizer adds to one text (EOS on a target side, none on a char source)."""
    return len(tok("a").input_ids) - len(tok("a", add_special_tokens=False).input_ids)
