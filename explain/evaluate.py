"""Score explanations over a test set: alignment with human gold alignments (AER) and faithfulness (AOPC).

    python -m explain.evaluate --model transformer-en-fr \\
        --source ../shared/data/gold-align-en-fr/en.txt --reference ../shared/data/gold-align-en-fr/fr.txt \\
        --gold ../shared/data/gold-align-en-fr/enfr.gold --out runs/eval/transformer-en-fr.json

Each sentence is explained on its reference (forced decoding) when one is given, else on the model's
own output. One JSON line per sentence goes to ``<out>.jsonl`` as soon as it is done, so an interrupted
run continues where it stopped (``--resume`` is the default; ``--restart`` starts over); the summary
(``<out>``) is written at the end and read by the app's Evaluate page.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from explain.alignment import argmax_links, diagonal_links, read_gold, score_alignments, to_words, word_index
from explain.attention import cross_rollout, extract_attention
from explain.attribution import attribute
from explain.faithfulness import measure
from explain.translate import force_translation, translate
from models.adapter import Decoding, LanternModel
from models.checkpoint import write_json
from models.data import clean_text
from models.registry import load_model

log = logging.getLogger("lantern.evaluate")
DEFAULT_METHODS = ("attention", "rollout", "saliency", "input_x_gradient", "integrated_gradients")


def _word_maps(lm: LanternModel, src: str, tgt: str) -> tuple[list[int | None], list[int | None]]:
    """Word index of every source token and every target token (None for special tokens)."""
    s = lm.src_tokenizer(src, return_offsets_mapping=True, add_special_tokens=lm.is_seq2seq())
    t = lm.tgt_tokenizer(tgt, return_offsets_mapping=True)
    tgt_words = word_index(t.offset_mapping, tgt)
    return word_index(s.offset_mapping, src), tgt_words


def explain_sentence(
    lm: LanternModel, src: str, ref: str | None, methods: list[str], faithfulness: bool, n_steps: int
) -> dict[str, Any]:
    """Word-level alignment matrices (and faithfulness) of every method for one sentence."""
    src, ref = clean_text(src), clean_text(ref) if ref else None
    tr = force_translation(lm, src, ref) if ref else translate(lm, src, Decoding())
    out: dict[str, Any] = {"src": src, "output": tr.text, "n_src_tokens": len(tr.src_ids), "methods": {}}
    if tr.truncated:
        out["skipped"] = "longer than the model's input limit"
        return out
    src_words, tgt_words = _word_maps(lm, src, tr.text)
    if len(tgt_words) != len(tr.tgt_ids):  # the output did not re-tokenize to the same pieces
        tgt_words = [None] * len(tr.tgt_ids)
    n_s, n_t = len(src.split(" ")), len(tr.text.split(" "))

    def links(matrix: np.ndarray) -> list[list[int]]:
        words = to_words(np.abs(matrix), tgt_words, src_words, n_t, n_s)
        return sorted([list(link) for link in argmax_links(words)])

    maps = extract_attention(lm, tr) if {"attention", "rollout"} & set(methods) else None
    for method in methods:
        if method == "rollout":
            out["methods"][method] = {"links": links(cross_rollout(maps))}
            continue
        if method == "attention":
            cross = maps.cross  # [layers, heads, tgt, src]
            per_head = {
                f"{layer}.{head}": links(cross[layer, head])
                for layer in range(cross.shape[0])
                for head in range(cross.shape[1])
            }
            per_layer = {str(layer): links(cross[layer].mean(0)) for layer in range(cross.shape[0])}
            out["methods"][method] = {
                "links": links(cross.mean((0, 1))),
                "per_head": per_head,
                "per_layer": per_layer,
            }
            attr = attribute(lm, tr, "attention") if faithfulness else None
        else:
            attr = attribute(lm, tr, method, n_steps=n_steps)
            out["methods"][method] = {"links": links(attr.scores)}
            if attr.delta is not None:
                out["methods"][method]["max_abs_delta"] = float(np.abs(attr.delta).max())
        if faithfulness and attr is not None:
            out["methods"][method].update({k: float(v) for k, v in measure(lm, tr, attr).summary().items()})
    return out


def _has_faithfulness(record: dict[str, Any]) -> bool:
    return any("↑" in k for m in record.get("methods", {}).values() for k in m)


def summarise(records: list[dict[str, Any]], gold: list | None, methods: list[str]) -> dict[str, Any]:
    """Corpus AER per method (and per attention layer/head), mean faithfulness per method."""
    summary: dict[str, Any] = {
        "sentences": len(records),
        "skipped": sum("skipped" in r for r in records),
        "methods": {},
    }
    timed = [r for r in records if "seconds" in r]
    if timed:  # where the time goes: sentences with faithfulness measures cost more than alignment alone
        with_f = [r["seconds"] for r in timed if _has_faithfulness(r)]
        without = [r["seconds"] for r in timed if not _has_faithfulness(r)]
        summary["seconds"] = {
            "total": round(sum(r["seconds"] for r in timed), 1),
            "with_faithfulness": round(sum(with_f), 1),
            "with_faithfulness (sentences)": len(with_f),
            "alignment_only": round(sum(without), 1),
            "alignment_only (sentences)": len(without),
        }
    done = [(i, r) for i, r in enumerate(records) if "skipped" not in r]
    if gold is not None and done:
        diagonal = score_alignments(
            [diagonal_links(len(r["src"].split(" ")), len(r["output"].split(" "))) for _, r in done],
            [gold[i] for i, _ in done],
        )
        summary["baselines"] = {
            "diagonal": {"aer": diagonal.aer, "precision": diagonal.precision, "recall": diagonal.recall}
        }
    for method in methods:
        entry: dict[str, Any] = {}
        if gold is not None:
            s = score_alignments(
                [map(tuple, r["methods"][method]["links"]) for _, r in done], [gold[i] for i, _ in done]
            )
            entry.update(aer=s.aer, precision=s.precision, recall=s.recall)
            if method == "attention":
                for part in ("per_head", "per_layer"):  # per_layer: heads averaged (absent from older runs)
                    keys = done[0][1]["methods"]["attention"].get(part, {}).keys() if done else []
                    if keys:
                        entry[f"aer_{part}"] = {
                            k: score_alignments(
                                [map(tuple, r["methods"][method][part][k]) for _, r in done],
                                [gold[i] for i, _ in done],
                            ).aer
                            for k in keys
                        }
        measures = {k for _, r in done for k in r["methods"][method] if "↑" in k or "↓" in k}
        for k in sorted(measures):
            values = [r["methods"][method][k] for _, r in done if k in r["methods"][method]]
            entry[k] = float(np.nanmean(values))
            entry[f"{k} (sentences)"] = len(values)
        summary["methods"][method] = entry
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Score explanations over a test set (AER, AOPC).")
    ap.add_argument("--model", required=True, help="a model name from the app's list")
    ap.add_argument("--source", required=True, help="one source sentence per line")
    ap.add_argument("--reference", help="one reference per line: explanations are of these outputs")
    ap.add_argument("--gold", help="gold word alignments per line (i-j sure, ipj possible, 1-based)")
    ap.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    ap.add_argument(
        "--faithfulness",
        type=int,
        default=0,
        metavar="N",
        help="also measure AOPC and τ-LOO on the first N sentences (slow)",
    )
    ap.add_argument("--n-steps", type=int, default=32, help="integrated-gradients steps")
    ap.add_argument("--limit", type=int, default=0, help="only the first N sentences")
    ap.add_argument("--out", required=True, help="summary JSON (per-sentence lines go to <out>.jsonl)")
    ap.add_argument("--restart", action="store_true", help="ignore an earlier partial run")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    methods = args.methods.split(",")
    sources = Path(args.source).read_text(encoding="utf-8").splitlines()
    refs = Path(args.reference).read_text(encoding="utf-8").splitlines() if args.reference else None
    gold = read_gold(args.gold) if args.gold else None
    n = args.limit or len(sources)
    for name, other in (("reference", refs), ("gold", gold)):
        if other is not None and len(other) != len(sources):
            raise SystemExit(f"--{name} has {len(other)} lines but --source has {len(sources)}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    lines_path = out.with_suffix(out.suffix + "l") if out.suffix == ".json" else Path(f"{out}.jsonl")
    if args.restart:
        lines_path.unlink(missing_ok=True)
    records = [json.loads(line) for line in lines_path.read_text().splitlines()] if lines_path.exists() else []
    if records and (records[0].get("model") != args.model or records[0].get("methods_run") != methods):
        raise SystemExit(f"{lines_path} holds a run with another model or methods; pass --restart")
    lm = load_model(args.model)
    started = time.perf_counter()
    with open(lines_path, "a", encoding="utf-8") as f:
        for i in tqdm(range(len(records), n), initial=len(records), total=n, desc="sentences", file=sys.stderr):
            sentence_started = time.perf_counter()
            record = explain_sentence(
                lm,
                sources[i],
                refs[i] if refs else None,
                methods,
                faithfulness=i < args.faithfulness,
                n_steps=args.n_steps,
            )
            record.update(
                index=i, model=args.model, methods_run=methods, seconds=round(time.perf_counter() - sentence_started, 3)
            )
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            f.flush()
            records.append(record)
    summary = summarise(records[:n], gold[:n] if gold else None, methods)
    summary.update(
        model=args.model,
        source=args.source,
        reference=args.reference,
        gold=args.gold,
        methods_run=methods,
        n_steps=args.n_steps,
        seconds_this_run=round(time.perf_counter() - started, 1),
    )
    write_json(out, summary)
    for method, entry in summary["methods"].items():
        log.info("%-22s %s", method, "  ".join(f"{k} {v:.3f}" for k, v in entry.items() if isinstance(v, float)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
