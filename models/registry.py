"""Which models the app offers, and loading them by name.

Lantern's own checkpoints are discovered: every folder under a checkpoint root that holds
``config.json`` and ``lantern.json`` (written at export) is a model, named after the folder.
Roots: ``$LANTERN_CHECKPOINTS`` (``os.pathsep``-separated) or ``checkpoints/`` in the repository.
Only folders under these roots are ever loaded.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from models.adapter import LanternModel
from models.data import REPO_ROOT
from models.loading import load_seq2seq_folder

CHECKPOINT_ENV = "LANTERN_CHECKPOINTS"
META_FILE = "lantern.json"
EXAMPLES = {
    "zh": "我爱北京天安门",
    "en": "A man in an orange hat is looking at something.",
    "de": "Ein Mann mit einem orangefarbenen Hut.",
    "fr": "Je t'aime.",
}


@dataclass(frozen=True)
class ModelSpec:
    name: str
    path: Path
    title: str
    src_lang: str
    tgt_lang: str
    example: str

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


def list_models() -> list[ModelSpec]:
    """Every complete checkpoint under the roots, sorted by name."""
    specs = {}
    for root in checkpoint_roots():
        if not root.is_dir():
            continue
        for folder in sorted(root.iterdir()):
            meta_path = folder / META_FILE
            if not (folder / "config.json").exists() or not meta_path.exists():
                continue
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            src = meta.get("src_lang", "")
            specs.setdefault(
                folder.name,
                ModelSpec(
                    name=folder.name,
                    path=folder,
                    title=meta.get("title", folder.name),
                    src_lang=src,
                    tgt_lang=meta.get("tgt_lang", ""),
                    example=meta.get("example") or EXAMPLES.get(src, "Hello."),
                ),
            )
    return sorted(specs.values(), key=lambda s: s.name)


def get_spec(name: str) -> ModelSpec:
    for spec in list_models():
        if spec.name == name:
            return spec
    known = ", ".join(s.name for s in list_models()) or "none"
    raise KeyError(f"no model named {name!r}; available: {known}")


def load_model(name: str, device: str = "cpu") -> LanternModel:
    """Load a model by name into a ``LanternModel`` (eval mode, frozen weights)."""
    spec = get_spec(name)
    model, src_tok, tgt_tok = load_seq2seq_folder(spec.path, device=device)
    limit = getattr(model.config, "max_source_tokens", None) or 128
    return LanternModel(spec.name, model, src_tok, tgt_tok, max_source_tokens=limit)
