"""Train a translation model from a TOML preset.

    python -m models.train configs/lstm_zh_en.toml            # train, test, export to checkpoints/
    python -m models.train configs/lstm_zh_en.toml --resume   # continue an interrupted run
    python -m models.train configs/lstm_zh_en.toml --set train.max_steps=50 --set data.limit_train=500
    torchrun --nproc_per_node=2 -m models.train configs/lstm_zh_en.toml   # data parallel (gloo/NCCL)

The run folder (``runs/<name>/``) holds the tokenizers, ``last/`` (model + optimizer state, for
``--resume``), ``best/`` (best validation BLEU) and ``history.json``. At the end the best model is
exported in fp16 to ``checkpoints/<name>/``, reloaded from there and scored on the test split,
and a model card is written beside it, so the card's numbers are those of the shipped file.
"""

from __future__ import annotations

import argparse
import logging
import math
import random
import shutil
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerFast
from transformers import logging as hf_logging

from models import distributed
from models.batching import bucket_batches, encode_pairs, iterate
from models.checkpoint import (
    TRAINING_COUNTS,
    atomic_dir,
    existing_dir,
    load_trainer_state,
    save_model_dir,
    save_trainer_state,
    write_json,
)
from models.data import REPO_ROOT, Splits, load_splits, multi30k_tokenized
from models.lstm_attention import LstmAttnConfig, LstmAttnForConditionalGeneration
from models.model_card import write_model_card
from models.registry import write_meta
from models.scoring import corpus_scores, moses_tokenized_bleu, translate_texts
from models.tokenization import load_tokenizer, save_tokenizer, tokenizer_stats, train_tokenizer
from models.train_config import RunConfig, config_from_dict, load_config
from models.transformer import build_transformer

log = logging.getLogger("lantern.train")


ARCH_NAMES = {"lstm": "LSTM", "transformer": "Transformer"}


class TrainingStopped(RuntimeError):
    """Training cannot go on (NaN loss); the last good checkpoint is kept."""


def build_model(cfg: RunConfig, src_vocab: int, tgt_vocab: int) -> PreTrainedModel:
    m = cfg.model
    if m.architecture == "transformer":
        return build_transformer(m, src_vocab, tgt_vocab, shared_vocab=cfg.tokenizer.shared)
    config = LstmAttnConfig(
        src_vocab_size=src_vocab,
        tgt_vocab_size=tgt_vocab,
        embed_dim=m.embed_dim,
        hidden_size=m.hidden_size,
        encoder_layers=m.encoder_layers,
        decoder_layers=m.decoder_layers,
        attention_dim=m.attention_dim,
        dropout=m.dropout,
        max_source_tokens=m.max_source_tokens,
    )
    return LstmAttnForConditionalGeneration(config)


