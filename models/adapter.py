"""One interface over every model Lantern shows: ``LanternModel``.

It owns the model and its tokenizers and offers the low-level operations the explanation code
needs (encode a source, generate target ids, a teacher-forced pass). It is shared between app
sessions and never mutated: no hooks left behind, no swapped modules, eval mode from load.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import ModelOutput
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from models.data import clean_text


class InputError(ValueError):
    """The input text cannot be used as it is (empty after cleaning, ...)."""


@dataclass(frozen=True)
class SourceEncoding:
    text: str  # the cleaned text the model sees
    ids: list[int]  # after truncation
    n_tokens: int  # before truncation
    unknown: tuple[str, ...]  # source substrings mapped to the unknown token

    @property
    def truncated(self) -> bool:
        return self.n_tokens > len(self.ids)


@dataclass(frozen=True)
class Decoding:
    """How to generate: greedy (num_beams=1) or beam search."""

    num_beams: int = 1
    max_new_tokens: int = 64
    length_penalty: float = 1.0

    def __post_init__(self) -> None:
        if not 1 <= self.num_beams <= 16:
            raise InputError(f"num_beams must be between 1 and 16, not {self.num_beams}")
        if not 1 <= self.max_new_tokens <= 512:
            raise InputError(f"max_new_tokens must be between 1 and 512, not {self.max_new_tokens}")


@dataclass(frozen=True, eq=False)
class LanternModel:
    """A loaded model and its tokenizers.

    ``lock`` serialises every forward pass: explanation code may hook the embedding modules for
    the duration of one call, and no other session's pass may run while such a hook is in place.
    """

    name: str
    model: PreTrainedModel
    src_tokenizer: PreTrainedTokenizerBase
    tgt_tokenizer: PreTrainedTokenizerBase
    max_source_tokens: int = 128
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def is_seq2seq(self) -> bool:
        return bool(self.model.config.is_encoder_decoder)

    def source_embedding(self) -> nn.Module:
        """The embedding module of the source side (what attribution methods hook)."""
        return self.model.get_encoder().embed_tokens

    def target_embedding(self) -> nn.Module:
        """The embedding module of the decoder's inputs (the target prefix)."""
        return self.model.get_decoder().embed_tokens

    def encode_source(self, text: str) -> SourceEncoding:
        """Clean, tokenize and truncate a source text; report unknown characters."""
        cleaned = clean_text(text)
        if not cleaned:
            raise InputError("the text is empty (or only spaces and invisible characters)")
        enc = self.src_tokenizer(cleaned, return_offsets_mapping=True)
        ids = list(enc.input_ids)
        unk = self.src_tokenizer.unk_token_id
        unknown = tuple(
            dict.fromkeys(cleaned[s:e] for i, (s, e) in zip(ids, enc.offset_mapping, strict=True) if i == unk)
        )
        kept = ids[: self.max_source_tokens]
        eos = self.src_tokenizer.eos_token_id
        if len(ids) > len(kept) and ids[-1] == eos:  # keep the tokenizer's closing EOS, if any
            kept[-1] = eos
        return SourceEncoding(cleaned, kept, len(ids), unknown)

    def _batch(self, src_ids: list[int]) -> dict[str, torch.Tensor]:
        input_ids = torch.tensor([src_ids], device=self.device)
        return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}

    @torch.no_grad()
    def generate_ids(self, src_ids: list[int], decoding: Decoding) -> list[int]:
        """Target ids (without the decoder start token; ending in EOS unless cut by the limit)."""
        with self.lock:
            out = self.model.generate(
                **self._batch(src_ids),
                num_beams=decoding.num_beams,
                do_sample=False,
                max_new_tokens=decoding.max_new_tokens,
                length_penalty=decoding.length_penalty,
            )[0].tolist()
        start = self.model.config.decoder_start_token_id
        if out and out[0] == start:
            out = out[1:]
        eos = self.tgt_tokenizer.eos_token_id
        return out[: out.index(eos) + 1] if eos in out else out

    def score(self, src_ids: list[int], tgt_ids: list[int], output_attentions: bool = False) -> ModelOutput:
        """One teacher-forced pass over (source, target): logits [1, T, V], attentions if asked."""
        start = self.model.config.decoder_start_token_id
        decoder_input_ids = torch.tensor([[start, *tgt_ids[:-1]]], device=self.device)
        with self.lock:
            return self.model(
                **self._batch(src_ids),
                decoder_input_ids=decoder_input_ids,
                output_attentions=output_attentions,
                return_dict=True,
            )

    def target_tokens(self, ids: list[int]) -> list[str]:
        return self.tgt_tokenizer.convert_ids_to_tokens(ids)

    def source_tokens(self, ids: list[int]) -> list[str]:
        return self.src_tokenizer.convert_ids_to_tokens(ids)

    def decode(self, tgt_ids: list[int]) -> str:
        return self.tgt_tokenizer.decode(tgt_ids, skip_special_tokens=True)
