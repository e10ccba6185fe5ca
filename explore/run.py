"""Run a model over a dataset: its output for every sentence and per-example metrics, as one table.

    python -m explore.run --model transformer-en-fr --dataset test:transformer-en-fr
    python -m explore.run --model transformer-en-fr --dataset winomt --second <another en→fr model>
    python -m explore.run --model lstm-zh-en --tsv my-pairs.tsv --src-lang zh --tgt-lang en

Per sentence: the greedy output (what the Translate page shows), sentence BLEU and chrF against the reference when
there is one, the mean and the lowest probability the model gave its own output tokens, the mean entropy of its
next-token distributions, the count of source tokens it cannot read (unknown), source and output lengths, and with
``second`` the other model's output and how far the two disagree (100 − chrF between the outputs). Encoder–decoder
models decode in length-sorted batches (checked equal to one-by-one decoding in the tests); decoder-only models one
prompt at a time. The table and a summary JSON go to ``--out`` (default ``cache/explore/<model>-<dataset hash>/``),
where the app's Dataset explorer page finds them.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sacrebleu
import torch

from common.files import write_json
from common.paths import cache_root
from explore.sets import Dataset, DatasetError, dataset, from_upload
from models.adapter import LanternModel
from models.decoding import Decoding, InputError
from models.registry import ModelSpec
from models.threads import computation, refresh

log = logging.getLogger("lantern.explore")
TABLE = "table.csv"
SUMMARY = "summary.json"
PROGRESS = "progress.json"
TEXT_COLUMNS = (
    "source",
    "output",
    "reference",
    "note",
    "second output",
    "translated profession",
    "profession words",
)
BATCH = 32  # sentences per batch: measured on 2 cores, 16–64 are within 10 % of each other for Lantern's models

Progress = Callable[[int, int], None]  # (sentences done, total)


class Cancelled(RuntimeError):
    """The run was cancelled between batches; nothing partial is kept."""


@dataclass(frozen=True)
class Output:
    ids: list[int]  # generated ids, ending with the end id unless the length limit cut them
    logprobs: np.ndarray  # [T] log p of each generated id, teacher-forced (as the Translate page reads them)
    entropies: np.ndarray  # [T] entropy (nats) of each step's next-token distribution


def _padded(rows: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    return ids, mask


def _step_stats(logits: torch.Tensor, chosen: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    logp = torch.log_softmax(logits.float(), dim=-1)
    picked = logp.gather(-1, chosen.unsqueeze(-1)).squeeze(-1)
    entropy = -(logp.exp() * logp).sum(-1)
    return picked, entropy


@torch.no_grad()
def _seq2seq_batch(lm: LanternModel, src_rows: list[list[int]], decoding: Decoding) -> list[Output]:
    """Greedy outputs of a batch of encoded sources, then one teacher-forced pass for their probabilities."""
    pad = lm.src_tokenizer.pad_token_id
    pad = pad if pad is not None else lm.end_id
    ids, mask = _padded(src_rows, pad)
    ids, mask = ids.to(lm.device), mask.to(lm.device)
    kwargs = {**decoding.generate_kwargs(), "max_time": None}  # a background run is bounded by its cancel button
    tgt_pad = lm.tgt_tokenizer.pad_token_id if lm.tgt_tokenizer.pad_token_id is not None else lm.end_id
    with lm.lock:
        gen = lm.model.generate(
            input_ids=ids, attention_mask=mask, pad_token_id=tgt_pad, eos_token_id=lm.stops(), **kwargs
        )
    outs = [lm.cut(row[1:]) for row in gen.tolist()]
    dec_rows = [lm.decoder_inputs(o) if o else [lm.model.config.decoder_start_token_id] for o in outs]
    dec, dec_mask = _padded(dec_rows, tgt_pad)
    with lm.lock:
        logits = lm.model(
            input_ids=ids,
            attention_mask=mask,
            decoder_input_ids=dec.to(lm.device),
            decoder_attention_mask=dec_mask.to(lm.device),
            return_dict=True,
        ).logits
    chosen = torch.full(dec.shape, 0, dtype=torch.long)
    for i, o in enumerate(outs):
        chosen[i, : len(o)] = torch.tensor(o, dtype=torch.long)
    picked, entropy = _step_stats(logits, chosen.to(logits.device))
    return [
        Output(o, picked[i, : len(o)].cpu().numpy(), entropy[i, : len(o)].cpu().numpy()) for i, o in enumerate(outs)
    ]


@torch.no_grad()
def _one(lm: LanternModel, src_ids: list[int], decoding: Decoding) -> Output:
    """One prompt at a time (decoder-only models): ``generate_ids`` and ``score``, as the Translate page does."""
    out = lm.generate_ids(src_ids, decoding)
    if not out:
        return Output([], np.zeros(0), np.zeros(0))
    logits = lm.score(src_ids, out).logits[0]
    picked, entropy = _step_stats(logits, torch.tensor(out, device=logits.device))
    return Output(out, picked.cpu().numpy(), entropy.cpu().numpy())


def generate_all(
    lm: LanternModel,
    sources: list[list[int]],
    decoding: Decoding | None = None,
    batch_size: int = BATCH,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
) -> list[Output]:
    """The outputs of many encoded sources (``lm.encode_source(text).ids``), in input order."""
    decoding = decoding or Decoding()
    if decoding.do_sample or decoding.num_beams != 1:
        raise InputError("the dataset explorer decodes greedily (one output per sentence, the same every run)")
    results: list[Output | None] = [None] * len(sources)
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    size = batch_size if lm.is_seq2seq() else 1
    done = 0
    with computation():
        for start in range(0, len(order), size):
            if cancel is not None and cancel():
                raise Cancelled(f"cancelled after {done:,} of {len(sources):,} sentences")
            idx = order[start : start + size]
            if lm.is_seq2seq():
                outs = _seq2seq_batch(lm, [sources[i] for i in idx], decoding)
            else:
                outs = [_one(lm, sources[idx[0]], decoding)]
            for i, o in zip(idx, outs, strict=True):
                results[i] = o
            done += len(idx)
            refresh()
            if progress is not None:
                progress(done, len(sources))
    return [r for r in results if r is not None]


def _sentence_scores(hyp: str, ref: str, tgt_lang: str | None) -> tuple[float, float]:
    bleu = sacrebleu.sentence_bleu(hyp, [ref], tokenize="zh" if tgt_lang == "zh" else "13a")
    return bleu.score, sacrebleu.sentence_chrf(hyp, [ref]).score


def explore(
    lm: LanternModel,
    ds: Dataset,
    second: LanternModel | None = None,
    batch_size: int = BATCH,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
    tgt_lang: str | None = None,
) -> pd.DataFrame:
    """One row per sentence of ``ds``: the model's output and its per-example metrics (see the module doc)."""
    encodings = []
    for text in ds.sources:
        try:
            encodings.append(lm.encode_source(text))
        except InputError:  # an empty or over-long line: kept as a row that says so
            encodings.append(None)
    ok = [i for i, e in enumerate(encodings) if e is not None]
    total = len(ok) * (2 if second is not None else 1)

    def part(offset: int) -> Progress | None:
        return None if progress is None else (lambda done, _n: progress(offset + done, total))

    probing = bias_probe_applies(lm, ds, tgt_lang)
    total += len(ds) if probing else 0
    outs = generate_all(lm, [encodings[i].ids for i in ok], None, batch_size, part(0), cancel)
    by_row = dict(zip(ok, outs, strict=True))
    other: dict[int, str] = {}
    if second is not None:
        enc2 = {i: second.encode_source(ds.sources[i]).ids for i in ok}
        outs2 = generate_all(second, list(enc2.values()), None, batch_size, part(len(ok)), cancel)
        other = {i: second.decode(o.ids) for i, o in zip(enc2, outs2, strict=True)}
    unk = lm.src_tokenizer.unk_token_id
    rows = []
    for i, text in enumerate(ds.sources):
        enc, out = encodings[i], by_row.get(i)
        row: dict[str, Any] = {"id": i, "source": text}
        if enc is None or out is None:
            row.update(output="", note="empty or too long for the model")
            rows.append(row)
            continue
        hyp = lm.decode(out.ids)
        probs = np.exp(out.logprobs)
        n_src = enc.n_tokens
        row.update(
            output=hyp,
            note="input cut to the model's limit" if enc.truncated else "",
            **({"reference": ds.references[i]} if ds.references is not None else {}),
            **{k: v[i] for k, v in ds.extra.items()},
            **{
                "source tokens": n_src,
                "source words": len(text.split()),
                "output tokens": len(out.ids),
                "unknown tokens": sum(1 for t in enc.ids if unk is not None and t == unk),
                "mean probability": float(probs.mean()) if len(probs) else math.nan,
                "min probability": float(probs.min()) if len(probs) else math.nan,
                "mean entropy": float(out.entropies.mean()) if len(probs) else math.nan,
            },
        )
        if ds.references is not None:
            row["BLEU"], row["chrF"] = _sentence_scores(hyp, ds.references[i], ds.tgt_lang or tgt_lang)
        if second is not None:
            row["second output"] = other[i]
            row["disagreement"] = 100.0 - sacrebleu.sentence_chrf(hyp, [other[i]]).score
        rows.append(row)
    frame = pd.DataFrame(rows)
    front = ["id", "source", "output", *(["reference"] if ds.references is not None else [])]
    if probing:
        frame = with_bias_probe(lm, frame, part(total - len(ds)), cancel)
    rest = [c for c in frame.columns if c not in front and c != "note"]
    return frame[front + rest + ["note"]]


