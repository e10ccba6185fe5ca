"""Train a translation model from a TOML preset.

    python -m training.train configs/lstm_zh_en.toml            # train, test, export to checkpoints/
    python -m training.train configs/lstm_zh_en.toml --resume   # continue an interrupted run
    python -m training.train configs/lstm_zh_en.toml --set train.max_steps=50 --set data.limit_train=500
    torchrun --nproc_per_node=2 -m training.train configs/lstm_zh_en.toml   # data parallel (gloo/NCCL)

The run folder (``runs/<name>/``) holds the tokenizers, ``last/`` (model + optimizer state, for
``--resume``), ``best/`` (best validation BLEU) and ``history.json``. At the end the best model is
exported in fp16 to ``checkpoints/<name>/``, reloaded from there and scored on the test split,
and a model card is written beside it, so the card's numbers are those of the shipped file.

A mistake in the command (a missing preset, an unknown ``--set`` key, a missing corpus) ends the run
with one line saying what is wrong, exit code 2, before any file is written.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tomllib
from pathlib import Path

from transformers import logging as hf_logging

from common.paths import REPO_ROOT
from training import distributed
from training.config import ConfigError, RunConfig, load_config
from training.corpora import CorpusFormatError, DataNotFoundError
from training.export import export_run
from training.trainer import Trainer, TrainingStopped

log = logging.getLogger("lantern.train")
PROG = "python -m training.train"


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog=PROG,
        description="Train a Lantern translation model (LSTM or Transformer) from a TOML preset, then export, "
        "test and document it.",
        epilog="Presets: configs/*.toml (every key commented). Exit codes: 0 done, 1 training stopped "
        "(non-finite loss), 2 a mistake in the command or the config, 130 interrupted (resume with --resume).",
    )
    ap.add_argument("config", help="TOML preset, e.g. configs/lstm_zh_en.toml")
    ap.add_argument("--run-dir", help="working folder for checkpoints and history (default: runs/<name>)")
    ap.add_argument(
        "--export", help="where the finished model goes (default: checkpoints/<name>); 'none' skips the export"
    )
    ap.add_argument("--resume", action="store_true", help="continue the interrupted run in <run-dir>/last")
    ap.add_argument("--no-test", action="store_true", help="skip the test-split scores at export")
    ap.add_argument("--export-only", action="store_true", help="export <run-dir>/best again without training")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one config value, e.g. --set train.lr=5e-4 (repeatable; unknown keys are errors)",
    )
    return ap


def _fail(message: str) -> int:
    """A user's mistake: one line on stderr, no traceback, exit code 2."""
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        cfg = load_config(args.config, args.set)
    except FileNotFoundError:
        return _fail(f"no config file at {args.config} (presets are in configs/)")
    except tomllib.TOMLDecodeError as err:
        return _fail(f"{args.config} is not valid TOML: {err}")
    except ConfigError as err:
        return _fail(str(err))
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    hf_logging.disable_progress_bar()
    run_dir = Path(args.run_dir or REPO_ROOT / "runs" / cfg.name)
    try:
        trainer = Trainer(cfg, run_dir, resume=args.resume or args.export_only)
    except (
        DataNotFoundError,
        FileNotFoundError,
        ConfigError,
        CorpusFormatError,
    ) as err:  # raised before the run writes anything
        return _fail(str(err))
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
        log.info("resume with: %s %s --resume", PROG, args.config)
        return 130
    return _export(trainer, args, cfg) if main_rank else 0


def _export(trainer: Trainer, args: argparse.Namespace, cfg: RunConfig) -> int:
    if args.export == "none":
        return 0
    out = Path(args.export or REPO_ROOT / "checkpoints" / cfg.name)
    info = export_run(trainer, out, test=not args.no_test)
    if "test" in info:
        test = info["test"]
        log.info("test: BLEU %.2f, chrF %.2f (%s)", test["bleu"], test["chrf"], test["bleu_signature"])
    log.info("exported to %s", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
