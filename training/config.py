"""Training configuration: frozen dataclasses read from a commented TOML preset.

Each TOML table ([data], [tokenizer], [model], [train]) maps to one dataclass below; unknown keys
are errors, so a typo never silently falls back to a default. ``--set train.lr=5e-4`` overrides.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class DataConfig:
    corpus: str = "tatoeba-en-zh"
    src_lang: str = "zh"
    tgt_lang: str = "en"
    val_size: int = 1000
    test_size: int = 1000
    split_seed: int = 1234
    max_chars: int = 200
    max_tokens: int = 64
    limit_train: int = 0
    exclude: str = ""
    adapt_source: str = ""
    adapt_target: str = ""
    adapt_mix: int = 0
    lowercase: bool = False


@dataclass(frozen=True)
class TokenizerConfig:
    src_kind: str = "char"
    src_vocab_size: int = 8000
    src_min_frequency: int = 1
    tgt_kind: str = "bpe"
    tgt_vocab_size: int = 4000
    tgt_min_frequency: int = 2
    shared: bool = False
    from_folder: str = ""


@dataclass(frozen=True)
class ModelConfig:
    architecture: str = "lstm"
    embed_dim: int = 256
    hidden_size: int = 512
    encoder_layers: int = 1
    decoder_layers: int = 1
    attention_dim: int = 256
    heads: int = 4
    ffn_dim: int = 1024
    dropout: float = 0.3
    attention_dropout: float = 0.1
    activation_dropout: float = 0.0
    max_source_tokens: int = 128


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 42
    batch_size: int = 64
    max_epochs: int = 20
    max_steps: int = 0
    max_minutes: float = 0.0
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    adam_beta2: float = 0.999
    weight_decay: float = 0.0
    label_smoothing: float = 0.1
    clip_grad_norm: float = 1.0
    lr_schedule: str = "plateau"
    warmup_steps: int = 0
    plateau_factor: float = 0.5
    plateau_patience: int = 1
    min_lr: float = 1e-5
    eval_every: int = 0
    eval_sentences: int = 1000
    eval_beams: int = 1
    early_stopping: int = 4
    save_every: int = 200
    log_every: int = 20
    test_beams: int = 5
    device: str = "auto"
    threads: int = 0
    amp: str = "none"
    init_from: str = ""
    keep: str = "best"
    tracin_snapshots: int = 2


@dataclass(frozen=True)
class RunConfig:
    name: str = "lstm-zh-en"
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_SECTIONS = {"data": DataConfig, "tokenizer": TokenizerConfig, "model": ModelConfig, "train": TrainConfig}
CHOICES = {
    ("tokenizer", "src_kind"): ("char", "bpe", "word"),
    ("tokenizer", "tgt_kind"): ("char", "bpe", "word"),
    ("model", "architecture"): ("lstm", "transformer"),
    ("train", "optimizer"): ("adam", "sgd"),
    ("train", "lr_schedule"): ("constant", "plateau", "inverse_sqrt", "cosine"),
    ("train", "amp"): ("none", "bf16"),
    ("train", "keep"): ("best", "last"),
}


class ConfigError(ValueError):
    """The config (file or ``--set`` overrides) asks for something that does not exist or cannot work."""


# (section, key) -> (lowest allowed, highest allowed); None = unbounded on that side
RANGES: dict[tuple[str, str], tuple[float | None, float | None]] = {
    ("data", "val_size"): (1, None),
    ("data", "test_size"): (1, None),
    ("data", "max_chars"): (1, None),
    ("data", "max_tokens"): (1, None),
    ("data", "limit_train"): (0, None),
    ("data", "adapt_mix"): (0, None),
    ("tokenizer", "src_vocab_size"): (8, None),
    ("tokenizer", "tgt_vocab_size"): (8, None),
    ("tokenizer", "src_min_frequency"): (1, None),
    ("tokenizer", "tgt_min_frequency"): (1, None),
    ("model", "embed_dim"): (1, None),
    ("model", "hidden_size"): (2, None),
    ("model", "encoder_layers"): (1, None),
    ("model", "decoder_layers"): (1, None),
    ("model", "attention_dim"): (1, None),
    ("model", "heads"): (1, None),
    ("model", "ffn_dim"): (1, None),
    ("model", "dropout"): (0, 0.99),
    ("model", "attention_dropout"): (0, 0.99),
    ("model", "activation_dropout"): (0, 0.99),
    ("model", "max_source_tokens"): (1, None),
    ("train", "batch_size"): (1, None),
    ("train", "max_epochs"): (0, None),
    ("train", "max_steps"): (0, None),
    ("train", "max_minutes"): (0, None),
    ("train", "lr"): (1e-12, None),
    ("train", "label_smoothing"): (0, 0.99),
    ("train", "clip_grad_norm"): (0, None),
    ("train", "warmup_steps"): (0, None),
    ("train", "plateau_factor"): (1e-6, 1),
    ("train", "eval_sentences"): (1, None),
    ("train", "eval_beams"): (1, 16),
    ("train", "test_beams"): (1, 16),
    ("train", "save_every"): (1, None),
    ("train", "log_every"): (1, None),
    ("train", "threads"): (0, None),
    ("train", "tracin_snapshots"): (0, None),
}
CORPUS_LANGUAGES = {"tatoeba-en-zh": {"en", "zh"}, "tatoeba-en-fr": {"en", "fr"}, "multi30k-en-de": {"en", "de"}}


def _coerce(value: str, like: Any, key: str) -> Any:
    if isinstance(like, bool):
        if value.lower() not in ("1", "true", "yes", "0", "false", "no"):
            raise ConfigError(f"{key} must be true or false, not {value!r}")
        return value.lower() in ("1", "true", "yes")
    try:
        return type(like)(value)
    except ValueError:
        raise ConfigError(f"{key} must be a {type(like).__name__}, not {value!r}") from None


def _check(section: str, part: Any) -> None:
    for (sec, key), allowed in CHOICES.items():
        if sec == section and getattr(part, key) not in allowed:
            raise ConfigError(f"{section}.{key} must be one of {', '.join(allowed)}, not {getattr(part, key)!r}")
    for f in dataclasses.fields(part):
        value, default = getattr(part, f.name), f.default
        if type(value) is not type(default) and not (isinstance(default, float) and type(value) is int):
            raise ConfigError(f"{section}.{f.name} must be a {type(default).__name__}, not {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{section}.{f.name} must be a finite number, not {value!r}")
        low, high = RANGES.get((section, f.name), (None, None))
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"at least {low}" if high is None else f"between {low} and {high}"
            raise ConfigError(f"{section}.{f.name} must be {bounds}, not {value!r}")
    if section == "data":
        langs = CORPUS_LANGUAGES.get(part.corpus)
        if langs is None and not part.corpus.startswith("file:"):
            raise ConfigError(
                f"data.corpus {part.corpus!r} is not a corpus Lantern reads; known: {', '.join(CORPUS_LANGUAGES)} "
                "(or file:<path to a TSV>)"
            )
        if langs is not None and {part.src_lang, part.tgt_lang} != langs:
            raise ConfigError(
                f"{part.corpus} holds {' and '.join(sorted(langs))}, not {part.src_lang}->{part.tgt_lang}"
            )
        if bool(part.adapt_source) != bool(part.adapt_target):
            raise ConfigError("data.adapt_source and data.adapt_target go together: two line-aligned text files")
        if part.adapt_mix and not part.adapt_source:
            raise ConfigError("data.adapt_mix draws corpus pairs to train beside data.adapt_source/adapt_target")


def config_from_dict(raw: dict[str, Any], overrides: list[str] | None = None) -> RunConfig:
    """Build a ``RunConfig`` from nested dicts and ``section.key=value`` overrides (``ConfigError`` if wrong)."""
    raw = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    for item in overrides or []:
        key, sep, value = item.partition("=")
        section, _, name = key.partition(".")
        if not sep or not name:
            raise ConfigError(f"override {item!r} must look like train.lr=5e-4")
        if section not in _SECTIONS:
            raise ConfigError(f"override {item!r}: no section [{section}]; sections: {', '.join(_SECTIONS)}")
        names = {f.name for f in dataclasses.fields(_SECTIONS[section])}
        if name not in names:
            raise ConfigError(f"unknown key {key!r}; [{section}] has {', '.join(sorted(names))}")
        raw.setdefault(section, {})[name] = _coerce(value, getattr(_SECTIONS[section](), name), key)
    unknown = set(raw) - set(_SECTIONS) - {"name"}
    if unknown:
        raise ConfigError(f"unknown config sections {sorted(unknown)}; known: name, {', '.join(_SECTIONS)}")
    parts = {}
    for section, cls in _SECTIONS.items():
        values = raw.get(section, {})
        if not isinstance(values, dict):
            raise ConfigError(f"[{section}] must be a table of keys")
        names = {f.name for f in dataclasses.fields(cls)}
        bad = set(values) - names
        if bad:
            raise ConfigError(f"unknown keys in [{section}]: {sorted(bad)}; known: {sorted(names)}")
        parts[section] = cls(**values)
        _check(section, parts[section])
    name = raw.get("name", RunConfig.name)
    if not isinstance(name, str) or not name.strip() or "/" in name or name.startswith("."):
        raise ConfigError(f"name must be a plain folder name, not {name!r}")
    return RunConfig(name=name, **parts)


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    with open(path, "rb") as f:
        return config_from_dict(tomllib.load(f), overrides)