BIAS_COLUMNS = {  # the explorer's names of explore.winomt.probe's columns
    "located": "translated profession",
    "located_words": "profession words",
    "predicted": "predicted gender",
    "correct": "gender correct",
    "pronoun_share": "pronoun share",
}


def bias_probe_applies(lm: LanternModel, ds: Dataset, tgt_lang: str | None) -> bool:
    """WinoMT into French by a translation model: the gender reader (spaCy's French pipeline) can read the output."""
    return ds.name.split("[")[0] == "winomt" and tgt_lang == "fr" and (lm.is_seq2seq() or lm.template is not None)


def with_bias_probe(
    lm: LanternModel, frame: pd.DataFrame, progress: Progress | None, cancel: Callable[[], bool] | None
) -> pd.DataFrame:
    """The WinoMT probe's columns (``explore.winomt.probe``: the translated profession, its gender, whether it is the
    gold one, the pronoun's share of the attribution) added to an explorer table of WinoMT's first rows."""
    from explore.winomt import probe, read_winomt

    items = read_winomt()[: len(frame)]
    n = len(items)
    rows = probe(lm, items, None if progress is None else (lambda f: progress(round(f * n), n)), cancel)
    if list(rows["output"]) != list(frame["output"]):  # both are the app's greedy output; a mismatch is a bug
        raise RuntimeError("the bias probe's translations differ from the explorer's")
    extra = rows[list(BIAS_COLUMNS)].rename(columns=BIAS_COLUMNS)
    return pd.concat([frame.reset_index(drop=True), extra.reset_index(drop=True)], axis=1)


