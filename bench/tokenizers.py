"""Compare tokenizer kinds on a corpus split: trained on train, measured on val.

    python -m bench.tokenizers --corpus tatoeba-en-zh --src zh --tgt en

Prints, per side and kind, the vocabulary size, unknown tokens per 100 tokens, the share of
validation sentences with an unknown, and tokens per sentence (sequence length drives LSTM cost).
"""

from __future__ import annotations

import argparse
import time

from training.corpora import load_splits
from training.tokenization import tokenizer_stats, train_tokenizer

CANDIDATES = [("char", 0, 1), ("word", 8000, 2), ("bpe", 4000, 2), ("bpe", 8000, 2)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default="tatoeba-en-zh")
    ap.add_argument("--src", default="zh")
    ap.add_argument("--tgt", default="en")
    args = ap.parse_args()
    splits = load_splits(args.corpus, args.src, args.tgt)
    print(f"{args.corpus} {args.src}->{args.tgt}, sizes {splits.sizes()}")
    header = "| side | kind | vocab budget | vocab | unk/100 tok | val sents with unk % | tok/sent | train s |"
    print(header)
    print("|---|---|---|---|---|---|---|---|")
    for side, lang in (("src", args.src), ("tgt", args.tgt)):
        train = [getattr(p, side) for p in splits.train]
        val = [getattr(p, side) for p in splits.val]
        for kind, size, min_freq in CANDIDATES:
            t0 = time.perf_counter()
            tok = train_tokenizer(train, kind, vocab_size=size or 100_000, min_frequency=min_freq)
            secs = time.perf_counter() - t0
            s = tokenizer_stats(tok, val)
            print(
                f"| {lang} | {kind} | {size or 'all'} | {s['vocab']} | {s['unk_per_100_tokens']:.2f} "
                f"| {s['sentences_with_unk_pct']:.1f} | {s['tokens_per_sentence']:.1f} | {secs:.1f} |"
            )


if __name__ == "__main__":
    main()
