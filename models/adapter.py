"""One interface over every model Lantern shows: ``LanternModel``.

It owns the model and its tokenizers and offers the low-level operations the explanation code
needs (encode a source, generate target ids, a teacher-forced pass). Encoder-decoders read a
source and write a target; for decoder-only models the "source" is the prompt and the "target"
the continuation, so every explain function has one signature. A LanternModel is shared between
app sessions and never mutated: no hooks left behind, no swapped modules, eval mode from load.
"""

from __future__ import annotations

import inspect
import threading
from dataclasses import dataclass, field

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import ModelOutput
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from common.text import clean_text
from models.decoding import Decoding, InputError, check_length
from models.prompting import FewShot
from models.threads import under_policy


@dataclass(frozen=True)
class SourceEncoding:
    text: str  # the cleaned text the model sees
    ids: list[int]  # after truncation (and, for chat models, inside the chat template)
    n_tokens: int  # tokens of the text before truncation
    unknown: tuple[str, ...]  # source substrings mapped to the unknown token
    kept_tokens: int = 0  # tokens of the text kept after truncation
    span: tuple[int, int] | None = None  # ids[span[0]:span[1]] are the text's own tokens inside a prompt template

    @property
    def truncated(self) -> bool:
        return self.n_tokens > self.kept_tokens


