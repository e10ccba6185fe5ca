"""Score explanations over a test set: alignment with human gold alignments (AER) and faithfulness (AOPC).

    python -m explain.evaluate --model transformer-en-fr \\
        --source ../shared/data/gold-align-en-fr/en.txt --reference ../shared/data/gold-align-en-fr/fr.txt \\
        --gold ../shared/data/gold-align-en-fr/enfr.gold --out runs/eval/transformer-en-fr.json

Each sentence is explained on its reference (forced decoding) when one is given, else on the model's
own output. One JSON line per sentence goes to ``<out>.jsonl`` as soon as it is done, so an interrupted
run continues where it stopped (``--resume`` is the default; ``--restart`` starts over); the summary
(``<out>``) is written at the end and read by the app's Evaluate page.

Sentences are explained in blocks (``--batch-sentences``): the attention maps and the gradient methods of a block
come from batched passes (``explain.corpus``, the same numbers as the per-sentence API to float rounding);
``--per-sentence`` explains each sentence alone, as before. Under ``torchrun --nproc_per_node=N -m explain.evaluate
...`` each process explains every N-th sentence left and writes its own lines (``<out>l.rank<r>``); rank 0 merges
them in sentence order into ``<out>l`` and writes the summary a single process writes. An interrupted sharded run
continues from its parts, with any number of processes.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from common.files import write_json
from common.memory import bound_heap_growth
from common.ranks import Dist
from common.text import clean_text
from explain import corpus
from explain.alignment import (
    EXTRACTIONS,
    AlignmentScore,
    argmax_links,
    diagonal_links,
    extract_all,
    extract_all_both,
    read_gold,
    score_alignments,
    source_attention,
    to_words,
    token_words,
    word_index,
)
from explain.attention import extract_attention
from explain.attention_views import cross_rollout
from explain.attribution import METHODS, attribute
from explain.faithfulness import measure
from explain.generation import force_translation, translate
from explain.mixing import attention_norms, value_zeroing
from explain.types import Translation
from models.adapter import Decoding, LanternModel
from models.decoding import CheckpointError, PretrainedModelError
from models.loading import load_model

log = logging.getLogger("lantern.evaluate")
DEFAULT_METHODS = ("attention", "rollout", "saliency", "input_x_gradient", "integrated_gradients")
LAYER_MAPS = {"attention_norms": attention_norms, "value_zeroing": value_zeroing}  # also scored layer by layer


def _word_maps(lm: LanternModel, src: str, tgt: str) -> tuple[list[int | None], list[int | None]]:
    """Word index of every source token and every target token (None for special tokens)."""
    s = lm.src_tokenizer(src, return_offsets_mapping=True, add_special_tokens=lm.is_seq2seq())
    t = lm.tgt_tokenizer(tgt, return_offsets_mapping=True)
    tgt_words = word_index(t.offset_mapping, tgt)
    return word_index(s.offset_mapping, src), tgt_words


def explain_sentence(
    lm: LanternModel,
    src: str,
    ref: str | None,
    methods: list[str],
    faithfulness: bool,
    n_steps: int,
    n_samples: int = 25,
    noise_level: float = 0.15,
    *,
    translation: Translation | None = None,
    given: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Word-level alignment matrices (and faithfulness) of every method for one sentence.

    ``translation``: the sentence's output, already made (else forced on ``ref``, or generated). ``given``: results
    the batched corpus path already computed (``explain.corpus``): "maps" (the attention maps) and, by method, the
    gradient methods' scores; the rest is computed here."""
    src, ref = clean_text(src), clean_text(ref) if ref else None
    given = given or {}
    tr = translation or (force_translation(lm, src, ref) if ref else translate(lm, src, Decoding()))
    out: dict[str, Any] = {"src": src, "output": tr.text, "n_src_tokens": len(tr.src_ids), "methods": {}}
    if tr.truncated:
        out["skipped"] = "longer than the model's input limit"
        return out
    # the source columns that are the sentence's tokens (a decoder-only model's: the sentence inside its prompt)
    columns, src_words, tgt_words = token_words(lm, tr)
    n_s, n_t = len(src.split(" ")), len(tr.text.split(" "))

    def links(matrix: np.ndarray) -> list[list[int]]:
        words = to_words(np.abs(matrix), tgt_words, src_words, n_t, n_s)
        return sorted([list(link) for link in argmax_links(words)])

    def words(matrix: np.ndarray, signed: bool = False) -> list[list[float]]:
        """The word-level matrix any extraction is read from afterwards (``explain.alignment.extract_all``):
        [target words + specials, source words + specials], scaled to a largest |score| of 1, 6 decimals."""
        return _compact(to_words(matrix if signed else np.abs(matrix), tgt_words, src_words, n_t, n_s, specials=True))

    maps = given.get("maps") or (extract_attention(lm, tr) if {"attention", "rollout"} & set(methods) else None)
    for method in methods:
        if method == "rollout":
            rollout = cross_rollout(maps)
            out["methods"][method] = {"links": links(rollout), "word_scores": {"mean": words(rollout)}}
            continue
        if method == "attention":
            cross = source_attention(lm, tr, maps)[..., columns]  # [layers, heads, tgt, src]
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
                "word_scores": {"mean": words(cross.mean((0, 1)))}
                | {str(layer): words(cross[layer].mean(0)) for layer in range(cross.shape[0])},
            }
            attr = attribute(lm, tr, "attention") if faithfulness else None
        elif method in LAYER_MAPS:  # the method's layer mean (its scores), and each layer alone
            layer_maps = LAYER_MAPS[method](lm, list(tr.src_ids), list(tr.tgt_ids)).numpy()[:, :, : len(tr.src_ids)]
            layer_maps = layer_maps[:, :, columns]
            out["methods"][method] = {
                "links": links(layer_maps.mean(0)),
                "per_layer": {str(layer): links(m) for layer, m in enumerate(layer_maps)},
                "word_scores": {"mean": words(layer_maps.mean(0))}
                | {str(layer): words(m) for layer, m in enumerate(layer_maps)},
            }
            attr = attribute(lm, tr, method) if faithfulness else None
        else:
            attr = given.get(method) or attribute(
                lm, tr, method, n_steps=n_steps, n_samples=n_samples, noise_level=noise_level
            )
            scores = attr.scores[:, columns]
            out["methods"][method] = {
                "links": links(scores),
                "word_scores": {"mean": words(scores)},
                "word_scores_signed": {"mean": words(scores, signed=True)},
            }
            if attr.delta is not None:
                out["methods"][method]["max_abs_delta"] = float(np.abs(attr.delta).max())
        if faithfulness and attr is not None:
            out["methods"][method].update({k: float(v) for k, v in measure(lm, tr, attr).summary().items()})
    return out


