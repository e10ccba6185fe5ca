"""Speed of the Training data page's queries, each beside what it would cost without Lantern's index, in one run.

- Exact evidence: an n-gram over the training split by the flat-array index (``provenance.evidence.find_pairs``)
  against a plain Python scan of the token lists, on Lantern's smallest and largest corpora.
- TracIn of one output token: the precomputed retrieval index plus exact re-ranking (``provenance.tracin``) against
  scoring every training pair exactly (no index) and Captum's ``TracInCP`` on a sample (per pair, all parameters).
- The one-off costs: building the index (time, disk) and loading it in a new process.

    python -m bench.provenance            # -> bench/provenance.md
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import date
from pathlib import Path

from bench.attribution import machine
from explain.generation import translate
from models.loading import load_model
from models.threads import configure
from provenance.data import training_set
from provenance.evidence import find_pairs

QUERIES = {"lstm-zh-en": ["京", "东京", "我爱"], "transformer-en-fr": ["Tokyo", "the", "I love"]}


def timed(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def plain_scan(rows: list[list[int]], ids: list[int]) -> int:
    n = len(ids)
    return sum(any(r[j : j + n] == ids for j in range(len(r) - n + 1)) for r in rows)


def evidence_rows() -> list[str]:
    out = [
        "| model | training pairs | query | pairs found | Lantern (ms) | plain scan (ms) | speed-up |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, queries in QUERIES.items():
        lm = load_model(name)
        ts = training_set(lm)
        tok = lm.src_tokenizer
        rows = [
            r.tolist()
            for r in (ts.source.ids[a:b] for a, b in zip(ts.source.starts[:-1], ts.source.starts[1:], strict=True))
        ]
        for q in queries:
            ids = tok(q, add_special_tokens=False).input_ids
            found = find_pairs(lm, q).n_pairs
            assert found == plain_scan(rows, ids), q
            ours = timed(lambda lm=lm, q=q: find_pairs(lm, q))
            scan = timed(lambda ids=ids, rows=rows: plain_scan(rows, ids), repeat=2)
            out.append(
                f"| {name} | {len(ts):,} | {q} | {found:,} | {ours * 1000:.1f} | {scan * 1000:.0f} "
                f"| {scan / ours:.0f}× |"
            )
    return out


def tracin_rows(name: str, text: str, token: str, captum_pairs: int) -> list[str]:
    from provenance.tracin import (
        RANK,
        TOP,
        _cache_path,
        exact_scores,
        influence,
        load_snapshot,
        precompute,
        snapshots,
    )

    lm = load_model(name)
    ts = training_set(lm)
    path = _cache_path(lm, snapshots(lm), TOP, RANK)
    fresh = not path.exists()
    start = time.perf_counter()
    proj = precompute(lm)
    built = proj.seconds if not fresh else time.perf_counter() - start
    tr = translate(lm, text)
    influence(lm, tr, token)  # warm: snapshots loaded once per process, as in the app
    query = timed(lambda: influence(lm, tr, token), repeat=3)
    t = influence(lm, tr, token).position
    models = [load_snapshot(s) for s in snapshots(lm)]
    start = time.perf_counter()
    exact_scores(lm, list(range(len(ts))), list(tr.src_ids), list(tr.tgt_ids), t, models)
    exhaustive = time.perf_counter() - start
    captum_s = captum_per_pair(lm, tr, t, captum_pairs) * len(ts)
    return [
        f"| {name} | {len(ts):,} | {len(snapshots(lm))} | {built:.0f} s ({'built now' if fresh else 'as built'}) | "
        f"{path.stat().st_size / 1e6:.0f} MB | {query:.2f} | {exhaustive:.1f} ({exhaustive / query:.0f}×) | "
        f"{captum_s:.0f} ({captum_s / query:.0f}×) |"
    ]


def captum_per_pair(lm, tr, t: int, n: int) -> float:
    """Seconds per training pair of Captum's TracInCP over all parameters (n pairs, every snapshot)."""
    import torch
    from captum.influence import TracInCP
    from torch import nn

    from provenance.tracin import load_snapshot, snapshots

    snaps = snapshots(lm)
    ts = training_set(lm)

    class Wrapped(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = load_snapshot(snaps[0])
            for p in self.m.parameters():
                p.requires_grad_(True)

        def forward(self, ids, mask, dec):
            return self.m(input_ids=ids, attention_mask=mask, decoder_input_ids=dec).logits

    class Loss(nn.Module):
        reduction = "none"

        def forward(self, logits, labels):
            loss = nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none")
            return loss.view(labels.shape).sum(-1)

    def batch(pairs, keep=None):
        src = [lm.src_tokenizer(p[0]).input_ids for p in pairs]
        tgt = [lm.tgt_tokenizer(p[1]).input_ids for p in pairs]
        s_len, t_len = max(map(len, src)), max(map(len, tgt))
        ids = torch.zeros(len(src), s_len, dtype=torch.long)
        mask, dec = torch.zeros_like(ids), torch.zeros(len(src), t_len, dtype=torch.long)
        labels = torch.full((len(src), t_len), -100)
        for i, (s, g) in enumerate(zip(src, tgt, strict=True)):
            ids[i, : len(s)], mask[i, : len(s)] = torch.tensor(s), 1
            dec[i, : len(g)] = torch.tensor([lm.model.config.decoder_start_token_id, *g[:-1]])
            labels[i, : len(g)] = torch.tensor(g)
        return ids, mask, dec, labels

    def load(model, path):
        model.m = load_snapshot(snaps[int(path)])
        for p in model.m.parameters():
            p.requires_grad_(True)
        return snaps[int(path)].lr

    train = torch.utils.data.TensorDataset(*batch(list(zip(ts.src[:n], ts.tgt[:n], strict=True))))
    ids, mask, dec, labels = batch([(tr.src_text, lm.tgt_tokenizer.decode(tr.tgt_ids, skip_special_tokens=True))])
    labels[:, [j for j in range(labels.shape[1]) if j != t]] = -100
    model = Wrapped()
    tracin = TracInCP(
        model, train, [str(i) for i in range(len(snaps))], checkpoints_load_func=load, loss_fn=Loss(), batch_size=16
    )
    start = time.perf_counter()
    tracin.influence((ids, mask, dec, labels))
    for s in snaps:  # leave the shared snapshots frozen, as the rest of Lantern expects
        for p in load_snapshot(s).parameters():
            p.requires_grad_(False)
    return (time.perf_counter() - start) / n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.provenance", description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--captum-pairs", type=int, default=200)
    ap.add_argument("--out", default=str(Path(__file__).with_name("provenance.md")))
    args = ap.parse_args(argv)
    configure(fixed=args.threads)
    lines = [
        "# Training data queries: speed",
        "",
        f"{machine()}, {args.threads} torch threads, {date.today()}; `python -m bench.provenance`.",
        "",
        "## Exact evidence (median of 5; the plain scan, of 2)",
        "",
        *evidence_rows(),
        "",
        "## TracIn of one output token (of 我爱北京天安门: the LSTM's “Tokyo”, the Transformer's “Hokkaido”)",
        "",
        "Query: retrieval over every training pair and exact re-ranking of the 100 best and 100 worst (median of 3, "
        "snapshots already loaded as in the app). Without the index: the same exact scores for every training "
        f"pair. Captum's `TracInCP` (all parameters, per-pair gradients) measured on {args.captum_pairs} pairs "
        "and scaled to the whole split.",
        "",
        "| model | training pairs | snapshots | index build (once) | index on disk | query (s) "
        "| exact, every pair (s) | Captum TracInCP, every pair (s) |",
        "|---|---|---|---|---|---|---|---|",
        *tracin_rows("lstm-zh-en", "我爱北京天安门", "Tokyo", args.captum_pairs),
        *tracin_rows("transformer-zh-en", "我爱北京天安门", "Hokkaido", args.captum_pairs),
        "",
    ]
    Path(args.out).write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
