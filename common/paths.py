"""Where Lantern finds things: the repository, the corpora, the converted-model cache.

Each location can be moved with an environment variable; the defaults need no setting.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_ENV = "LANTERN_DATA"  # corpora (never committed); default ../shared/data beside the repository
CACHE_ENV = "LANTERN_CACHE"  # models converted once (e.g. GGUF -> safetensors); default cache/
CHECKPOINT_ENV = "LANTERN_CHECKPOINTS"  # os.pathsep-separated roots of Lantern's checkpoints; default checkpoints/


def data_root() -> Path:
    """The folder holding the corpora: ``$LANTERN_DATA`` or ``../shared/data``."""
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else (REPO_ROOT.parent / "shared" / "data")


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or REPO_ROOT / "cache").expanduser()


def checkpoint_roots() -> list[Path]:
    env = os.environ.get(CHECKPOINT_ENV)
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    return [REPO_ROOT / "checkpoints"]
