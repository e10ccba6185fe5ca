"""Speed of the prompted pretrained models against Lantern's own, at 1 and 2 torch threads, in one run.

What a person waits for on the pages: one sentence translated (greedy), and its Integrated Gradients attribution
(32 steps, every output token). Gemma 3 270M reads its three-pair prompt (~65 tokens) before the sentence, so it
is measured beside the shipped LSTM and Transformer on the same sentences.

    python -m bench.pretrained                      # -> bench/pretrained.md
    python -m bench.pretrained --models gemma-3-270m-zh-en lstm-zh-en --sentences 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import date
from pathlib import Path

from bench.attribution import machine
from explain.attribution import attribute
from explain.generation import translate
from models.loading import load_model
from models.threads import configure

SENTENCES = ["我爱北京天安门", "我们明天去北京。", "他每天早上跑步。", "这本书是我朋友写的。", "你知道她住在哪儿吗？"]


def measure(model: str, texts: list[str], threads: int) -> dict[str, float]:
    configure(fixed=threads)
    lm = load_model(model)
    translate(lm, texts[0])  # warm-up: first-call allocations
    gen, tokens, attr = [], 0, []
    for text in texts:
        start = time.perf_counter()
        tr = translate(lm, text)
        gen.append(time.perf_counter() - start)
        tokens += len(tr.tgt_ids)
        start = time.perf_counter()
        attribute(lm, tr, "integrated_gradients", n_steps=32)
        attr.append(time.perf_counter() - start)
    return {
        "translate_s": statistics.median(gen),
        "tokens_per_s": tokens / sum(gen),
        "ig_s": statistics.median(attr),
        "prompt_tokens": len(lm.encode_source(texts[0]).ids),
    }


def table(models: list[str], texts: list[str]) -> list[str]:
    rows = [
        "| model | prompt tokens | threads | translate one sentence (median s) | output tokens/s "
        "| IG, 32 steps (median s) |"
        " 2 threads ÷ 1 thread (translate, IG) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in models:
        one, two = measure(name, texts, 1), measure(name, texts, 2)
        for threads, m in ((1, one), (2, two)):
            ratio = (
                f"{two['translate_s'] / one['translate_s']:.2f}, {two['ig_s'] / one['ig_s']:.2f}"
                if threads == 2
                else ""
            )
            rows.append(
                f"| {name} | {m['prompt_tokens']} | {threads} | {m['translate_s']:.2f} | {m['tokens_per_s']:.1f} | "
                f"{m['ig_s']:.2f} | {ratio} |"
            )
        print(rows[-2], rows[-1], sep="\n", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.pretrained", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["gemma-3-270m-zh-en", "lstm-zh-en", "transformer-zh-en"])
    p.add_argument("--sentences", type=int, default=len(SENTENCES))
    p.add_argument("--out", type=Path, default=Path(__file__).with_name("pretrained.md"))
    args = p.parse_args(argv)
    texts = SENTENCES[: max(1, args.sentences)]
    rows = table(args.models, texts)
    head = [
        "# Prompted pretrained models against Lantern's own: speed",
        "",
        f"`python -m bench.pretrained`, {date.today()}, {machine()}. Sentences: {', '.join(texts)} (zh→en). "
        "Each model at 1 then 2 torch threads (`LANTERN_THREADS`-style fixed count); medians over the sentences.",
        "",
    ]
    text = "\n".join([*head, *rows, ""])
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