def summary(frame: pd.DataFrame, ds: Dataset, model: str, seconds: float, tgt_lang: str | None) -> dict[str, Any]:
    """Corpus scores (sacreBLEU, on the rows with an output) and the means of the per-example metrics."""
    done = frame[frame["output"] != ""]
    out: dict[str, Any] = {
        "model": model,
        "dataset": ds.name,
        "title": ds.title,
        "sentences": len(frame),
        "skipped": len(frame) - len(done),
        "seconds": round(seconds, 2),
        "means": {
            c: round(float(done[c].mean()), 4)
            for c in done.columns
            if c not in ("id", "profession index") and pd.api.types.is_numeric_dtype(done[c])
        },
    }
    if "predicted gender" in frame:
        from explore.winomt import PUBLISHED_FR, bias_scores

        back = {v: k for k, v in BIAS_COLUMNS.items()} | {"gold gender": "gold"}
        out["bias"] = bias_scores(frame.rename(columns=back))
        out["bias_published_fr"] = PUBLISHED_FR
    if ds.references is not None and len(done):
        bleu = sacrebleu.BLEU(tokenize="zh" if tgt_lang == "zh" else "13a")
        refs = [list(done["reference"])]
        out["bleu"] = round(bleu.corpus_score(list(done["output"]), refs).score, 2)
        out["chrf"] = round(sacrebleu.CHRF().corpus_score(list(done["output"]), refs).score, 2)
        out["bleu_signature"] = str(bleu.get_signature())
    return out


def run_folder(model_key: str, ds: Dataset, second: str = "") -> Path:
    """Where a run of ``model_key`` over ``ds`` (beside ``second``) is kept: the app's cache of explorer runs."""
    key = model_key + (f"-vs-{second}" if second else "")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in key)[:120]
    return runs_root() / f"{safe}-{ds.fingerprint()}"


