"""The training loop: a ``Trainer`` builds the tokenizers and the model from a ``RunConfig``, trains with
validation, early stopping and atomic checkpoints (``last/`` to resume, ``best/`` by validation BLEU),
alone or data-parallel under ``torchrun``. The CLI is ``training.train``; the export ``training.export``.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import random
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerFast

from common.files import atomic_dir, existing_dir, write_json
from models import threads
from models.folder import HISTORY_FILE, TARGET_TOKENIZER_DIR, TRACIN_DIR, TRACIN_FILE
from models.lstm_attention import LstmAttnConfig, LstmAttnForConditionalGeneration
from models.transformer import build_transformer
from training import distributed
from training.batching import bucket_batches, encode_pairs, iterate
from training.checkpoint import load_trainer_state, save_model_dir, save_trainer_state
from training.config import ConfigError, RunConfig, config_from_dict
from training.corpora import Splits, adaptation_pairs, load_splits, training_pairs
from training.scoring import corpus_scores, translate_texts
from training.tokenization import load_tokenizer, save_tokenizer, train_tokenizer

log = logging.getLogger("lantern.train")


class TrainingStopped(RuntimeError):
    """Training cannot go on (NaN loss); the last good checkpoint is kept."""


def build_model(cfg: RunConfig, src_vocab: int, tgt_vocab: int) -> PreTrainedModel:
    m = cfg.model
    if m.architecture == "transformer":
        return build_transformer(
            src_vocab,
            tgt_vocab,
            shared_vocab=cfg.tokenizer.shared,
            embed_dim=m.embed_dim,
            encoder_layers=m.encoder_layers,
            decoder_layers=m.decoder_layers,
            heads=m.heads,
            ffn_dim=m.ffn_dim,
            dropout=m.dropout,
            attention_dropout=m.attention_dropout,
            activation_dropout=m.activation_dropout,
            max_source_tokens=m.max_source_tokens,
        )
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
        if t.threads:  # a fixed count; 0: the adaptive policy of models/threads.py, applied around fit()
            threads.configure(fixed=t.threads)
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
        self.splits.train = training_pairs(self.splits, cfg.data.limit_train, cfg.data.exclude)
        d = cfg.data
        if d.adapt_source or d.lowercase:  # unsupervised adaptation: in-domain pairs (+ a draw of the corpus's)
            self.splits.train, self.adaptation = adaptation_pairs(
                self.splits.train, d.adapt_source, d.adapt_target, d.adapt_mix, d.lowercase, d.split_seed, d.max_chars
            )
        else:
            self.adaptation = {}
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
        else:  # a fresh run: no snapshot of an earlier run in this folder may join its TracIn checkpoints
            if self.dist.main:
                shutil.rmtree(self.run_dir / TRACIN_DIR, ignore_errors=True)
            if t.init_from:
                self._init_from(Path(t.init_from))
        self.stop_reason = ""
        self._interrupted = False

    # --- set-up ---------------------------------------------------------------------------

    def _tokenizers(self) -> tuple[PreTrainedTokenizerFast, PreTrainedTokenizerFast]:
        """Train (or, when resuming, reload) the tokenizers; with ``shared`` one serves both sides.

        With ``train.init_from`` they are the folder's own (a model continues with the vocabulary it has); with
        ``tokenizer.from_folder``, that folder's (a model trained on other data reads the same tokens, e.g. in a
        removal experiment).
        """
        k = self.cfg.tokenizer
        src_dir, tgt_dir = self.run_dir / "source_tokenizer", self.run_dir / "target_tokenizer"
        given = self.cfg.train.init_from or k.from_folder
        if given and self.last_dir is None:
            folder = Path(given)
            if not (folder / "tokenizer.json").exists():
                raise FileNotFoundError(f"no tokenizer in {folder} (train.init_from / tokenizer.from_folder)")
            src_dir = folder
            tgt_dir = folder / TARGET_TOKENIZER_DIR if (folder / TARGET_TOKENIZER_DIR).exists() else folder
            if self.dist.main:
                self.run_dir.mkdir(parents=True, exist_ok=True)
                save_tokenizer(load_tokenizer(src_dir), self.run_dir / "source_tokenizer")
                save_tokenizer(load_tokenizer(tgt_dir), self.run_dir / "target_tokenizer")
            src = load_tokenizer(src_dir)
            return src, src if k.shared else load_tokenizer(tgt_dir)
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

    def _init_from(self, folder: Path) -> None:
        """Start from a finished model's weights (continued training, e.g. to take TracIn snapshots).

        Its training history is carried over (steps and wall time go on counting from where it stopped, so
        the curves and the card describe the whole model), but not its best score or epoch count: this run
        validates and keeps its own best.
        """
        from safetensors.torch import load_file

        _load_weights(self.model, {k: v.float() for k, v in load_file(folder / "model.safetensors").items()})
        if (folder / HISTORY_FILE).exists():
            records = json.loads((folder / HISTORY_FILE).read_text(encoding="utf-8"))["records"]
            self.state["history"] = records
            self.state["step"] = max((r["step"] for r in records), default=0)
            self.state["elapsed_s"] = max((r.get("elapsed_s", 0.0) for r in records), default=0.0)
        vals = [r for r in self.state["history"] if r.get("kind") == "val" and "bleu" in r]
        best = max(vals, key=lambda r: r["bleu"])["step"] if vals else self.state["step"]  # the weights' own step
        self.state["init_from"] = {"folder": str(folder), "step": self.state["step"], "weights_step": best}
        log.info("continuing from %s (step %d)", folder, self.state["step"])

    def _save_snapshot(self, epoch_lrs: list[float]) -> None:
        """End of an epoch: the weights (fp16) and the epoch's mean learning rate, for TracIn.

        TracIn (Pruthi et al. 2020) sums, over checkpoints, the learning rate times the dot product of
        gradients; the mean rate of the steps since the previous snapshot stands for that interval.
        """
        n = self.cfg.train.tracin_snapshots
        if not n or not self.dist.main:
            return
        root = self.run_dir / TRACIN_DIR
        st = self.state
        with atomic_dir(root / f"step-{st['step']}") as tmp:
            copy.deepcopy(self.model).to(torch.float16).save_pretrained(tmp)
        index = json.loads((root / TRACIN_FILE).read_text()) if (root / TRACIN_FILE).exists() else []
        index.append({"step": st["step"], "epoch": st["epoch"], "lr": sum(epoch_lrs) / max(1, len(epoch_lrs))})
        for old in index[:-n]:
            shutil.rmtree(root / f"step-{old['step']}", ignore_errors=True)
        write_json(root / TRACIN_FILE, index[-n:])

    def _restore(self, folder: Path) -> None:
        saved = load_trainer_state(folder)
        before = config_from_dict(saved["config"])  # fills keys added since with their defaults
        if (before.model, before.data, before.tokenizer) != (self.cfg.model, self.cfg.data, self.cfg.tokenizer):
            raise ConfigError(
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
        with threads.computation():  # the whole run is one computation: its threads follow the machine's load
            return self._fit()

    def _fit(self) -> str:
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
        epoch_lrs: list[float] = []
        if st.get("init_from") and not (self.run_dir / TRACIN_DIR / TRACIN_FILE).exists():
            # the weights continued from are the end of the earlier run's trajectory: its last rate goes with them
            rates = [r["lr"] for r in st["history"] if r.get("kind") == "train" and "lr" in r]
            self._save_snapshot([rates[-1] if rates else t.lr])
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
                    epoch_lrs.append(lr)
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
                    threads.refresh()  # the next step's thread count follows the machine's load
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
                    self._save_snapshot(epoch_lrs)
                    epoch_lrs = []
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
        if scores["bleu"] > st["best_bleu"] or t.keep == "last":  # last: adaptation, validation out of domain
            st["best_bleu"], st["best_step"], st["bad_evals"] = scores["bleu"], st["step"], 0
            with atomic_dir(self.run_dir / "best") as tmp:
                save_model_dir(tmp, self.model, self.src_tok, self.tgt_tok)
        else:
            st["bad_evals"] += 1
            if t.lr_schedule == "plateau" and st["bad_evals"] % max(1, t.plateau_patience) == 0:
                st["plateau_scale"] = max(st["plateau_scale"] * t.plateau_factor, t.min_lr / t.lr)
        self._write_history()
        return bool(t.early_stopping) and st["bad_evals"] >= t.early_stopping
