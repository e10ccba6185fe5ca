"""Does TracIn mean anything? Two checks of the influence scores, each writing a JSON summary.

    python -m provenance.validate self lstm-zh-en --pairs 200          # pairs queried against themselves
    python -m provenance.validate removal configs/lstm_zh_en.toml --outputs 40 --k 10 \\
        --set model.embed_dim=128 --set model.hidden_size=256 --set train.max_epochs=4

``self``: each training pair, queried with its own training loss, should rank itself among its top proponents far
more often than chance (rank 1 of 26k by chance: 0.004%). ``removal`` (Pruthi et al. 2020, §4; Koh & Liang 2017):
train a model keeping snapshots, take the top-k proponents of a set of test outputs, retrain from scratch without
them and, separately, without as many random pairs; if the scores mean what they say, the outputs' log-probabilities
drop more without the proponents. Same seed, same config, same split, the base model's tokenizers: only the
removed pairs differ.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.files import write_json
from common.paths import REPO_ROOT
from models.sources import ROOTS_ENV
from provenance.data import training_set
from provenance.tracin import _features, influence, self_influence

OUT = REPO_ROOT / "evaluations" / "provenance"


def run_self(args: argparse.Namespace) -> dict[str, Any]:
    from models import load_model

    lm = load_model(args.model)
    n = len(training_set(lm))
    pairs = np.random.default_rng(args.seed).choice(n, size=min(args.pairs, n), replace=False).tolist()
    t0 = time.perf_counter()
    rows = self_influence(lm, pairs).to_dict("records")
    ranks = np.array([r["rank"] for r in rows])
    return {
        "model": args.model,
        "pairs": len(rows),
        "training_pairs": n,
        "rank1": float((ranks == 1).mean()),
        "top10": float((ranks <= 10).mean()),
        "median_rank": float(np.median(ranks)),
        "chance_top10": 10 / n,
        "seconds": round(time.perf_counter() - t0, 1),
        "rows": rows,
    }


# --- removal ---------------------------------------------------------------------------------------------------


def _train(config: str, overrides: list[str], run_dir: Path, exclude: Path | None) -> Path:
    from training.config import load_config
    from training.export import export_run
    from training.trainer import Trainer

    extra = (
        [f"data.exclude={exclude}", f"tokenizer.from_folder={run_dir.parent / 'base' / 'export'}"] if exclude else []
    )
    cfg = load_config(config, [*overrides, *extra])
    out = run_dir / "export"
    if (out / "model.safetensors").exists():  # an interrupted experiment resumes where it stopped
        return out
    trainer = Trainer(cfg, run_dir)
    trainer.fit()
    export_run(trainer, out, test=False)
    return out


def _logprob(lm: Any, src: list[int], tgt: list[int], t: int) -> float:
    _, logits = _features(lm.model, [src], [tgt], lm.src_tokenizer.pad_token_id or 0)
    return float(logits[0][t].float().log_softmax(-1)[tgt[t]])


def _outputs(lm: Any, n: int) -> list[tuple[str, int]]:
    """(test sentence, output position) for the first ``n`` test sentences with a content word in the output: the
    first alphabetic token of three letters or more in the model's greedy translation."""
    from explain import translate
    from training.config import config_from_dict
    from training.corpora import load_splits

    cfg = config_from_dict(training_set(lm).config)
    d = cfg.data
    test = load_splits(d.corpus, d.src_lang, d.tgt_lang, d.val_size, d.test_size, d.split_seed, d.max_chars).test
    chosen = []
    for pair in test:
        tr = translate(lm, pair.src)
        toks = lm.tgt_tokenizer.convert_ids_to_tokens(list(tr.tgt_ids))
        t = next((j for j, x in enumerate(toks) if x.lstrip("▁").isalpha() and len(x.lstrip("▁")) >= 3), None)
        if t is not None:
            chosen.append((pair.src, t))
        if len(chosen) == n:
            break
    return chosen


