"""Granularity: merge subword scores into words (numpy only).

Word starts are recognised for SentencePiece/Metaspace (``▁``), byte-level BPE (``Ġ``) and WordPiece
(continuations start with ``##``); every CJK character, punctuation token and special token is a
word of its own.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Sequence

import numpy as np

from explain.types import Attribution

AGGREGATIONS = ("sum", "mean", "max", "l2")
SPECIAL = ("<s>", "</s>", "<pad>", "<unk>", "<|endoftext|>", "<|im_start|>", "<|im_end|>", "[CLS]", "[SEP]")


def _is_cjk(ch: str) -> bool:
    return unicodedata.category(ch) == "Lo" and (
        "\u3400" <= ch <= "\u9fff"
        or "\uf900" <= ch <= "\ufaff"
        or "\U00020000" <= ch <= "\U0003134f"
        or "\u3040" <= ch <= "\u30ff"
    )


def _is_punct(token: str) -> bool:
    core = token.lstrip("▁Ġ")
    return bool(core) and all(unicodedata.category(c).startswith("P") for c in core)


def word_spans(tokens: Sequence[str]) -> list[tuple[int, int]]:
    """[start, end) token spans of words.

    WordPiece marks continuations (``##``); SentencePiece and byte-level BPE mark word starts
    (``▁``, ``Ġ``); tokens with neither (characters, whole words) are words of their own.
    """
    wordpiece = any(t.startswith("##") for t in tokens)
    marked = not wordpiece and any(t.startswith(("▁", "Ġ")) for t in tokens)
    spans: list[tuple[int, int]] = []
    for i, tok in enumerate(tokens):
        prev = tokens[i - 1] if i else ""
        if wordpiece:
            starts = not tok.startswith("##")
        elif marked:
            starts = tok.startswith(("▁", "Ġ")) or _is_cjk_char(tok) or _is_cjk_char(prev)
        else:
            starts = True
        starts = starts or not spans or tok in SPECIAL or prev in SPECIAL or _is_punct(tok) or _is_punct(prev)
        if starts:
            spans.append((i, i + 1))
        else:
            spans[-1] = (spans[-1][0], i + 1)
    return spans


def _is_cjk_char(token: str) -> bool:
    core = token.lstrip("▁Ġ")
    return len(core) == 1 and _is_cjk(core)


def word_text(tokens: Sequence[str], span: tuple[int, int]) -> str:
    parts = [t[2:] if t.startswith("##") else t for t in tokens[span[0] : span[1]]]
    return "".join(parts).replace("▁", "").replace("Ġ", "").strip() or "".join(parts)


def _merge(values: np.ndarray, spans: list[tuple[int, int]], axis: int, how: str) -> np.ndarray:
    if how not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {how!r}; choose one of {', '.join(AGGREGATIONS)}")
    parts = []
    for a, b in spans:
        block = np.take(values, range(a, b), axis=axis)
        if how == "sum":
            parts.append(block.sum(axis=axis))
        elif how == "mean":
            parts.append(block.mean(axis=axis))
        elif how == "max":  # the largest in magnitude, sign kept
            idx = np.abs(block).argmax(axis=axis)
            parts.append(np.take_along_axis(block, np.expand_dims(idx, axis), axis).squeeze(axis))
        else:
            parts.append(np.sqrt((block**2).sum(axis=axis)))
    return np.stack(parts, axis=axis)


def merge_subwords(attr: Attribution, how: str = "sum", targets: bool = True) -> Attribution:
    """Scores per word instead of per token; ``targets`` also merges output rows (sum of a word's steps)."""
    src_spans = word_spans(attr.src_tokens)
    scores = _merge(attr.scores, src_spans, axis=1, how=how)
    prefix = attr.prefix_scores
    tgt_tokens, prefix_tokens = attr.tgt_tokens, attr.prefix_tokens
    logp, ent, delta, steps = attr.step_logprobs, attr.step_entropy, attr.delta, attr.steps
    if prefix is not None:
        prefix = _merge(prefix, word_spans(prefix_tokens), axis=1, how=how)
        prefix_tokens = tuple(word_text(attr.prefix_tokens, s) for s in word_spans(attr.prefix_tokens))
    if targets and not steps:  # a word's score is explained by all of its steps together
        tgt_spans = word_spans(attr.tgt_tokens)
        scores = _merge(scores, tgt_spans, axis=0, how="sum")
        prefix = None if prefix is None else _merge(prefix, tgt_spans, axis=0, how="sum")
        logp = _merge(logp, tgt_spans, axis=0, how="sum")
        ent = _merge(ent, tgt_spans, axis=0, how="max")
        delta = None if delta is None else _merge(delta, tgt_spans, axis=0, how="sum")
        tgt_tokens = tuple(word_text(attr.tgt_tokens, s) for s in tgt_spans)
    return dataclasses.replace(
        attr,
        src_tokens=tuple(word_text(attr.src_tokens, s) for s in src_spans),
        tgt_tokens=tgt_tokens,
        prefix_tokens=prefix_tokens,
        scores=scores.astype(np.float32),
        prefix_scores=None if prefix is None else prefix.astype(np.float32),
        step_logprobs=logp,
        step_entropy=ent,
        delta=delta,
        params=(*attr.params, ("granularity", f"word/{how}")),
        src_span=_word_span(src_spans, attr.src_span),
    )


def _word_span(spans: list[tuple[int, int]], span: tuple[int, int] | None) -> tuple[int, int] | None:
    """A token span as a span of the words that overlap it."""
    if span is None:
        return None
    inside = [i for i, (a, b) in enumerate(spans) if a < span[1] and b > span[0]]
    return (inside[0], inside[-1] + 1) if inside else None