def explain_block(
    lm: LanternModel,
    pairs: list[tuple[str, str | None]],
    methods: list[str],
    n_steps: int,
    n_samples: int = 25,
    noise_level: float = 0.15,
) -> list[dict[str, Any]]:
    """``explain_sentence`` (without faithfulness) for several sentences at once: the attention maps and the gradient
    methods of all of them come from batched passes (``explain.corpus``), the other methods run per sentence.
    Each record gets ``seconds``: the block's time shared out in proportion to each sentence's work."""
    started = time.perf_counter()
    cleaned = [(clean_text(src), clean_text(ref) if ref else None) for src, ref in pairs]
    forced = [i for i, (_, ref) in enumerate(cleaned) if ref]
    trs: list[Translation | None] = [None] * len(pairs)
    if corpus.supported(lm) and forced:  # the teacher-forced passes of the block, batched
        for i, tr in zip(forced, corpus.force_translations(lm, [cleaned[i] for i in forced]), strict=True):
            trs[i] = tr
    trs = [
        tr or (force_translation(lm, s, r) if r else translate(lm, s, Decoding()))
        for tr, (s, r) in zip(trs, cleaned, strict=True)
    ]
    live = [i for i, tr in enumerate(trs) if not tr.truncated]
    batched = corpus.batched_methods(lm, methods)
    given: list[dict[str, Any]] = [{} for _ in pairs]
    if live and {"attention", "rollout"} & set(batched):
        for i, maps in zip(live, corpus.attention_maps(lm, [trs[i] for i in live]), strict=True):
            given[i]["maps"] = maps
    gradient = [m for m in batched if m in corpus.GRADIENT_METHODS]
    if live and gradient:
        objs = [corpus.objective(lm, trs[i]) for i in live]
        scores = corpus.gradient_scores(lm, objs, gradient, n_steps, n_samples, noise_level)
        for i, by_method in zip(live, scores, strict=True):
            given[i].update(by_method)
    shared = time.perf_counter() - started
    work = [len(tr.tgt_ids) * (len(tr.src_ids) + len(tr.tgt_ids)) if i in live else 0 for i, tr in enumerate(trs)]
    records = []
    for (src, ref), tr, g, w in zip(cleaned, trs, given, work, strict=True):
        own = time.perf_counter()
        record = explain_sentence(
            lm, src, ref, methods, False, n_steps, n_samples, noise_level, translation=tr, given=g
        )
        record["seconds"] = round(time.perf_counter() - own + shared * w / max(1, sum(work)), 3)
        records.append(record)
    return records