def run_removal(args: argparse.Namespace) -> dict[str, Any]:
    from explain import translate
    from models import load_model

    work = Path(args.work).resolve()
    os.environ[ROOTS_ENV] = os.pathsep.join(filter(None, [os.environ.get(ROOTS_ENV), str(work)]))  # to load its models
    overrides = [*args.set, f"train.tracin_snapshots={args.snapshots}", "train.early_stopping=0"]
    t0 = time.perf_counter()
    base_dir = _train(args.config, overrides, work / "base", None)
    base = load_model(str(base_dir))
    outputs = _outputs(base, args.outputs)
    fixed = [(list(translate(base, s).src_ids), list(translate(base, s).tgt_ids), t) for s, t in outputs]
    proponents: set[int] = set()
    per_output = []
    for (src_text, t), (_, tgt, _) in zip(outputs, fixed, strict=True):
        inf = influence(base, src_text, t, output=tgt)
        top = inf.proponents(args.k).pair.tolist()
        proponents.update(top)
        per_output.append({"source": src_text, "token": inf.token, "proponents": top})
    n_train = len(training_set(base))
    rng = np.random.default_rng(args.seed)
    others = np.setdiff1d(np.arange(n_train), sorted(proponents))
    random_pairs = sorted(rng.choice(others, size=len(proponents), replace=False).tolist())
    work.mkdir(parents=True, exist_ok=True)
    write_json(work / "proponents.json", sorted(proponents))
    write_json(work / "random.json", random_pairs)
    tracin_s = time.perf_counter() - t0
    logps: dict[str, list[float]] = {"full": [_logprob(base, s, g, t) for s, g, t in fixed]}
    for name in ("proponents", "random"):
        folder = _train(args.config, overrides, work / f"without-{name}", work / f"{name}.json")
        lm = load_model(str(folder))
        logps[name] = [_logprob(lm, s, g, t) for s, g, t in fixed]
    full = np.array(logps["full"])
    drop = {k: full - np.array(v) for k, v in logps.items() if k != "full"}
    for row, a, b in zip(per_output, drop["proponents"], drop["random"], strict=True):
        row.update({"drop_without_proponents": round(float(a), 4), "drop_without_random": round(float(b), 4)})
    return {
        "config": args.config,
        "overrides": overrides,
        "outputs": len(fixed),
        "k": args.k,
        "removed": len(proponents),
        "training_pairs": n_train,
        "mean_drop_without_proponents": round(float(drop["proponents"].mean()), 4),
        "mean_drop_without_random": round(float(drop["random"].mean()), 4),
        "sem_proponents": round(float(drop["proponents"].std(ddof=1) / np.sqrt(len(full))), 4),
        "sem_random": round(float(drop["random"].std(ddof=1) / np.sqrt(len(full))), 4),
        "outputs_dropping_more_without_proponents": round(float((drop["proponents"] > drop["random"]).mean()), 3),
        "tracin_seconds": round(tracin_s, 1),
        "total_seconds": round(time.perf_counter() - t0, 1),
        "per_output": per_output,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m provenance.validate", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="check", required=True)
    s = sub.add_parser("self", help="training pairs queried against themselves")
    s.add_argument("model", help="a Lantern model with TracIn snapshots, e.g. lstm-zh-en")
    s.add_argument("--pairs", type=int, default=200)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", default=None, help="JSON summary (default evaluations/provenance/self-<model>.json)")
    r = sub.add_parser("removal", help="retrain without the top proponents vs without random pairs")
    r.add_argument("config", help="TOML preset of the (small) model to train, e.g. configs/lstm_zh_en.toml")
    r.add_argument("--outputs", type=int, default=40, help="test outputs whose proponents are removed")
    r.add_argument("--k", type=int, default=10, help="proponents removed per output")
    r.add_argument("--snapshots", type=int, default=4, help="TracIn snapshots of the base model (end of epochs)")
    r.add_argument("--seed", type=int, default=0, help="seed of the random removal")
    r.add_argument("--work", default=str(REPO_ROOT / "runs" / "removal"), help="folder for the three runs")
    r.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="config overrides")
    r.add_argument("--out", default=str(OUT / "removal.json"))
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    result = run_self(args) if args.check == "self" else run_removal(args)
    out = Path(args.out or OUT / f"self-{args.model}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, result)
    print(json.dumps({k: v for k, v in result.items() if k not in ("rows", "per_output")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
