"""Score a pretrained model Lantern offers on the test split of Lantern's corpora: BLEU and chrF with their
sacreBLEU signatures, the same split and metrics as the shipped models' cards (``training/scoring.py``).

    python -m training.score_pretrained --model gemma-3-270m-zh-en   # -> evaluations/bleu/gemma-3-270m-zh-en.json
    python -m training.score_pretrained --model gemma-3-270m-en-fr --n 200 --batch 16

Greedy decoding, in length-sorted batches; decoder-only models are padded on the left (their outputs follow
the prompt). The app's Home page and the README read the file this writes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from common.paths import REPO_ROOT
from models.adapter import LanternModel
from models.threads import configure

OUT_DIR = REPO_ROOT / "evaluations" / "bleu"  # not beside explain.evaluate's summaries: another format
CORPUS = {
    "zh-en": "tatoeba-en-zh",
    "en-zh": "tatoeba-en-zh",
    "en-fr": "tatoeba-en-fr",
    "fr-en": "tatoeba-en-fr",
    "en-de": "multi30k-en-de",
}


@torch.no_grad()
def translate_batch(lm: LanternModel, texts: Sequence[str], max_new_tokens: int = 64) -> list[str]:
    """Greedy outputs of ``texts`` in one padded batch (left padding for decoder-only models)."""
    encoded = [lm.encode_source(t).ids for t in texts]
    pad = lm.src_tokenizer.pad_token_id if lm.src_tokenizer.pad_token_id is not None else lm.end_id
    width = max(len(ids) for ids in encoded)
    left = not lm.is_seq2seq()
    rows = [([pad] * (width - len(ids)) + ids) if left else (ids + [pad] * (width - len(ids))) for ids in encoded]
    mask = [
        ([0] * (width - len(ids)) + [1] * len(ids)) if left else ([1] * len(ids) + [0] * (width - len(ids)))
        for ids in encoded
    ]
    with lm.lock:
        out = lm.model.generate(
            input_ids=torch.tensor(rows, device=lm.device),
            attention_mask=torch.tensor(mask, device=lm.device),
            do_sample=False,
            num_beams=1,
            max_new_tokens=max_new_tokens,
            eos_token_id=lm.stops(),
            pad_token_id=pad,
        )
    start = 1 if lm.is_seq2seq() else width
    return [lm.decode(lm.cut(seq[start:])) for seq in out.tolist()]


def score(
    lm: LanternModel, pairs: Sequence[tuple[str, str]], tgt_lang: str, batch: int = 16, log=print
) -> dict[str, object]:
    """Corpus scores of ``lm``'s greedy outputs on ``pairs`` (source, reference), with the time decoding took."""
    from training.scoring import corpus_scores

    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]))
    hyps = [""] * len(pairs)
    start = time.perf_counter()
    for k in range(0, len(order), batch):
        idx = order[k : k + batch]
        longest = max(lm.encode_source(pairs[i][0]).kept_tokens for i in idx)  # the text's tokens, not the prompt's
        limit = min(128, 2 * longest + 16)
        for i, hyp in zip(idx, translate_batch(lm, [pairs[i][0] for i in idx], limit), strict=True):
            hyps[i] = hyp
        log(f"{min(k + batch, len(order))}/{len(order)} sentences, {time.perf_counter() - start:.0f} s")
    result = corpus_scores(hyps, [p[1] for p in pairs], tgt_lang)
    result.update(decode_s=round(time.perf_counter() - start, 1), beams=1, batch=batch)
    examples = [{"src": p[0], "ref": p[1], "hyp": h} for p, h in zip(pairs[:5], hyps[:5], strict=True)]
    return {**result, "examples": examples}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.score_pretrained", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="a translating model Lantern offers, e.g. gemma-3-270m-zh-en")
    p.add_argument("--n", type=int, default=1000, help="test sentences (the first n of the split; default all 1000)")
    p.add_argument("--batch", type=int, default=16, help="sentences per batch (default 16)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: Lantern's thread policy)")
    p.add_argument("--out", type=Path, default=None, help="JSON file to write (default evaluations/bleu/MODEL.json)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from models.registry import get_spec

    try:
        spec = get_spec(args.model)
    except KeyError as err:
        print(f"error: {err.args[0]}", file=sys.stderr)
        return 2
    pair = f"{spec.src_lang}-{spec.tgt_lang}"
    if spec.task != "translate" or pair not in CORPUS:
        print(f"error: {args.model} is not a translating model of a pair Lantern has a test split for", file=sys.stderr)
        return 2
    if args.n < 1 or args.batch < 1:
        print("error: --n and --batch must be at least 1", file=sys.stderr)
        return 2
    from models.loading import load_model
    from training.corpora import load_splits

    if args.threads:
        configure(fixed=args.threads)
    lm = load_model(spec)
    test = load_splits(CORPUS[pair], spec.src_lang, spec.tgt_lang).test[: args.n]
    result = score(lm, [(p.src, p.tgt) for p in test], spec.tgt_lang, args.batch)
    result.update(model=spec.name, corpus=CORPUS[pair], split="test", threads=torch.get_num_threads())
    out = args.out or OUT_DIR / f"{spec.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{spec.name}: BLEU {result['bleu']}, chrF {result['chrf']} on {result['n']} sentences -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