def runs_root() -> Path:
    return cache_root() / "explore"


def save(folder: Path, frame: pd.DataFrame, info: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (TABLE + ".tmp")
    frame.to_csv(tmp, index=False)
    tmp.replace(folder / TABLE)
    write_json(folder / SUMMARY, info)


def load(folder: Path) -> tuple[pd.DataFrame, dict[str, Any]] | None:
    """A finished run (table, summary), or None."""
    import json

    if not (folder / TABLE).is_file() or not (folder / SUMMARY).is_file():
        return None
    frame = pd.read_csv(folder / TABLE, keep_default_na=False, na_values=[""])
    for col in frame.columns:  # text columns (an empty cell reads back as NaN; an all-empty column as float)
        if col in TEXT_COLUMNS or frame[col].dtype == object or frame[col].isna().all():
            frame[col] = frame[col].astype(object).where(frame[col].notna(), "").astype(str)
    return frame, json.loads((folder / SUMMARY).read_text(encoding="utf-8"))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m explore.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="a shipped model, a Lantern checkpoint folder or a hub id")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--dataset", help="test:<model>, gold-align-en-fr or winomt")
    what.add_argument("--tsv", help="a file of source<TAB>reference lines")
    p.add_argument("--src-lang", default="", help="with --tsv: the source language (default: the model's)")
    p.add_argument("--tgt-lang", default="", help="with --tsv: the reference language (default: the model's)")
    p.add_argument("--second", default="", help="a second model of the same direction: its output and disagreement")
    p.add_argument("--limit", type=int, default=0, help="only the first N sentences")
    p.add_argument("--batch-size", type=int, default=BATCH)
    p.add_argument("--out", default="", help="folder for table.csv and summary.json (default: the app's cache)")
    p.add_argument("--progress", action="store_true", help="write progress.json in the folder as batches finish")
    return p


class UsageError(ValueError):
    """A command-line argument that cannot be used; the message says why."""


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from models.decoding import CheckpointError, PretrainedModelError
    from models.loading import load_model
    from models.registry import resolve
    from training.corpora import CorpusFormatError, DataNotFoundError

    try:
        if args.limit < 0 or args.batch_size < 1:
            raise UsageError("--limit must be ≥ 0 and --batch-size ≥ 1")
        spec = resolve(args.model)
        if args.tsv:
            path = Path(args.tsv)
            if not path.is_file():
                raise UsageError(f"--tsv {path} is not a file")
            ds = from_upload(path.read_bytes(), args.src_lang or spec.src_lang, args.tgt_lang or spec.tgt_lang)
        else:
            ds = dataset(args.dataset)
        check_fits(ds, spec.src_lang, spec.decoder_only)
        if args.limit:
            ds = ds.head(args.limit)
        lm = load_model(spec)
        second = load_model(resolve(args.second)) if args.second else None
    except (UsageError, DatasetError, InputError, CorpusFormatError, DataNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (CheckpointError, PretrainedModelError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    folder = Path(args.out) if args.out else run_folder(model_key(spec), ds, args.second)
    folder.mkdir(parents=True, exist_ok=True)

    def report(done: int, total: int) -> None:
        if args.progress:
            write_json(folder / PROGRESS, {"done": done, "total": total, "time": time.time()})

    start = time.perf_counter()
    frame = explore(lm, ds, second, args.batch_size, report, tgt_lang=spec.tgt_lang)
    seconds = time.perf_counter() - start
    info = summary(frame, ds, spec.name, seconds, ds.tgt_lang or spec.tgt_lang)
    save(folder, frame, info)
    log.info("%d sentences in %.1f s -> %s", len(frame), seconds, folder)
    return 0


def check_fits(ds: Dataset, src_lang: str, decoder_only: bool) -> None:
    """A translation model reads its own source language; a decoder-only model takes any prompt."""
    if not decoder_only and src_lang and ds.src_lang and ds.src_lang != src_lang:
        raise DatasetError(f"{ds.title} is in '{ds.src_lang}' but the model translates from '{src_lang}'")


def model_key(spec: ModelSpec) -> str:
    """The model's name and its weights' size and time: a retrained model is a new cache entry."""
    weights = Path(spec.source) / "model.safetensors"
    if weights.is_file():
        st = weights.stat()
        return f"{spec.name}-{st.st_size:x}{int(st.st_mtime):x}"
    return spec.name


if __name__ == "__main__":
    sys.exit(main())
