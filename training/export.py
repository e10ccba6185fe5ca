"""Exporting a finished run: the best model as an fp16 checkpoint folder, scored and documented.

The checkpoint is reloaded from the written files before it is scored, so the card's numbers are those
of the shipped file (see ``models.folder`` for what the folder holds).
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from common.files import atomic_dir, write_json
from models.folder import HISTORY_FILE, META_FILE, TRACIN_DIR, TRACIN_FILE, TRAINING_CONFIG, TRAINING_COUNTS
from models.loading import load_seq2seq_folder
from training.checkpoint import save_model_dir
from training.corpora import multi30k_tokenized
from training.model_card import write_model_card
from training.scoring import corpus_scores, moses_tokenized_bleu, translate_texts
from training.tokenization import tokenizer_stats
from training.trainer import Trainer

ARCH_NAMES = {"lstm": "LSTM", "transformer": "Transformer"}


def write_meta(folder: Path, title: str, src_lang: str, tgt_lang: str, **extra: str) -> None:
    """``lantern.json``: what the model picker shows (title, languages, corpus)."""
    meta = {"title": title, "src_lang": src_lang, "tgt_lang": tgt_lang, **extra}
    (Path(folder) / META_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")


def _adapted(source: str) -> str:
    """What a model's title adds when it was adapted (``data.adapt_source``): the in-domain set's folder name."""
    return f", adapted to {Path(source).parent.name or Path(source).stem}" if source else ""


def token_counts(trainer: Trainer) -> dict[str, dict[str, int]]:
    """How often each token occurs in the training pairs, per side (what the model had to learn from)."""
    counts: dict[str, Counter[int]] = {"source": Counter(), "target": Counter()}
    for ex in trainer.train_examples:
        counts["source"].update(ex.src_ids)
        counts["target"].update(ex.tgt_ids)
    toks = {"source": trainer.src_tok, "target": trainer.tgt_tok}
    return {
        side: dict(zip(toks[side].convert_ids_to_tokens(list(c)), c.values(), strict=True))
        for side, c in counts.items()
    }


def export_snapshots(trainer: Trainer, folder: Path) -> list[dict[str, Any]]:
    """The run's TracIn snapshots up to the exported (best) model, in ``folder/tracin/``.

    The snapshot taken at the best step holds the exported weights; it is not copied again but points at
    the folder's own ``model.safetensors`` (``"weights": "."``).
    """
    src = trainer.run_dir / TRACIN_DIR
    if not (src / TRACIN_FILE).exists():
        return []
    best = trainer.state["best_step"]
    kept = [s for s in json.loads((src / TRACIN_FILE).read_text()) if s["step"] <= best]
    for snap in kept:
        if snap["step"] == best:
            snap["weights"] = "."
        else:
            snap["weights"] = f"{TRACIN_DIR}/step-{snap['step']}"
            shutil.copytree(src / f"step-{snap['step']}", folder / snap["weights"])
    if kept:
        (folder / TRACIN_DIR).mkdir(exist_ok=True)
        write_json(folder / TRACIN_DIR / TRACIN_FILE, kept)
    return kept


def stop_reason(trainer: Trainer) -> str:
    """Why the run ended; inferred from its state for runs that ended before the reason was stored."""
    st, t = trainer.state, trainer.cfg.train
    if trainer.stop_reason or st.get("stop_reason"):
        return trainer.stop_reason or st["stop_reason"]
    if st["epoch"] >= t.max_epochs:
        return "max_epochs"
    if t.early_stopping and st["bad_evals"] >= t.early_stopping:
        return "early_stopping"
    if t.max_steps and st["step"] >= t.max_steps:
        return "max_steps"
    if t.max_minutes and st["elapsed_s"] / 60 >= t.max_minutes:
        return "max_minutes"
    return "interrupted"  # no limit reached: the process was killed before it could record why it ended


def export_run(trainer: Trainer, out_dir: Path, test: bool = True) -> dict[str, Any]:
    """Best model -> fp16 checkpoint in ``out_dir``; reload it, score the test split, write the card."""
    cfg, d = trainer.cfg, trainer.cfg.data
    best, _, _ = load_seq2seq_folder(trainer.run_dir / "best")
    with atomic_dir(Path(out_dir)) as tmp:
        save_model_dir(tmp, best, trainer.src_tok, trainer.tgt_tok, dtype=torch.float16)
        shutil.copy(trainer.run_dir / HISTORY_FILE, tmp / HISTORY_FILE)
        write_json(tmp / TRAINING_COUNTS, token_counts(trainer))
        write_json(tmp / TRAINING_CONFIG, cfg.as_dict())
        snapshots = export_snapshots(trainer, tmp)
        write_meta(
            tmp,
            title=f"{ARCH_NAMES[cfg.model.architecture]} {d.src_lang}→{d.tgt_lang} "
            f"({d.corpus}{_adapted(d.adapt_source)})",
            src_lang=d.src_lang,
            tgt_lang=d.tgt_lang,
            corpus=d.corpus,
        )
    model, src_tok, tgt_tok = load_seq2seq_folder(out_dir)
    info: dict[str, Any] = {
        "stop_reason": stop_reason(trainer),
        "dropped_too_long": trainer.dropped,
        "tracin": snapshots,
        "adaptation": getattr(trainer, "adaptation", {}),
    }
    if test:
        test_pairs = trainer.splits.test
        t0 = time.perf_counter()
        hyps = translate_texts(model, src_tok, tgt_tok, [p.src for p in test_pairs], num_beams=cfg.train.test_beams)
        info["test"] = corpus_scores(hyps, [p.tgt for p in test_pairs], d.tgt_lang)
        if d.corpus == "multi30k-en-de":  # also the literature's setup, in its own column
            info["test_tokenized"] = moses_tokenized_bleu(hyps, multi30k_tokenized("test", d.tgt_lang), d.tgt_lang)
        info["test"]["beams"] = cfg.train.test_beams
        info["test"]["decode_s"] = round(time.perf_counter() - t0, 1)
        info["test_samples"] = [
            {"src": p.src, "ref": p.tgt, "hyp": h} for p, h in list(zip(test_pairs, hyps, strict=True))[:8]
        ]
    info["tokenizers"] = {
        "source": tokenizer_stats(src_tok, [p.src for p in trainer.splits.val]),
        "target": tokenizer_stats(tgt_tok, [p.tgt for p in trainer.splits.val]),
    }
    write_model_card(Path(out_dir), cfg, trainer.splits, trainer.state, model, info)
    return info
