"""Encoding parallel text, length-bucketed batches and padding."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from training.corpora import Pair


@dataclass(frozen=True)
class Example:
    src_ids: list[int]
    tgt_ids: list[int]  # ends with EOS


def encode_pairs(
    pairs: Sequence[Pair],
    src_tok: PreTrainedTokenizerBase,
    tgt_tok: PreTrainedTokenizerBase,
    max_tokens: int,
) -> tuple[list[Example], int]:
    """Tokenize pairs; drop those longer than ``max_tokens`` on either side. Returns (kept, dropped)."""
    src = src_tok([p.src for p in pairs]).input_ids
    tgt = tgt_tok([p.tgt for p in pairs]).input_ids
    kept = [
        Example(s, t) for s, t in zip(src, tgt, strict=True) if 0 < len(s) <= max_tokens and 0 < len(t) <= max_tokens
    ]
    return kept, len(pairs) - len(kept)


def bucket_batches(examples: Sequence[Example], batch_size: int, seed: int, pool: int = 50) -> list[list[int]]:
    """Indices grouped into batches of similar length, in a shuffled order fixed by ``seed``.

    Shuffle, cut into pools of ``pool * batch_size``, sort each pool by length, cut into batches,
    shuffle the batches: little padding, and still a different mix every epoch.
    """
    rng = random.Random(seed)
    order = list(range(len(examples)))
    rng.shuffle(order)
    batches = []
    span = pool * batch_size
    for start in range(0, len(order), span):
        chunk = sorted(
            order[start : start + span],
            key=lambda i: (len(examples[i].src_ids), len(examples[i].tgt_ids)),
        )
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def pad(seqs: Sequence[Sequence[int]], value: int) -> torch.Tensor:
    """Right-pad to the longest sequence -> [batch, max_len]."""
    width = max(len(s) for s in seqs)
    out = torch.full((len(seqs), width), value, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return out


def collate(examples: Sequence[Example], pad_id: int, start_id: int = 1) -> dict[str, torch.Tensor]:
    """Model inputs for one batch: input_ids, attention_mask [B, S]; decoder_input_ids, labels [B, T].

    ``decoder_input_ids`` is the target shifted right behind ``start_id`` (teacher forcing);
    ``labels`` is the target with padding as -100 (ignored by the loss).
    """
    input_ids = pad([e.src_ids for e in examples], pad_id)
    labels = pad([e.tgt_ids for e in examples], -100)
    decoder_input_ids = pad([[start_id, *e.tgt_ids[:-1]] for e in examples], pad_id)
    return {
        "input_ids": input_ids,
        "attention_mask": input_ids.ne(pad_id).long(),
        "decoder_input_ids": decoder_input_ids,
        "labels": labels,
    }


def iterate(
    examples: Sequence[Example], batches: list[list[int]], pad_id: int, start: int = 0
) -> Iterator[dict[str, torch.Tensor]]:
    """Collated batches from position ``start`` (to resume mid-epoch)."""
    for idx in batches[start:]:
        yield collate([examples[i] for i in idx], pad_id)
