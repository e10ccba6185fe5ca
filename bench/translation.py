"""Corpus translation speed of every shipped model: the decoder re-reading the whole prefix at each step
(``use_cache=False``, what Lantern's LSTM did before it carried its state) against incremental decoding
(the LSTM's ``LstmDecoderCache``, Marian's key/value cache), side by side in one run, with a check that
both give the same translations.

    python -m bench.translation                      # every shipped model, its whole test split, beam 5
    python -m bench.translation --models lstm-en-de --sentences 200 --beams 1

Marian (Lantern's Transformers) always decoded with its key/value cache, so for them "before" is the
uncached run for reference, not an earlier Lantern.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

from bench.attribution import machine
from models.loading import load_model
from models.registry import list_models
from training.corpora import load_splits
from training.scoring import translate_texts

CORPORA = {  # the test split each shipped model's card scores on
    "zh": ("tatoeba-en-zh", "zh", "en"),
    "fr": ("tatoeba-en-fr", "en", "fr"),
    "de": ("multi30k-en-de", "en", "de"),
}


def test_sources(model: str) -> list[str]:
    spec = next(s for s in list_models() if s.name == model)
    pair = spec.tgt_lang if spec.src_lang == "en" else spec.src_lang
    corpus, src, tgt = CORPORA[pair]
    return [p.src for p in load_splits(corpus, src, tgt).test]


def translate_all(model: str, texts: list[str], beams: int, use_cache: bool) -> tuple[list[str], float]:
    lm = load_model(model)
    generate = lm.model.generate

    def run(*args: object, **kwargs: object):  # what translate_texts calls, with the cache switched
        return generate(*args, **{**kwargs, "use_cache": use_cache})

    lm.model.generate = run  # a private instance: nothing else uses this model
    start = time.perf_counter()
    hyps = translate_texts(lm.model, lm.src_tokenizer, lm.tgt_tokenizer, texts, num_beams=beams)
    return hyps, time.perf_counter() - start


def table(models: list[str], sentences: int, beams: int) -> list[str]:
    rows = [
        "| model | sentences | beams | re-reading the prefix (s) | incremental (s) | speed-up | identical outputs |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in models:
        texts = test_sources(name)[:sentences]
        before, t_before = translate_all(name, texts, beams, use_cache=False)
        after, t_after = translate_all(name, texts, beams, use_cache=True)
        same = sum(a == b for a, b in zip(before, after, strict=True))
        rows.append(
            f"| {name} | {len(texts)} | {beams} | {t_before:.1f} | {t_after:.1f} | {t_before / t_after:.1f}× "
            f"| {same}/{len(texts)} |"
        )
        print(rows[-1], flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    """Print the table and write it, with the date, the machine and the command, to bench/translation.md."""
    ap = argparse.ArgumentParser(prog="python -m bench.translation", description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", help="comma-separated model names (default: every shipped checkpoint)")
    ap.add_argument("--sentences", type=int, default=1000, help="first N test sentences (default: %(default)s)")
    ap.add_argument("--beams", type=int, default=5, help="beam size, as the cards' test scores (default: 5)")
    args = ap.parse_args(argv)
    models = args.models.split(",") if args.models else [s.name for s in list_models() if s.kind == "checkpoint"]
    header = [
        f"# Corpus translation, {date.today().isoformat()}",
        "",
        f"Machine: {machine()}. Command: `python -m bench.translation "
        + " ".join(argv if argv is not None else sys.argv[1:])
        + "`. Seconds to translate the test split (length-sorted batches of 100, as the cards' scores).",
        "",
    ]
    print("\n".join(header), flush=True)
    rows = table(models, args.sentences, args.beams)
    (Path(__file__).parent / "translation.md").write_text("\n".join([*header, *rows, ""]), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
