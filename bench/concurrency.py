"""How long a second user's short request waits while a long attribution runs on the same model.

    python -m bench.concurrency                         # SmolLM2 and transformer-en-de; writes bench/concurrency.md
    python -m bench.concurrency --models transformer-en-de

One thread runs integrated gradients over every output token of a long sentence (64 steps and 32 output tokens,
32 steps and 8 tokens for decoder-only models); one second in,
another thread translates a short sentence with the same shared model. "Before" holds the model's lock for
the whole attribution, as Lantern did until the lock was narrowed to each batched forward pass ("after"). The
short request's seconds alone are measured first, for reference.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from datetime import date
from pathlib import Path

from bench.attribution import machine
from bench.memory import SOURCES
from explain.attribution import attribute
from explain.generation import translate
from models.adapter import Decoding
from models.loading import load_model
from models.registry import get_spec

SHORT = {"zh": "你好。", "en": "A dog runs."}


def short_request_seconds(lm, text: str) -> float:
    start = time.perf_counter()
    translate(lm, text, Decoding(max_new_tokens=8))
    return time.perf_counter() - start


def wait_during_attribution(lm, long_text: str, short_text: str, coarse: bool) -> tuple[float, float]:
    """(seconds of the short request, seconds of the attribution) when the short one starts 1 s in."""
    # long enough to take several seconds on either kind of model (a decoder-only one costs far more per token)
    tr = translate(lm, long_text, Decoding(max_new_tokens=32 if lm.is_seq2seq() else 8))
    kwargs = {"n_steps": 64 if lm.is_seq2seq() else 32, "baseline": "pad" if lm.is_seq2seq() else "unk"}
    took: dict[str, float] = {}

    def long_run() -> None:
        start = time.perf_counter()
        if coarse:
            with lm.lock:
                attribute(lm, tr, "integrated_gradients", **kwargs)
        else:
            attribute(lm, tr, "integrated_gradients", **kwargs)
        took["long"] = time.perf_counter() - start

    worker = threading.Thread(target=long_run)
    worker.start()
    time.sleep(1.0)
    took["short"] = short_request_seconds(lm, short_text)
    worker.join()
    return took["short"], took["long"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.concurrency", description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="transformer-en-de,smollm2-135m-instruct")
    args = ap.parse_args(argv)
    rows = [
        f"# A short request during a long attribution, {date.today().isoformat()}",
        "",
        f"Machine: {machine()}. Command: `python -m bench.concurrency`. Seconds of an 8-token translation that starts "
        "1 s into integrated gradients (every output token of a long sentence) on the same model.",
        "",
        "| model | short request alone | during: lock held for the whole attribution (before) | "
        "during: lock per forward pass (after) | the attribution, before / after |",
        "|---|---|---|---|---|",
    ]
    print("\n".join(rows), flush=True)
    for name in args.models.split(","):
        lm = load_model(name)
        lang = "zh" if get_spec(name).src_lang == "zh" else "en"
        alone = statistics.median(short_request_seconds(lm, SHORT[lang]) for _ in range(3))
        before, long_before = wait_during_attribution(lm, SOURCES[lang], SHORT[lang], coarse=True)
        after, long_after = wait_during_attribution(lm, SOURCES[lang], SHORT[lang], coarse=False)
        rows.append(f"| {name} | {alone:.2f} | {before:.2f} | {after:.2f} | {long_before:.1f} / {long_after:.1f} |")
        print(rows[-1], flush=True)
    (Path(__file__).parent / "concurrency.md").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