def _compact(matrix: np.ndarray) -> list[list[float]]:
    """Scaled to a largest |score| of 1 (argmax and hence every extraction is unchanged) and rounded."""
    scale = float(np.abs(matrix).max()) if matrix.size else 0.0
    if np.isfinite(scale) and scale > 0:
        matrix = matrix / scale
    return np.round(matrix, 6).tolist()


BOTH = " (both models)"  # a setting that combines this run's model with the reverse direction's (--reverse)


def _extraction_counts(
    done: list[tuple[int, dict[str, Any]]],
    gold: list,
    method: str,
    reverse: dict[int, dict[str, Any]] | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """Per extraction setting and layer ("mean": the method's own map), each sentence's AER counts
    (|A∩S|, |A∩P|, |A|, |S|), so that any part of the set can be scored by summing. Settings: the extraction,
    with " +EOS" where a word whose best partner is an end-of-sentence/special token gets no link, and
    " signed" where the scores' signs were kept (negative never links); absolute scores otherwise.
    ``reverse``: the reverse-direction model's records by sentence index (same method); its settings end in
    " (both models)": "column" is then the reverse model's own direction, the symmetrisations combine both."""
    counts: dict[str, dict[str, list]] = {}

    def add(setting: str, variant: str, links: set, g: Any) -> None:
        row = (len(links & g.sure), len(links & g.possible), len(links), len(g.sure))
        counts.setdefault(setting, {}).setdefault(variant, []).append(row)

    for i, r in done:
        g = gold[i]
        for kind, suffix in (("word_scores", ""), ("word_scores_signed", " signed")):
            for variant, matrix in r["methods"][method].get(kind, {}).items():
                m = np.asarray(matrix, dtype=float)
                for eos in (False, True):
                    for how, links in extract_all(m, eos=eos).items():
                        add(how + (" +EOS" if eos else "") + suffix, variant, links, g)
                    if reverse is None or suffix:
                        continue
                    back = reverse[i]["methods"][method]["word_scores"][variant]
                    for how, links in extract_all_both(m, np.asarray(back, dtype=float), eos=eos).items():
                        if how != "row":  # the forward model's own rows are the setting above
                            setting = ("column" if how == "reverse" else how) + (" +EOS" if eos else "") + BOTH
                            add(setting, variant, links, g)
    return {s: {v: np.asarray(rows) for v, rows in by_variant.items()} for s, by_variant in counts.items()}


def _score(counts: np.ndarray) -> AlignmentScore:
    a_s, a_p, n_a, n_s = (int(x) for x in counts.sum(0))
    return AlignmentScore(
        aer=1 - (a_s + a_p) / max(1, n_a + n_s),
        precision=a_p / n_a if n_a else 0.0,
        recall=a_s / n_s if n_s else 0.0,
        n_predicted=n_a,
        n_sure=n_s,
    )


def _variant_order(variant: str) -> tuple[int, int]:
    return (0, 0) if variant == "mean" else (1, int(variant)) if variant.isdigit() else (2, 0)


def _extraction_summary(counts: dict[str, dict[str, np.ndarray]], is_dev: np.ndarray | None) -> dict[str, Any]:
    """AER per setting and layer on all sentences; with a development part, each setting's layer chosen on it
    and the chosen (setting, layer) reported on the rest."""
    out: dict[str, Any] = {
        "aer_by_extraction": {
            setting: {v: _score(c).aer for v, c in sorted(by_variant.items(), key=lambda kv: _variant_order(kv[0]))}
            for setting, by_variant in counts.items()
        }
    }
    if is_dev is None:
        return out
    reported: dict[str, Any] = {}
    for setting, by_variant in counts.items():
        dev_aer = {v: _score(c[is_dev]).aer for v, c in by_variant.items()}
        layer = min(dev_aer, key=lambda v: (dev_aer[v], _variant_order(v)))
        test = _score(by_variant[layer][~is_dev])
        reported[setting] = {
            "layer": layer,
            "aer_dev": dev_aer[layer],
            "aer": test.aer,
            "precision": test.precision,
            "recall": test.recall,
            "aer_mean_of_layers": _score(by_variant["mean"][~is_dev]).aer if "mean" in by_variant else None,
        }
    out["aer_by_extraction_reported"] = reported
    best = min(reported, key=lambda s: (reported[s]["aer_dev"], EXTRACTIONS.index(s.split(" ")[0]), s))
    out["dev_choice"] = {"setting": best, **reported[best]}
    return out


def _has_faithfulness(record: dict[str, Any]) -> bool:
    return any("↑" in k for m in record.get("methods", {}).values() for k in m)


def summarise(
    records: list[dict[str, Any]],
    gold: list | None,
    methods: list[str],
    dev: int = 0,
    reverse: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Corpus AER per method (and per attention layer/head, and per extraction setting where the records keep
    word-level scores), mean faithfulness per method. ``dev``: settings (layer × extraction) are chosen on the
    first ``dev`` sentences and reported on the rest. ``reverse``: the records of a run of the reverse-direction
    model on the swapped pairs (``reverse_records``), which adds the two-model settings."""
    by_index = {r.get("index", i): r for i, r in enumerate(reverse)} if reverse is not None else None
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
    is_dev: np.ndarray | None = None
    if gold is not None and done:
        diagonal = score_alignments(
            [diagonal_links(len(r["src"].split(" ")), len(r["output"].split(" "))) for _, r in done],
            [gold[i] for i, _ in done],
        )
        summary["baselines"] = {
            "diagonal": {"aer": diagonal.aer, "precision": diagonal.precision, "recall": diagonal.recall}
        }
        is_dev = np.array([i < dev for i, _ in done]) if dev else None
        if is_dev is not None:
            rest = [(i, r) for i, r in done if i >= dev]
            summary["dev"] = {
                "chosen_on": f"sentences 1-{dev}",
                "reported_on": f"sentences {dev + 1}-{len(records)}",
                "dev_sentences": int(is_dev.sum()),
                "reported_sentences": len(rest),
            }
            if rest:
                d = score_alignments(
                    [diagonal_links(len(r["src"].split(" ")), len(r["output"].split(" "))) for _, r in rest],
                    [gold[i] for i, _ in rest],
                )
                summary["baselines"]["diagonal_reported"] = {"aer": d.aer, "precision": d.precision, "recall": d.recall}
            if not is_dev.any() or is_dev.all():
                is_dev = None  # nothing to choose on, or nothing left to report on
    for method in methods:
        entry: dict[str, Any] = {}
        if gold is not None:
            s = score_alignments(
                [map(tuple, r["methods"][method]["links"]) for _, r in done], [gold[i] for i, _ in done]
            )
            entry.update(aer=s.aer, precision=s.precision, recall=s.recall)
            if method == "attention" or method in LAYER_MAPS:
                for part in ("per_head", "per_layer"):  # per_layer: heads averaged (absent from older runs)
                    keys = done[0][1]["methods"][method].get(part, {}).keys() if done else []
                    if keys:
                        entry[f"aer_{part}"] = {
                            k: score_alignments(
                                [map(tuple, r["methods"][method][part][k]) for _, r in done],
                                [gold[i] for i, _ in done],
                            ).aer
                            for k in keys
                        }
        if gold is not None and done and all("word_scores" in r["methods"][method] for _, r in done):
            both = (
                by_index
                if by_index is not None
                and all(
                    i in by_index and "word_scores" in by_index[i].get("methods", {}).get(method, {}) for i, _ in done
                )
                else None
            )
            entry.update(_extraction_summary(_extraction_counts(done, gold, method, both), is_dev))
            if both is not None:
                entry["reverse_run"] = True
        measures = {k for _, r in done for k in r["methods"][method] if "↑" in k or "↓" in k}
        for k in sorted(measures):
            values = [r["methods"][method][k] for _, r in done if k in r["methods"][method]]
            entry[k] = float(np.nanmean(values))
            entry[f"{k} (sentences)"] = len(values)
        summary["methods"][method] = entry
    return summary


PROG = "python -m explain.evaluate"


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog=PROG,
        description="Score explanations over a test set: word alignments against gold alignments (AER) and, "
        "optionally, faithfulness (AOPC comprehensiveness and sufficiency, Kendall τ with leave-one-out).",
        epilog="Exit codes: 0 done, 2 a mistake in the command (nothing is written then). An interrupted run "
        "continues where it stopped when run again with the same --out.",
    )
    ap.add_argument("--model", required=True, help="a model name from the app's list, a model folder or a hub id")
    ap.add_argument("--source", required=True, help="text file, one source sentence per line")
    ap.add_argument(
        "--reference", help="text file, one reference per line: each explanation is of this output (forced decoding)"
    )
    ap.add_argument(
        "--gold", help="gold word alignments, one line per sentence (i-j sure, ipj possible, 1-based; WPT format)"
    )
    ap.add_argument(
        "--swap-gold",
        action="store_true",
        help="the gold file's i indexes this run's target words and j its source words (a model of the reverse "
        "direction, e.g. fr->en scored with the en-fr Hansards gold)",
    )
    ap.add_argument(
        "--methods",
        default=",".join(DEFAULT_METHODS),
        help=f"comma-separated methods: rollout and any of {', '.join(METHODS)} (default: %(default)s)",
    )
    ap.add_argument(
        "--faithfulness",
        type=int,
        default=0,
        metavar="N",
        help="also measure AOPC and τ-LOO on the first N sentences (slow; default 0)",
    )
    ap.add_argument("--n-steps", type=int, default=32, help="integrated-gradients steps (default: %(default)s)")
    ap.add_argument(
        "--n-samples", type=int, default=25, help="samples of SmoothGrad and Gradient SHAP (default: %(default)s)"
    )
    ap.add_argument(
        "--noise-level",
        type=float,
        default=0.15,
        help="SmoothGrad's noise, a share of the range of the input's embeddings (default: %(default)s)",
    )
    ap.add_argument("--limit", type=int, default=0, help="only the first N sentences (default: all)")
    ap.add_argument(
        "--dev",
        type=int,
        default=0,
        metavar="N",
        help="choose each method's layer and extraction setting on the first N sentences and report it on the "
        "rest (needs --gold; default 0: no split)",
    )
    ap.add_argument(
        "--reverse",
        metavar="RUN",
        help="an earlier run (its summary JSON) of a model of the reverse direction on the swapped files, with the "
        "same methods: adds the settings that combine both models' directions, e.g. grow-diag (both models)",
    )
    ap.add_argument("--out", required=True, help="summary JSON (per-sentence lines go to <out>l, e.g. run.jsonl)")
    ap.add_argument("--restart", action="store_true", help="ignore an earlier partial run with the same --out")
    ap.add_argument(
        "--batch-sentences",
        type=int,
        default=32,
        metavar="N",
        help="explain N sentences together: the attention maps and the gradient methods of a block come from batched "
        "passes (explain.corpus), for the same numbers; lines are written per block (default: %(default)s)",
    )
    ap.add_argument(
        "--per-sentence",
        action="store_true",
        help="explain each sentence on its own with the per-sentence API, as before the batched path (slower, the "
        "same numbers to float rounding; kept to compare the two)",
    )
    return ap


class UsageError(ValueError):
    """A mistake in the command line; reported in one line before anything is written."""


def _read_lines(path: str, what: str) -> list[str]:
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise UsageError(f"--{what}: no file at {path}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"--{what}: cannot read {path} as UTF-8 text ({err})") from None


def _check_args(args: argparse.Namespace) -> tuple[list[str], list[str], list[str] | None, list | None]:
    """Validated (methods, sources, references, gold alignments); ``UsageError`` otherwise."""
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m != "rollout" and m not in METHODS]
    if not methods or unknown:
        raise UsageError(
            f"unknown method(s) {', '.join(unknown) or '(none given)'}; choose from rollout, {', '.join(METHODS)}"
        )
    if not 1 <= args.n_steps <= 1024:
        raise UsageError(f"--n-steps must be between 1 and 1024, not {args.n_steps}")
    if not 1 <= args.n_samples <= 1024:
        raise UsageError(f"--n-samples must be between 1 and 1024, not {args.n_samples}")
    if not 0 <= args.noise_level <= 1:  # also refuses NaN
        raise UsageError(f"--noise-level must be between 0 and 1, not {args.noise_level}")
    if args.batch_sentences < 1:
        raise UsageError(f"--batch-sentences must be 1 or more, not {args.batch_sentences}")
    if args.limit < 0 or args.faithfulness < 0 or args.dev < 0:
        raise UsageError("--limit, --faithfulness and --dev take a number of sentences (0 or more)")
    sources = _read_lines(args.source, "source")
    refs = _read_lines(args.reference, "reference") if args.reference else None
    try:
        gold = read_gold(args.gold, swap=args.swap_gold) if args.gold else None
    except FileNotFoundError:
        raise UsageError(f"--gold: no file at {args.gold}") from None
    except ValueError as err:
        raise UsageError(f"--gold: not in the i-j / ipj format ({err})") from None
    for name, other in (("reference", refs), ("gold", gold)):
        if other is not None and len(other) != len(sources):
            raise UsageError(f"--{name} has {len(other)} lines but --source has {len(sources)}")
    if not sources:
        raise UsageError(f"--source {args.source} is empty")
    if args.dev and (gold is None or args.dev >= (args.limit or len(sources))):
        raise UsageError("--dev needs --gold and fewer sentences than the run has, to report on the rest")
    return methods, sources, refs, gold


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    d = _join()  # under torchrun: this process's rank; each rank explains its share of the sentences
    try:
        methods, sources, refs, gold = _check_args(args)
        lines_path = _lines_path(Path(args.out))
        if args.restart and d.main:
            for path in [lines_path, *_part_paths(lines_path)]:
                path.unlink(missing_ok=True)
        _barrier(d)  # every rank reads the earlier records only after a restart removed them
        records = [] if args.restart else _earlier_records(lines_path, args.model, methods)
        for i, r in enumerate(records):
            r.setdefault("index", i)  # lines of older runs, written in sentence order
        parts = _part_paths(lines_path)
        for part in parts:
            records += _earlier_records(part, args.model, methods)
        _barrier(d)  # and before any rank writes its own part
        lm = load_model(args.model)
    except (UsageError, PretrainedModelError, CheckpointError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        _leave(d)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    bound_heap_growth()
    n = args.limit or len(sources)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {r.get("index", i) for i, r in enumerate(records)}
    todo = [i for i in range(n) if i not in done][d.rank :: d.world]
    sharded = d.active or bool(parts)  # lines go to a part per rank, merged in sentence order at the end
    own = lines_path.with_name(f"{lines_path.name}.rank{d.rank}") if sharded else lines_path
    if d.active:
        left = n - len(done & set(range(n)))
        log.info("rank %d of %d: %d of the %d sentences left", d.rank, d.world, len(todo), left)
    started = time.perf_counter()
    progress = tqdm(total=len(todo), desc="sentences" if d.world == 1 else f"sentences (rank {d.rank})",
                    file=sys.stderr, disable=not d.main)  # fmt: skip
    fixed = {"model": args.model, "methods_run": methods}
    with open(own, "a", encoding="utf-8") as f:
        for chunk, batched in _chunks(todo, args, lm, methods):
            if not batched:
                i = chunk[0]
                sentence_started = time.perf_counter()
                record = explain_sentence(
                    lm,
                    sources[i],
                    refs[i] if refs else None,
                    methods,
                    faithfulness=i < args.faithfulness,
                    n_steps=args.n_steps,
                    n_samples=args.n_samples,
                    noise_level=args.noise_level,
                )
                record["seconds"] = round(time.perf_counter() - sentence_started, 3)
                block = [record]
            else:
                block = explain_block(
                    lm,
                    [(sources[i], refs[i] if refs else None) for i in chunk],
                    methods,
                    args.n_steps,
                    args.n_samples,
                    args.noise_level,
                )
            for i, record in zip(chunk, block, strict=True):
                record.update(index=i, **fixed, seconds=record.pop("seconds"))
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
                records.append(record)
            f.flush()
            progress.update(len(chunk))
    progress.close()
    _barrier(d)  # every rank has written its part
    if not d.main:
        _leave(d)
        return 0
    if sharded:  # rank 0 merges every part into the run's lines, in sentence order
        records = _merge_parts(lines_path, args.model, methods)
    _leave(d)
    records.sort(key=lambda r: r["index"])
    try:
        reverse = reverse_records(args.reverse, records[:n]) if args.reverse else None
    except UsageError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    summary = summarise(records[:n], gold[:n] if gold else None, methods, dev=args.dev, reverse=reverse)
    summary.update(
        model=args.model,
        source=args.source,
        reference=args.reference,
        gold=args.gold,
        swap_gold=args.swap_gold,
        methods_run=methods,
        n_steps=args.n_steps,
        n_samples=args.n_samples,
        noise_level=args.noise_level,
        dev_sentences=args.dev,
        reverse=args.reverse,
        reverse_model=next((r.get("model") for r in reverse or [] if r.get("model")), None),
        seconds_this_run=round(time.perf_counter() - started, 1),
    )
    write_json(out, summary)
    for method, entry in summary["methods"].items():
        log.info("%-22s %s", method, "  ".join(f"{k} {v:.3f}" for k, v in entry.items() if isinstance(v, float)))
        if "dev_choice" in entry:
            c = entry["dev_choice"]
            log.info("%-22s chosen on dev: %s, layer %s: AER %.3f (dev %.3f)", "", c["setting"], c["layer"],
                     c["aer"], c["aer_dev"])  # fmt: skip
    return 0


def reverse_records(run: str | Path, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The per-sentence records of a reverse-direction run (``run``: its summary JSON or its ``.jsonl``), checked
    against this run's: sentence i of the reverse run must explain this run's output i as its source and this
    source as its output. ``UsageError`` otherwise."""
    path = Path(run)
    lines = path if path.suffix == ".jsonl" else _lines_path(path)
    if not lines.exists():
        raise UsageError(f"--reverse: no per-sentence file {lines} (run the reverse model first)")
    try:
        back = [json.loads(line) for line in lines.read_text(encoding="utf-8").splitlines() if line.strip()]
    except ValueError as err:
        raise UsageError(f"--reverse: {lines} is not a run's per-sentence file ({err})") from None
    if len(back) < len(records):
        raise UsageError(f"--reverse: {lines} holds {len(back)} sentences, this run {len(records)}")
    for i, (fwd, rev) in enumerate(zip(records, back, strict=False)):
        if "skipped" in fwd or "skipped" in rev:
            continue
        swapped = (clean_text(rev.get("src", "")), clean_text(rev.get("output", "")))
        if swapped != (clean_text(fwd["output"]), clean_text(fwd["src"])):
            raise UsageError(
                f"--reverse: sentence {i + 1} of {lines} does not explain this run's pair the other way round "
                f"({rev.get('src', '')[:40]!r} -> {rev.get('output', '')[:40]!r})"
            )
    return back


def _chunks(
    todo: list[int], args: argparse.Namespace, lm: LanternModel, methods: list[str]
) -> list[tuple[list[int], bool]]:
    """How the sentences are explained: (sentences, batched). One by one with the per-sentence API
    (``--per-sentence``, sentences with faithfulness measures, models or methods the batched path does not cover),
    else in blocks of ``--batch-sentences``."""
    if args.per_sentence or not corpus.batched_methods(lm, methods):
        return [([i], False) for i in todo]
    single = [([i], False) for i in todo if i < args.faithfulness]
    rest = [i for i in todo if i >= args.faithfulness]
    return single + [(rest[k : k + args.batch_sentences], True) for k in range(0, len(rest), args.batch_sentences)]


def _join() -> Dist:
    """This process's place under ``torchrun`` (its environment variables): a gloo process group on CPUs, as
    ``training.distributed`` joins for training (explain/ does not import training/)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Dist()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="gloo")
    return Dist(dist.get_rank(), dist.get_world_size())


def _barrier(d: Dist) -> None:
    if d.active:
        import torch.distributed as dist

        dist.barrier()


def _leave(d: Dist) -> None:
    if d.active:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def _part_paths(lines_path: Path) -> list[Path]:
    """The per-rank lines of a sharded run (``run.jsonl.rank0``, ...) not merged yet."""
    return sorted(lines_path.parent.glob(f"{lines_path.name}.rank*"))


def _merge_parts(lines_path: Path, model: str, methods: list[str]) -> list[dict[str, Any]]:
    """Every record of the run's lines and of its parts, one per sentence, in sentence order: written back to the
    run's lines (whole, then renamed into place), the parts removed."""
    parts = _part_paths(lines_path)
    by_index: dict[int, dict[str, Any]] = {}
    for path in [lines_path, *parts]:
        for i, r in enumerate(_earlier_records(path, model, methods)):
            by_index.setdefault(r.get("index", i), r)
    records = [by_index[i] for i in sorted(by_index)]
    tmp = lines_path.with_name(lines_path.name + ".merging")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    tmp.replace(lines_path)
    for path in parts:
        path.unlink()
    return records


def _lines_path(out: Path) -> Path:
    """Where the per-sentence lines of a run go: ``run.json`` -> ``run.jsonl``."""
    return out.with_suffix(out.suffix + "l") if out.suffix == ".json" else Path(f"{out}.jsonl")


def _earlier_records(lines_path: Path, model: str, methods: list[str]) -> list[dict[str, Any]]:
    """The sentences an interrupted run with the same model and methods already did."""
    if not lines_path.exists():
        return []
    try:
        records = [json.loads(line) for line in lines_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except ValueError as err:
        raise UsageError(f"{lines_path} is not a run's per-sentence file ({err}); pass --restart") from None
    if records and (records[0].get("model") != model or records[0].get("methods_run") != methods):
        raise UsageError(f"{lines_path} holds a run with another model or methods; pass --restart")
    return records


if __name__ == "__main__":
    sys.exit(main())
