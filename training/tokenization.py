"""Tokenizers trained with the `tokenizers` library, wrapped as transformers fast tokenizers.

Three kinds, chosen per language by measurement (``python -m bench.tokenizers``):

- ``char``: every character is a token (spaces become ``▁`` tokens so text round-trips).
- ``bpe``: SentencePiece-style BPE: ``▁`` marks a word start, punctuation is split off.
- ``word``: whole words (and punctuation) from a fixed vocabulary; the rest is ``<unk>``.

Source tokenizers add no special tokens; target tokenizers append ``</s>`` (Marian's convention),
so ``labels = tgt_tokenizer(text).input_ids`` ends with EOS.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from tokenizers.processors import TemplateProcessing
from transformers import PreTrainedTokenizerFast

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
SPECIALS = [PAD, BOS, EOS, UNK]  # ids 0, 1, 2, 3 in every Lantern tokenizer
KINDS = ("char", "bpe", "word")


def _pre_tokenizer(kind: str) -> pre_tokenizers.PreTokenizer:
    if kind == "char":
        return pre_tokenizers.Sequence(
            [
                pre_tokenizers.Metaspace(prepend_scheme="never", split=False),
                pre_tokenizers.Split(Regex("."), behavior="isolated"),
            ]
        )
    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(prepend_scheme="always", split=True),
            pre_tokenizers.Punctuation(behavior="isolated"),
        ]
    )


def train_tokenizer(
    texts: Iterable[str],
    kind: str,
    vocab_size: int = 8000,
    min_frequency: int = 1,
    add_eos: bool = False,
) -> PreTrainedTokenizerFast:
    """Train a tokenizer of ``kind`` on ``texts`` (already cleaned)."""
    if kind not in KINDS:
        raise ValueError(f"unknown tokenizer kind {kind!r}; choose one of {', '.join(KINDS)}")
    if kind == "bpe":
        model = models.BPE(unk_token=UNK)
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIALS, show_progress=False
        )
    else:
        model = models.WordLevel(unk_token=UNK)
        trainer = trainers.WordLevelTrainer(
            vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIALS, show_progress=False
        )
    tok = Tokenizer(model)
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = _pre_tokenizer(kind)
    tok.decoder = decoders.Metaspace(prepend_scheme="never" if kind == "char" else "always")
    tok.train_from_iterator(list(texts), trainer=trainer)
    if add_eos:
        eos_id = tok.token_to_id(EOS)
        tok.post_processor = TemplateProcessing(
            single=f"$A {EOS}", pair=f"$A {EOS} $B {EOS}", special_tokens=[(EOS, eos_id)]
        )
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, bos_token=BOS, eos_token=EOS, unk_token=UNK)


def tokenizer_stats(tokenizer: PreTrainedTokenizerFast, texts: Sequence[str]) -> dict[str, float]:
    """Vocabulary size, unknown-token rate, sentences with an unknown, tokens per sentence."""
    unk = tokenizer.unk_token_id
    ids = tokenizer(list(texts), add_special_tokens=False).input_ids
    n_tokens = sum(len(x) for x in ids)
    n_unk = sum(x.count(unk) for x in ids)
    return {
        "vocab": len(tokenizer),
        "unk_per_100_tokens": 100 * n_unk / max(n_tokens, 1),
        "sentences_with_unk_pct": 100 * sum(unk in x for x in ids) / max(len(ids), 1),
        "tokens_per_sentence": n_tokens / max(len(ids), 1),
        "max_tokens": max((len(x) for x in ids), default=0),
    }


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, path: str | Path) -> None:
    tokenizer.save_pretrained(str(path))


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast.from_pretrained(str(path))
