"""Training configuration: frozen dataclasses read from a commented TOML preset.

Each TOML table ([data], [tokenizer], [model], [train]) maps to one dataclass below; unknown keys
are errors, so a typo never silently falls back to a default. ``--set train.lr=5e-4`` overrides.
"""

from __future__ import annotations

import dataclasses
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


@dataclass(frozen=True)
class TokenizerConfig:
    src_kind: str = "char"
    src_vocab_size: int = 8000
    src_min_frequency: int = 1
    tgt_kind: str = "bpe"
    tgt_vocab_size: int = 4000
    tgt_min_frequency: int = 2
    shared: bool = False


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
}


def _coerce(value: str, like: Any) -> Any:
    if isinstance(like, bool):
        return value.lower() in ("1", "true", "yes")
    return type(like)(value)


def config_from_dict(raw: dict[str, Any], overrides: list[str] | None = None) -> RunConfig:
    """Build a ``RunConfig`` from nested dicts and ``section.key=value`` overrides."""
    raw = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    for item in overrides or []:
        key, sep, value = item.partition("=")
        section, _, name = key.partition(".")
        if not sep or section not in _SECTIONS or not name:
            raise ValueError(f"override {item!r} must look like train.lr=5e-4")
        default = getattr(_SECTIONS[section](), name, None)
        if default is None:
            raise ValueError(f"unknown key {key!r}")
        raw.setdefault(section, {})[name] = _coerce(value, default)
    unknown = set(raw) - set(_SECTIONS) - {"name"}
    if unknown:
        raise ValueError(f"unknown config sections {sorted(unknown)}; known: name, {', '.join(_SECTIONS)}")
    parts = {}
    for section, cls in _SECTIONS.items():
        values = raw.get(section, {})
        names = {f.name for f in dataclasses.fields(cls)}
        bad = set(values) - names
        if bad:
            raise ValueError(f"unknown keys in [{section}]: {sorted(bad)}; known: {sorted(names)}")
        parts[section] = cls(**values)
        for (sec, key), allowed in CHOICES.items():
            if sec == section and getattr(parts[section], key) not in allowed:
                raise ValueError(f"{section}.{key} must be one of {allowed}")
    return RunConfig(name=raw.get("name", RunConfig.name), **parts)


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    with open(path, "rb") as f:
        return config_from_dict(tomllib.load(f), overrides)
