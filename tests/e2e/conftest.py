"""A real `streamlit run` and headless Chromium for the end-to-end tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import make_tiny_llama
from tools.browser import browser_page as open_browser
from tools.browser import chromium_path, running_app


@pytest.fixture(scope="session")
def tiny_model_folder(tmp_path_factory: pytest.TempPathFactory, tokenizers) -> Path:
    """A tiny decoder-only model folder under a model root the server allows (for "Load another model")."""
    folder = tmp_path_factory.mktemp("model-roots") / "tiny-llama"
    _, tgt = tokenizers
    make_tiny_llama(len(tgt)).save_pretrained(folder)
    tgt.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def app_url(tiny_model_folder: Path) -> Iterator[str]:
    env = {k: v for k, v in os.environ.items() if k != "LANTERN_CHECKPOINTS"}  # the shipped models
    env["LANTERN_MODEL_ROOTS"] = str(tiny_model_folder.parent)
    with running_app(env) as url:
        yield url


@pytest.fixture(scope="session")
def browser_page(app_url: str) -> Iterator[object]:
    if chromium_path() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing on CI: `make test` installs it (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium fonts-noto-cjk)")
    with open_browser() as page:
        yield page