@dataclass(frozen=True, eq=False)
class LanternModel:
    """A loaded model and its tokenizers.

    ``lock`` serialises every forward pass: explanation code may hook the embedding modules for
    the duration of one call, and no other session's pass may run while such a hook is in place.
    ``chat``: wrap a decoder-only model's input in its chat template.
    ``template``: a base decoder-only model prompted to translate (``models.prompting``): the source text goes
    into the few-shot prompt, and an output ends at the end of its line (``stop_ids``) instead of at EOS.
    """

    name: str
    model: PreTrainedModel
    src_tokenizer: PreTrainedTokenizerBase
    tgt_tokenizer: PreTrainedTokenizerBase
    max_source_tokens: int = 128
    chat: bool = False
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    template: FewShot | None = None
    stop_ids: tuple[int, ...] = ()  # ids that end an output besides EOS (a prompted model's line breaks)

    @property
    def end_id(self) -> int:
        """The id an output ends with: EOS, or for a prompted model the blank line that ends a pair."""
        if self.template is not None:
            ids = self.tgt_tokenizer(self.template.end, add_special_tokens=False).input_ids
            if len(ids) == 1:
                return ids[0]
        return self.tgt_tokenizer.eos_token_id

    def stops(self) -> list[int]:
        """Every id that ends generation."""
        return list(dict.fromkeys([self.tgt_tokenizer.eos_token_id, self.end_id, *self.stop_ids]))

    def cut(self, ids: list[int]) -> list[int]:
        """``ids`` up to and including the first id that ends an output."""
        stops = set(self.stops())
        end = next((i for i, t in enumerate(ids) if t in stops), None)
        return ids if end is None else ids[: end + 1]

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def is_seq2seq(self) -> bool:
        return bool(self.model.config.is_encoder_decoder)

    def source_embedding(self) -> nn.Module:
        """The embedding module of the source (prompt) side: what attribution methods hook."""
        return self.model.get_encoder().embed_tokens if self.is_seq2seq() else self.model.get_input_embeddings()

    def target_embedding(self) -> nn.Module:
        """The embedding module of the decoder's inputs (the target prefix); for decoder-only, the same."""
        return self.model.get_decoder().embed_tokens if self.is_seq2seq() else self.model.get_input_embeddings()

    def decoder_inputs(self, tgt_ids: list[int]) -> list[int]:
        """What the model reads on the target side to predict ``tgt_ids`` (teacher forcing).

        Encoder-decoder: the start token, then all but the last target token. Decoder-only: all but
        the last target token, after the prompt.
        """
        if self.is_seq2seq():
            return [self.model.config.decoder_start_token_id, *tgt_ids[:-1]]
        return list(tgt_ids[:-1])

    def encode_source(self, text: str) -> SourceEncoding:
        """Clean, tokenize and truncate a source text (or prompt); report unknown characters."""
        cleaned = clean_text(check_length(text, "text"))
        if not cleaned:
            raise InputError("the text is empty (or only spaces and invisible characters)")
        tok = self.src_tokenizer
        enc = tok(cleaned, return_offsets_mapping=True, add_special_tokens=self.is_seq2seq())
        ids = list(enc.input_ids)
        unk = tok.unk_token_id
        unknown = (
            tuple(dict.fromkeys(cleaned[s:e] for i, (s, e) in zip(ids, enc.offset_mapping, strict=True) if i == unk))
            if unk is not None
            else ()
        )
        kept = ids[: self.max_source_tokens]
        if self.is_seq2seq():
            if len(ids) > len(kept) and ids[-1] == tok.eos_token_id:  # keep the tokenizer's closing EOS
                kept[-1] = tok.eos_token_id
            return SourceEncoding(cleaned, kept, len(ids), unknown, len(kept))
        if len(kept) < len(ids):
            cleaned = tok.decode(kept)
        if self.template is not None:
            return self._prompted(cleaned, len(ids), unknown, len(kept))
        if self.chat:
            messages = [{"role": "user", "content": cleaned}]
            templated = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
            kept_ids = list(templated["input_ids"])
        else:
            kept_ids = kept
        return SourceEncoding(cleaned, kept_ids, len(ids), unknown, len(kept))

    def _prompted(self, text: str, n_tokens: int, unknown: tuple[str, ...], kept: int) -> SourceEncoding:
        """The few-shot prompt around ``text``, tokenized as one string (as the model reads it), and the tokens
        that overlap ``text``'s characters."""
        prompt, first, end = self.template.render(text)
        enc = self.src_tokenizer(prompt, return_offsets_mapping=True, add_special_tokens=True)
        inside = [i for i, (s, e) in enumerate(enc.offset_mapping) if e > s and s < end and e > first]
        span = (inside[0], inside[-1] + 1) if inside else None
        return SourceEncoding(text, list(enc.input_ids), n_tokens, unknown, kept, span)

    def output_ids(self, text: str) -> list[int]:
        """An output text as the model would write it, ending with the id that ends an output."""
        prefix = self.template.output_prefix if self.template is not None else ""
        ids = list(self.tgt_tokenizer(prefix + text, add_special_tokens=self.is_seq2seq()).input_ids)
        if not ids or ids[-1] != self.end_id:
            ids.append(self.end_id)
        return ids

    def _batch(self, ids: list[int]) -> dict[str, torch.Tensor]:
        input_ids = torch.tensor([ids], device=self.device)
        return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}

    @under_policy
    def generate_ids(self, src_ids: list[int], decoding: Decoding, prefix: list[int] | None = None) -> list[int]:
        """Generated ids (no start token, no prompt), ending in EOS unless the limit cut them.

        ``prefix``: target tokens forced first; decoding continues from them (what-if decoding).
        """
        eos = self.tgt_tokenizer.eos_token_id
        prefix = list(prefix or [])
        if set(prefix) & set(self.stops()):
            return self.cut(prefix)
        if len(prefix) >= decoding.max_new_tokens:
            return prefix[: decoding.max_new_tokens]
        batch = self._batch(src_ids + ([] if self.is_seq2seq() else prefix))
        if self.is_seq2seq():
            start = [self.model.config.decoder_start_token_id]
            batch["decoder_input_ids"] = torch.tensor([start + prefix], device=self.device)
        kwargs = decoding.generate_kwargs()
        kwargs["max_new_tokens"] = decoding.max_new_tokens - len(prefix)
        with torch.no_grad(), self.lock:
            if decoding.do_sample:
                torch.manual_seed(decoding.seed)  # under the lock: the same seed gives the same sample
            out = self.model.generate(
                **batch, pad_token_id=self.tgt_tokenizer.pad_token_id or eos, eos_token_id=self.stops(), **kwargs
            )
        out = out[0].tolist()
        out = out[1:] if self.is_seq2seq() else out[len(src_ids) :]
        return self.cut(out)

    @under_policy
    def generate_nbest(self, src_ids: list[int], decoding: Decoding, n: int) -> list[tuple[list[int], float]]:
        """The ``n`` best beam-search hypotheses (ids as ``generate_ids`` returns them) with their beam scores.

        The beam score is the sum of token log-probabilities divided by length ** length_penalty.
        """
        if not 1 <= n <= decoding.num_beams:
            raise InputError(f"n-best must be between 1 and the beam size ({decoding.num_beams}), not {n}")
        eos = self.tgt_tokenizer.eos_token_id
        kwargs = {**decoding.generate_kwargs(), "num_return_sequences": n}
        with torch.no_grad(), self.lock:
            out = self.model.generate(
                **self._batch(src_ids),
                pad_token_id=self.tgt_tokenizer.pad_token_id or eos,
                eos_token_id=self.stops(),
                output_scores=True,
                return_dict_in_generate=True,
                **kwargs,
            )
        result = []
        for seq, score in zip(out.sequences.tolist(), out.sequences_scores.tolist(), strict=True):
            seq = seq[1:] if self.is_seq2seq() else seq[len(src_ids) :]
            ended = set(seq) & set(self.stops())
            seq = self.cut(seq) if ended else [t for t in seq if t != self.tgt_tokenizer.pad_token_id]
            result.append((seq, float(score)))
        return result

    @under_policy
    def score(self, src_ids: list[int], tgt_ids: list[int], output_attentions: bool = False) -> ModelOutput:
        """One teacher-forced pass: ``logits`` [1, T, V] for the T target tokens, attentions if asked.

        Decoder-only: the pass reads prompt + target[:-1]; ``attentions`` cover all those positions.
        """
        dec = self.decoder_inputs(tgt_ids)
        with self.lock:
            if self.is_seq2seq():
                return self.model(
                    **self._batch(src_ids),
                    decoder_input_ids=torch.tensor([dec], device=self.device),
                    output_attentions=output_attentions,
                    return_dict=True,
                )
            kwargs = {"logits_to_keep": len(tgt_ids)} if self._keeps_logits() else {}  # not the prompt's [S, vocab]
            out = self.model(
                **self._batch([*src_ids, *dec]), output_attentions=output_attentions, return_dict=True, **kwargs
            )
        out["logits"] = out.logits[:, -len(tgt_ids) :]
        return out

    def _keeps_logits(self) -> bool:
        """Whether the model's forward can project only the last positions onto the vocabulary."""
        return "logits_to_keep" in inspect.signature(self.model.forward).parameters

    def target_tokens(self, ids: list[int]) -> list[str]:
        return token_strings(self.tgt_tokenizer, ids)

    def source_tokens(self, ids: list[int]) -> list[str]:
        return token_strings(self.src_tokenizer, ids)

    def decode(self, tgt_ids: list[int]) -> str:
        text = self.tgt_tokenizer.decode(tgt_ids, skip_special_tokens=True)
        return text.strip() if self.template is not None else text


def token_strings(tokenizer: PreTrainedTokenizerBase, ids: list[int]) -> list[str]:
    """Token strings for display and word merging.

    Byte-level BPE (GPT-2, Llama 3, SmolLM2) stores bytes as stand-in characters, so non-ASCII text
    shows as mojibake (``Ã¨``); each id is decoded on its own instead, and a leading space becomes
    the word-start marker ``Ġ`` again.
    """
    raw = tokenizer.convert_ids_to_tokens(ids)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or type(backend.decoder).__name__ != "ByteLevel":
        return raw
    special = set(tokenizer.all_special_ids)
    out = []
    for i, token in zip(ids, raw, strict=True):
        if i in special:
            out.append(token)
            continue
        text = tokenizer.decode([i])
        out.append("Ġ" + text[1:] if text.startswith(" ") else text)
    return out
