"""Token embeddings: a 2-D map of (a sample of) the vocabulary, and a token's nearest neighbours.

The map is PCA (an SVD of the centred sample, in torch): deterministic, exact, cheap on a 2-core server, and
linear, so a point's place is its embedding's coordinates along the sample's two directions of largest variance
(the axes mean the same for every token). t-SNE and UMAP distort distances non-linearly and are not available
without scikit-learn or umap-learn, which Lantern does not install. Neighbours are by cosine similarity over the whole
embedding matrix of one side, one matrix-vector product.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from explain.anatomy import family
from explain.inside_types import EmbeddingProjection, Neighbours
from models.adapter import LanternModel
from models.decoding import InputError
from models.folder import TRAINING_COUNTS
from models.threads import under_policy

SIDES = ("source", "target")
_MARKUP = re.compile(r"<[^<>]+>|\[[^\[\]]+\]")  # <unused0>, <0xA7>, </b>, [multimodal]: not words
MAX_SAMPLE = 5000  # vocabulary tokens drawn on one map
MAX_NEIGHBOURS = 200


def _check_side(side: str) -> None:
    if side not in SIDES:
        raise InputError(f"side must be one of {', '.join(SIDES)}, not {side!r}")


def embedding_matrix(lm: LanternModel, side: str) -> nn.Embedding:
    """The input embeddings of one side (the LSTM ties its output projection to the target side's)."""
    _check_side(side)
    return lm.source_embedding() if side == "source" else lm.target_embedding()


def _tokenizer(lm: LanternModel, side: str):
    return lm.src_tokenizer if side == "source" else lm.tgt_tokenizer


def _tokens(lm: LanternModel, side: str, ids: Sequence[int]) -> list[str]:
    return lm.source_tokens(list(ids)) if side == "source" else lm.target_tokens(list(ids))


def training_counts(lm: LanternModel, side: str) -> dict[str, int]:
    """Token -> occurrences in the training split, from the checkpoint's ``training_counts.json`` ({} if none)."""
    folder = getattr(lm.model.config, "name_or_path", "") or getattr(lm.model, "name_or_path", "")  # from_pretrained's
    if not folder:
        return {}
    path = Path(str(folder)) / TRAINING_COUNTS
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    counts = data.get(side, {}) if isinstance(data, dict) else {}
    return counts if isinstance(counts, dict) else {}


def _sample(lm: LanternModel, side: str, n: int, vocab: int) -> tuple[list[int], dict[int, int], str]:
    """(n ids, id -> training count, how they were chosen): the most frequent tokens in training where the model
    has counts, else the first ids (BPE and SentencePiece vocabularies list frequent pieces first), special and
    markup tokens left out."""
    special = set(_tokenizer(lm, side).all_special_ids)
    counts = training_counts(lm, side)
    by_id: dict[int, int] = {}
    if counts:
        ids = _tokenizer(lm, side).convert_tokens_to_ids(list(counts))
        by_id = {i: int(c) for i, c in zip(ids, counts.values(), strict=True) if i is not None and 0 <= i < vocab}
        ranked = sorted((i for i in by_id if i not in special), key=lambda i: (-by_id[i], i))
        return ranked[:n], by_id, f"the {min(n, len(ranked)):,} most frequent tokens in training"
    ranked: list[int] = []
    for first in range(0, vocab, 4 * n):  # SentencePiece vocabularies start with <unused…>, <0x..> and markup
        ids = [i for i in range(first, min(vocab, first + 4 * n)) if i not in special]
        ranked += [
            i
            for i, t in zip(ids, _tokenizer(lm, side).convert_ids_to_tokens(ids), strict=True)
            if not _MARKUP.fullmatch(t)
        ]
        if len(ranked) >= n:
            break
    ranked = ranked[:n]
    return ranked, by_id, f"the first {len(ranked):,} token ids (this model has no training counts; markup left out)"


def token_id(lm: LanternModel, side: str, token: str) -> int:
    """The id of a token given as shown (``京``, ``love``) or as stored (``▁love``); else ``InputError``."""
    _check_side(side)
    tok = _tokenizer(lm, side)
    vocab = tok.get_vocab()
    for form in (token, f"▁{token}", f"Ġ{token}"):
        if form in vocab:
            return int(vocab[form])
    ids = tok(token, add_special_tokens=False).input_ids
    if len(ids) == 1:
        return int(ids[0])
    pieces = ", ".join(_tokens(lm, side, ids)) or "nothing"
    raise InputError(f"{token!r} is not one token of the {side} vocabulary: it splits into {pieces}; pick one of those")


@under_policy
@torch.no_grad()
def embedding_projection(
    lm: LanternModel, side: str = "source", tokens: Sequence[str] | None = None, n: int = 1000
) -> EmbeddingProjection:
    """The first two principal components of ``n`` token embeddings of one side (the most frequent in training),
    with ``tokens`` (e.g. the current sentence's) added and highlighted; the axes are fitted on the sample."""
    _check_side(side)
    if family(lm) == "causal" and side == "target":
        side = "source"  # one vocabulary, one embedding matrix
    if not 2 <= n <= MAX_SAMPLE:
        raise InputError(f"n (tokens on the map) must be between 2 and {MAX_SAMPLE:,}, not {n}")
    with lm.lock:
        weight = embedding_matrix(lm, side).weight
    vocab = weight.shape[0]
    ids, counts, how = _sample(lm, side, n, vocab)
    asked = [token_id(lm, side, t) for t in dict.fromkeys(tokens or ())]
    all_ids = list(dict.fromkeys([*ids, *asked]))
    vectors = weight[torch.tensor(all_ids)].double()
    sample = vectors[: len(ids)]
    mean = sample.mean(0)
    # torch, not numpy: numpy's OpenBLAS picks its own threads, 100x slower on a shared 2-core machine (measured)
    _, singular, axes = torch.linalg.svd(sample - mean, full_matrices=False)
    coords = (vectors - mean) @ axes[:2].T  # [n, 2]
    signs = torch.sign(coords[: len(ids)].sum(0))  # a fixed orientation: the sample's bulk on the positive side
    coords = (coords * torch.where(signs == 0, 1.0, signs)).cpu().numpy()
    variance = (singular**2).cpu().numpy()
    return EmbeddingProjection(
        model=lm.name,
        side=side,
        tokens=tuple(_tokens(lm, side, all_ids)),
        ids=np.asarray(all_ids),
        coords=coords.astype(np.float32),
        counts=np.asarray([counts.get(i, -1) for i in all_ids]),
        highlighted=np.isin(all_ids, asked),
        explained=(variance[:2] / max(variance.sum(), 1e-12)).astype(np.float32),
        sample=how,
    )


@under_policy
@torch.no_grad()
def nearest_neighbours(lm: LanternModel, token: str, side: str = "source", k: int = 10) -> Neighbours:
    """The ``k`` tokens of one side's vocabulary whose embeddings have the highest cosine similarity with
    ``token``'s (itself and padding left out)."""
    _check_side(side)
    if not 1 <= k <= MAX_NEIGHBOURS:
        raise InputError(f"k must be between 1 and {MAX_NEIGHBOURS}, not {k}")
    index = token_id(lm, side, token)
    with lm.lock:
        weight = embedding_matrix(lm, side).weight
    matrix = weight.float()  # no copy for fp32 weights
    vector = matrix[index]
    sims = (matrix @ vector) / (torch.linalg.vector_norm(matrix, dim=1) * vector.norm()).clamp_min(1e-12)  # [vocab]
    sims[index] = -np.inf
    pad = _tokenizer(lm, side).pad_token_id
    if pad is not None and 0 <= pad < len(sims):
        sims[pad] = -np.inf
    top = sims.topk(min(k, len(sims) - 2))
    ids = top.indices.tolist()
    return Neighbours(
        model=lm.name,
        side=side,
        token=_tokens(lm, side, [index])[0],
        token_id=index,
        tokens=tuple(_tokens(lm, side, ids)),
        ids=np.asarray(ids),
        similarity=top.values.cpu().numpy().astype(np.float32),
    )
