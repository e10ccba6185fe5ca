"""Speed of a Dataset explorer run: every shipped model over its whole test split, Lantern's batched run beside the
plain loop a user would write with the per-sentence API (``explain.generation.translate`` + sacreBLEU per
sentence), same outputs checked, in one run.

    python -m bench.explorer                  # -> bench/explorer.md
    python -m bench.explorer --models transformer-en-fr --threads 1

Lantern's time is that of ``explore.run.explore``: greedy outputs in length-sorted batches, one teacher-forced pass
per batch for the token probabilities and entropies, sentence BLEU/chrF. The target (issue 15): a 1,000-sentence test
split in under 2 minutes on 2 cores for Lantern's Transformers. The page adds the start of a background process
(importing torch and loading the model: a few seconds, measured separately below).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import sacrebleu

from bench.attribution import machine
from explain.generation import translate
from explore.run import explore
from explore.sets import dataset
from models.decoding import Decoding
from models.loading import load_model
from models.registry import get_spec, list_models
from models.threads import configure


def plain_loop(lm, ds, tgt_lang: str) -> tuple[list[str], float]:
    start = time.perf_counter()
    outs = []
    for src, ref in zip(ds.sources, ds.references, strict=True):
        tr = translate(lm, src, Decoding())
        outs.append(tr.text)
        sacrebleu.sentence_bleu(tr.text, [ref], tokenize="zh" if tgt_lang == "zh" else "13a")
        sacrebleu.sentence_chrf(tr.text, [ref])
    return outs, time.perf_counter() - start


def row(name: str, limit: int) -> str:
    spec = get_spec(name)
    lm = load_model(spec)
    ds = dataset(f"test:{name}")
    ds = ds.head(limit) if limit else ds
    start = time.perf_counter()
    frame = explore(lm, ds, tgt_lang=spec.tgt_lang)
    ours = time.perf_counter() - start
    outs, plain = plain_loop(lm, ds, spec.tgt_lang)
    same = sum(a == b for a, b in zip(frame.output, outs, strict=True))
    return (
        f"| {name} | {len(ds):,} | {ours:.1f} | {plain:.1f} | {plain / ours:.1f}× | {same:,}/{len(ds):,} "
        f"| {'yes' if ours < 120 else 'no'} |"
    )


def process_start(name: str) -> float:
    """Seconds from starting ``python -m explore.run`` on 5 sentences to its exit (imports, model load, run)."""
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        cmd = [sys.executable, "-m", "explore.run", "--model", name, "--dataset", f"test:{name}[:5]", "--out", out]
        subprocess.run(cmd, check=True, capture_output=True)
        return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.explorer", description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="*", default=[s.name for s in list_models() if s.kind == "checkpoint"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0, help="only the first N sentences of each split")
    ap.add_argument("--out", default=str(Path(__file__).with_name("explorer.md")))
    args = ap.parse_args(argv)
    configure(fixed=args.threads)
    lines = [
        "# Dataset explorer: a whole test split",
        "",
        f"{machine()}, {args.threads} torch threads, {date.today()}; `python -m bench.explorer`.",
        "",
        "Lantern: `explore.run.explore` (batched greedy decoding, probabilities, entropies, sentence BLEU and chrF). "
        "Plain loop: the per-sentence API (`explain.generation.translate`, what the Translate page runs) and "
        "sacreBLEU per sentence. Same outputs: sentences whose two outputs are identical.",
        "",
        "| model | sentences | Lantern (s) | plain loop (s) | speed-up | same outputs | under 2 min |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in args.models:
        lines.append(row(name, args.limit))
        print(lines[-1], flush=True)
    start = process_start(args.models[0])
    lines += [
        "",
        f"Starting the background process the page starts (`python -m explore.run`, 5 sentences of "
        f"{args.models[0]}): {start:.1f} s, most of it importing torch and transformers.",
        "",
    ]
    Path(args.out).write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
