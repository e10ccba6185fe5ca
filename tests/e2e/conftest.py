"""A real `streamlit run` and headless Chromium for the end-to-end tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tools.browser import browser_page as open_browser
from tools.browser import chromium_path, running_app


@pytest.fixture(scope="session")
def app_url() -> Iterator[str]:
    env = {k: v for k, v in os.environ.items() if k != "LANTERN_CHECKPOINTS"}  # the shipped models
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