def _load_weights(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load a ``save_pretrained`` state dict back into a freshly built model.

    Hugging Face saves tied weights once (shared embeddings, an output layer tied to them) and leaves out
    fixed sinusoidal positions; those keys may be missing, anything else missing is an error.
    """
    missing, unexpected = model.load_state_dict(state, strict=False)
    params = dict(model.named_parameters(remove_duplicate=False))
    loaded = {params[k].data_ptr() for k in state if k in params}
    untied = [
        k
        for k in missing
        if "embed_positions" not in k and params.get(k) is not None and params[k].data_ptr() not in loaded
    ]
    if untied or unexpected:
        raise ValueError(f"checkpoint does not fit the model: missing {untied}, unexpected {unexpected}")


def lr_at(cfg: RunConfig, step: int, total_steps: int) -> float:
    """Learning rate before the plateau factor: linear warmup, then the chosen shape."""
    t = cfg.train
    warm = min(1.0, step / t.warmup_steps) if t.warmup_steps else 1.0
    if t.lr_schedule == "inverse_sqrt" and t.warmup_steps and step > t.warmup_steps:
        return t.lr * math.sqrt(t.warmup_steps / step)
    if t.lr_schedule == "cosine" and step > t.warmup_steps:
        frac = (step - t.warmup_steps) / max(1, total_steps - t.warmup_steps)
        return t.min_lr + 0.5 * (t.lr - t.min_lr) * (1 + math.cos(math.pi * min(1.0, frac)))
    return t.lr * warm


class Trainer:
    def __init__(self, cfg: RunConfig, run_dir: Path, resume: bool = False) -> None:
        self.cfg, self.run_dir = cfg, Path(run_dir)
        t = cfg.train
        random.seed(t.seed)
        torch.manual_seed(t.seed)
        if t.threads:
            torch.set_num_threads(t.threads)
        self.dist, self.device = distributed.setup(t.device)
        self.splits: Splits = load_splits(
            cfg.data.corpus,
            cfg.data.src_lang,
            cfg.data.tgt_lang,
            cfg.data.val_size,
            cfg.data.test_size,
            cfg.data.split_seed,
            cfg.data.max_chars,
        )
        if cfg.data.limit_train:
            self.splits.train = self.splits.train[: cfg.data.limit_train]
        self.last_dir = existing_dir(self.run_dir / "last") if resume else None
        if resume and self.last_dir is None:
            raise FileNotFoundError(f"--resume: no checkpoint under {self.run_dir / 'last'}")
        self.src_tok, self.tgt_tok = self._tokenizers()
        self.train_examples, self.dropped = encode_pairs(
            self.splits.train, self.src_tok, self.tgt_tok, cfg.data.max_tokens
        )
        self.model = build_model(cfg, len(self.src_tok), len(self.tgt_tok)).to(self.device)
        self.net = distributed.wrap(self.model, self.dist, self.device)  # what the training step calls
        if self.dist.active:  # same initial weights (DDP broadcasts them), different dropout masks per rank
            torch.manual_seed(t.seed + self.dist.rank)
        params = self.model.parameters()
        if t.optimizer == "adam":
            self.opt: torch.optim.Optimizer = torch.optim.Adam(
                params, lr=t.lr, betas=(0.9, t.adam_beta2), weight_decay=t.weight_decay
            )
        else:
            self.opt = torch.optim.SGD(params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)
        self.steps_per_epoch = math.ceil(len(self.train_examples) / t.batch_size) // self.dist.world
        self.total_steps = t.max_steps or t.max_epochs * self.steps_per_epoch
        self.state: dict[str, Any] = {
            "step": 0,
            "epoch": 0,
            "batch_in_epoch": 0,
            "best_bleu": -1.0,
            "best_step": 0,
            "bad_evals": 0,
            "plateau_scale": 1.0,
            "elapsed_s": 0.0,
            "history": [],
        }
        if self.last_dir is not None:
            self._restore(self.last_dir)
        self.stop_reason = ""
        self._interrupted = False

    # --- set-up ---------------------------------------------------------------------------

    def _tokenizers(self) -> tuple[PreTrainedTokenizerFast, PreTrainedTokenizerFast]:
        """Train (or, when resuming, reload) the tokenizers; with ``shared`` one serves both sides."""
        k = self.cfg.tokenizer
        src_dir, tgt_dir = self.run_dir / "source_tokenizer", self.run_dir / "target_tokenizer"
        if not self.dist.main and self.last_dir is None:  # rank 0 trains them; the others read its files
            distributed.barrier(self.dist)
        if self.last_dir is not None or not self.dist.main:
            src = load_tokenizer(src_dir)
            return src, src if k.shared else load_tokenizer(tgt_dir)
        train = self.splits.train
        if k.shared:  # one joint vocabulary from both sides, EOS on both (Marian's convention)
            texts = [p.src for p in train] + [p.tgt for p in train]
            src = tgt = train_tokenizer(texts, k.tgt_kind, k.tgt_vocab_size, k.tgt_min_frequency, add_eos=True)
        else:
            src = train_tokenizer([p.src for p in train], k.src_kind, k.src_vocab_size, k.src_min_frequency)
            tgt = train_tokenizer(
                [p.tgt for p in train], k.tgt_kind, k.tgt_vocab_size, k.tgt_min_frequency, add_eos=True
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        save_tokenizer(src, src_dir)
        if not k.shared:
            save_tokenizer(tgt, tgt_dir)
        distributed.barrier(self.dist)
        return src, tgt

    def _restore(self, folder: Path) -> None:
        saved = load_trainer_state(folder)
        before = config_from_dict(saved["config"])  # fills keys added since with their defaults
        if (before.model, before.data, before.tokenizer) != (self.cfg.model, self.cfg.data, self.cfg.tokenizer):
            raise ValueError(
                "--resume: the [model], [data] or [tokenizer] section differs from the interrupted run's; "
                "resume with the same config (only [train] settings may change)"
            )
        from safetensors.torch import load_file

        _load_weights(self.model, load_file(folder / "model.safetensors"))
        self.opt.load_state_dict(saved["optimizer"])
        torch.set_rng_state(saved["rng_torch"])
        random.setstate(saved["rng_python"])
        self.state = saved["state"]
        if self.dist.active and not self.dist.main:
            torch.manual_seed(self.cfg.train.seed + self.dist.rank + self.state["step"])
        log.info("resumed from %s at step %d", folder, self.state["step"])

    def _save_last(self, started: float | None = None) -> None:
        """Weights, optimizer and trainer state to ``last/`` (atomically).

        ``started``: when the current session began, so a run killed later resumes with the training
        time it had spent (``max_minutes`` and the model card's wall time stay true across resumes).
        """
        if not self.dist.main:
            return
        if not all(torch.isfinite(p).all() for p in self.model.parameters()):
            # the loss is computed before the update, so it can look fine while the weights are already gone
            raise TrainingStopped(
                f"the weights became non-finite by step {self.state['step']}; the last good checkpoint in "
                f"{self.run_dir / 'last'} is kept. Lower train.lr or raise clip_grad_norm."
            )
        with atomic_dir(self.run_dir / "last") as tmp:
            save_model_dir(tmp, self.model, self.src_tok, self.tgt_tok)
            save_trainer_state(
                tmp,
                {
                    "config": self.cfg.as_dict(),
                    "optimizer": self.opt.state_dict(),
                    "rng_torch": torch.get_rng_state(),
                    "rng_python": random.getstate(),
                    "state": (
                        self.state
                        if started is None
                        else {**self.state, "elapsed_s": self.state["elapsed_s"] + time.perf_counter() - started}
                    ),
                },
            )
        self._write_history()

    def _write_history(self) -> None:
        write_json(self.run_dir / "history.json", {"name": self.cfg.name, "records": self.state["history"]})

    # --- training -------------------------------------------------------------------------

    def _loss(self, batch: dict[str, torch.Tensor], smoothing: float) -> tuple[torch.Tensor, int]:
        batch = {k: v.to(self.device) for k, v in batch.items()}
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.train.amp == "bf16"):
            logits = self.net(
                input_ids=batch["input_ids"],
                attention_mask=batch["attention_mask"],
                decoder_input_ids=batch["decoder_input_ids"],
            ).logits
        labels = batch["labels"].flatten()
        loss = F.cross_entropy(logits.flatten(0, 1).float(), labels, ignore_index=-100, label_smoothing=smoothing)
        return loss, int(labels.ne(-100).sum())

    def _should_stop(self, started: float) -> bool:
        t = self.cfg.train
        if self._interrupted:
            self.stop_reason = "interrupted"
        elif t.max_steps and self.state["step"] >= t.max_steps:
            self.stop_reason = "max_steps"
        elif t.max_minutes and (self.state["elapsed_s"] + time.perf_counter() - started) / 60 >= t.max_minutes:
            self.stop_reason = "max_minutes"
        if distributed.agree(bool(self.stop_reason), self.dist) and not self.stop_reason:
            self.stop_reason = "stopped by another rank"
        return bool(self.stop_reason)

    def fit(self) -> str:
        """Train until a limit, early stopping or an interrupt; returns the stop reason."""
        t, st = self.cfg.train, self.state
        st.pop("stop_reason", None)  # a resumed run ends for its own reason, not the previous session's
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "_interrupted", True))
        self.model.train()
        bar = tqdm(
            total=self.total_steps,
            initial=st["step"],
            desc=self.cfg.name,
            unit="step",
            dynamic_ncols=True,
            mininterval=1 if sys.stderr.isatty() else 30,
            disable=not self.dist.main,
        )
        started, window_loss, window_tokens = time.perf_counter(), 0.0, 0
        self._write_progress(started)
        try:
            while st["epoch"] < t.max_epochs and not self._should_stop(started):
                batches = distributed.shard(
                    bucket_batches(self.train_examples, t.batch_size, t.seed + st["epoch"]), self.dist
                )
                for batch in iterate(self.train_examples, batches, self.src_tok.pad_token_id, st["batch_in_epoch"]):
                    lr = lr_at(self.cfg, st["step"] + 1, self.total_steps) * st["plateau_scale"]
                    for group in self.opt.param_groups:
                        group["lr"] = lr
                    loss, n_tok = self._loss(batch, t.label_smoothing)
                    if not torch.isfinite(loss):
                        raise TrainingStopped(
                            f"loss is {loss.item()} at step {st['step'] + 1}; the last good checkpoint "
                            f"is in {self.run_dir / 'last'}. Lower train.lr or raise clip_grad_norm."
                        )
                    self.opt.zero_grad(set_to_none=True)
                    loss.backward()
                    if t.clip_grad_norm:
                        torch.nn.utils.clip_grad_norm_(self.model.parameters(), t.clip_grad_norm)
                    self.opt.step()
                    st["step"] += 1
                    st["batch_in_epoch"] += 1
                    window_loss += loss.item() * n_tok
                    window_tokens += n_tok
                    bar.update(1)
                    if st["step"] % t.log_every == 0:
                        self._log_train(window_loss / window_tokens, lr, started)
                        bar.set_postfix(loss=f"{window_loss / window_tokens:.3f}", lr=f"{lr:.1e}")
                        window_loss, window_tokens = 0.0, 0
                    if t.eval_every and st["step"] % t.eval_every == 0 and self._evaluate_all(started):
                        self.stop_reason = "early_stopping"
                    if st["step"] % t.save_every == 0:
                        self._save_last(started)
                    if self.stop_reason or self._should_stop(started):
                        break
                else:
                    st["epoch"] += 1
                    st["batch_in_epoch"] = 0
                    if not t.eval_every and self._evaluate_all(started):
                        self.stop_reason = "early_stopping"
                    self._save_last(started)
                if self.stop_reason:
                    break
        except KeyboardInterrupt:
            self.stop_reason = "interrupted"
        finally:
            bar.close()
            st["elapsed_s"] += time.perf_counter() - started
        self.stop_reason = self.stop_reason or "max_epochs"
        st["stop_reason"] = self.stop_reason
        self._save_last()
        if self.dist.main and not (self.run_dir / "best").exists():  # e.g. max_steps before the first validation
            self._evaluate(time.perf_counter())
        if self.dist.active:  # each rank records its weights: data parallelism must keep them identical
            write_json(
                self.run_dir / f"rank{self.dist.rank}.json",
                {"rank": self.dist.rank, "step": st["step"], "weights_sha256": distributed.weights_digest(self.model)},
            )
        return self.stop_reason

    def _evaluate_all(self, started: float) -> bool:
        """Validate on rank 0; every rank gets its early-stopping decision and learning-rate factor."""
        stop = self._evaluate(started) if self.dist.main else False
        stop_f, scale = distributed.from_main([float(stop), self.state["plateau_scale"]], self.dist)
        self.state["plateau_scale"] = scale
        return bool(stop_f)

    def _write_progress(self, started: float) -> None:
        """``progress.json`` for whoever watches the run (the app's Train page)."""
        if self.dist.main:
            elapsed = self.state["elapsed_s"] + time.perf_counter() - started
            write_json(
                self.run_dir / "progress.json",
                {
                    "step": self.state["step"],
                    "total_steps": self.total_steps,
                    "epoch": self.state["epoch"],
                    "elapsed_s": round(elapsed, 1),
                },
            )

    def _log_train(self, loss: float, lr: float, started: float) -> None:
        self._write_progress(started)
        elapsed = self.state["elapsed_s"] + time.perf_counter() - started
        self.state["history"].append(
            {
                "kind": "train",
                "step": self.state["step"],
                "epoch": self.state["epoch"],
                "loss": round(loss, 4),
                "lr": lr,
                "elapsed_s": round(elapsed, 1),
            }
        )

    @torch.no_grad()
    def _evaluate(self, started: float) -> bool:
        """Validation loss, BLEU and chrF; saves ``best/``; returns True to stop early."""
        t, st = self.cfg.train, self.state
        self.model.eval()
        val = self.splits.val[: t.eval_sentences]
        val_examples, _ = encode_pairs(val, self.src_tok, self.tgt_tok, 10_000)
        total, tokens = 0.0, 0
        for batch in iterate(val_examples, bucket_batches(val_examples, 100, 0), self.src_tok.pad_token_id):
            loss, n = self._loss(batch, 0.0)
            total, tokens = total + loss.item() * n, tokens + n
        hyps = translate_texts(
            self.model,
            self.src_tok,
            self.tgt_tok,
            [p.src for p in val],
            num_beams=t.eval_beams,
            max_source_tokens=self.cfg.model.max_source_tokens,
        )
        scores = corpus_scores(hyps, [p.tgt for p in val], self.cfg.data.tgt_lang)
        self.model.train()
        record = {
            "kind": "val",
            "step": st["step"],
            "epoch": st["epoch"],
            "val_loss": round(total / tokens, 4),
            "bleu": scores["bleu"],
            "chrf": scores["chrf"],
            "elapsed_s": round(st["elapsed_s"] + time.perf_counter() - started, 1),
        }
        st["history"].append(record)
        tqdm.write(
            f"step {st['step']}: val loss {record['val_loss']:.3f}, BLEU {scores['bleu']:.2f}, "
            f"chrF {scores['chrf']:.2f}  e.g. {hyps[0]!r}"
        )
        if scores["bleu"] > st["best_bleu"]:
            st["best_bleu"], st["best_step"], st["bad_evals"] = scores["bleu"], st["step"], 0
            with atomic_dir(self.run_dir / "best") as tmp:
                save_model_dir(tmp, self.model, self.src_tok, self.tgt_tok)
        else:
            st["bad_evals"] += 1
            if t.lr_schedule == "plateau" and st["bad_evals"] % max(1, t.plateau_patience) == 0:
                st["plateau_scale"] = max(st["plateau_scale"] * t.plateau_factor, t.min_lr / t.lr)
        self._write_history()
        return bool(t.early_stopping) and st["bad_evals"] >= t.early_stopping

    # --- export ---------------------------------------------------------------------------

    def token_counts(self) -> dict[str, dict[str, int]]:
        """How often each token occurs in the training pairs, per side (what the model had to learn from)."""
        counts: dict[str, Counter[int]] = {"source": Counter(), "target": Counter()}
        for ex in self.train_examples:
            counts["source"].update(ex.src_ids)
            counts["target"].update(ex.tgt_ids)
        toks = {"source": self.src_tok, "target": self.tgt_tok}
        return {
            side: dict(zip(toks[side].convert_ids_to_tokens(list(c)), c.values(), strict=True))
            for side, c in counts.items()
        }

    def _inferred_stop_reason(self) -> str:
        """For runs that ended before the stop reason was stored."""
        st, t = self.state, self.cfg.train
        if st["epoch"] >= t.max_epochs:
            return "max_epochs"
        if t.early_stopping and st["bad_evals"] >= t.early_stopping:
            return "early_stopping"
        if t.max_steps and st["step"] >= t.max_steps:
            return "max_steps"
        if t.max_minutes and st["elapsed_s"] / 60 >= t.max_minutes:
            return "max_minutes"
        return "interrupted"  # no limit reached: the process was killed before it could record why it ended

    def export(self, out_dir: Path, test: bool = True) -> dict[str, Any]:
        """Best model -> fp16 checkpoint in ``out_dir``; reload it, score the test split, write the card."""
        from models.loading import load_seq2seq_folder

        best, _, _ = load_seq2seq_folder(self.run_dir / "best")
        with atomic_dir(Path(out_dir)) as tmp:
            save_model_dir(tmp, best, self.src_tok, self.tgt_tok, dtype=torch.float16)
            shutil.copy(self.run_dir / "history.json", tmp / "history.json")
            write_json(tmp / TRAINING_COUNTS, self.token_counts())
            d = self.cfg.data
            write_meta(
                tmp,
                title=f"{ARCH_NAMES[self.cfg.model.architecture]} {d.src_lang}→{d.tgt_lang} ({d.corpus})",
                src_lang=d.src_lang,
                tgt_lang=d.tgt_lang,
                corpus=d.corpus,
            )
        model, src_tok, tgt_tok = load_seq2seq_folder(out_dir)
        info: dict[str, Any] = {
            "stop_reason": self.stop_reason or self.state.get("stop_reason") or self._inferred_stop_reason(),
            "dropped_too_long": self.dropped,
        }
        if test:
            test_pairs = self.splits.test
            t0 = time.perf_counter()
            hyps = translate_texts(
                model, src_tok, tgt_tok, [p.src for p in test_pairs], num_beams=self.cfg.train.test_beams
            )
            info["test"] = corpus_scores(hyps, [p.tgt for p in test_pairs], self.cfg.data.tgt_lang)
            if self.cfg.data.corpus == "multi30k-en-de":  # also the literature's setup, in its own column
                refs = multi30k_tokenized("test", self.cfg.data.tgt_lang)
                info["test_tokenized"] = moses_tokenized_bleu(hyps, refs, self.cfg.data.tgt_lang)
            info["test"]["beams"] = self.cfg.train.test_beams
            info["test"]["decode_s"] = round(time.perf_counter() - t0, 1)
            info["test_samples"] = [
                {"src": p.src, "ref": p.tgt, "hyp": h} for p, h in list(zip(test_pairs, hyps, strict=True))[:8]
            ]
        info["tokenizers"] = {
            "source": tokenizer_stats(src_tok, [p.src for p in self.splits.val]),
            "target": tokenizer_stats(tgt_tok, [p.tgt for p in self.splits.val]),
        }
        write_model_card(Path(out_dir), self.cfg, self.splits, self.state, model, info)
        return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Train a Lantern translation model.")
    ap.add_argument("config", help="TOML preset, e.g. configs/lstm_zh_en.toml")
    ap.add_argument("--run-dir", help="working folder (default runs/<name>)")
    ap.add_argument("--export", help="final checkpoint folder (default checkpoints/<name>); 'none' skips")
    ap.add_argument("--resume", action="store_true", help="continue from <run-dir>/last")
    ap.add_argument("--no-test", action="store_true", help="skip the test-split scores at export")
    ap.add_argument("--export-only", action="store_true", help="export <run-dir>/best again without training")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    hf_logging.disable_progress_bar()
    cfg = load_config(args.config, args.set)
    run_dir = Path(args.run_dir or REPO_ROOT / "runs" / cfg.name)
    trainer = Trainer(cfg, run_dir, resume=args.resume or args.export_only)
    try:
        return _run(trainer, args, cfg)
    finally:
        distributed.cleanup(trainer.dist)


def _run(trainer: Trainer, args: argparse.Namespace, cfg: RunConfig) -> int:
    main_rank = trainer.dist.main
    if not main_rank:
        log.setLevel(logging.WARNING)
    n_params = sum(p.numel() for p in trainer.model.parameters())
    log.info(
        "%s: %s train pairs (%d dropped as too long), %s params, device %s, %d steps/epoch%s",
        cfg.name,
        len(trainer.train_examples),
        trainer.dropped,
        f"{n_params:,}",
        trainer.device,
        trainer.steps_per_epoch,
        f", {trainer.dist.world} ranks" if trainer.dist.active else "",
    )
    if args.export_only:
        return _export(trainer, args, cfg) if main_rank else 0
    try:
        reason = trainer.fit()
    except TrainingStopped as err:
        log.error("training stopped: %s", err)
        return 1
    log.info(
        "stopped (%s) at step %d; best val BLEU %.2f at step %d",
        reason,
        trainer.state["step"],
        trainer.state["best_bleu"],
        trainer.state["best_step"],
    )
    if reason == "interrupted":
        log.info("resume with: python -m models.train %s --resume", args.config)
        return 130
    return _export(trainer, args, cfg) if main_rank else 0


def _export(trainer: Trainer, args: argparse.Namespace, cfg: RunConfig) -> int:
    if args.export == "none":
        return 0
    out = Path(args.export or REPO_ROOT / "checkpoints" / cfg.name)
    info = trainer.export(out, test=not args.no_test)
    if "test" in info:
        test = info["test"]
        log.info("test: BLEU %.2f, chrF %.2f (%s)", test["bleu"], test["chrf"], test["bleu_signature"])
    log.info("exported to %s", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
