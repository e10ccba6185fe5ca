"""Start the app with `streamlit run` and drive it in Debian's headless Chromium (Playwright).

Used by the end-to-end tests and by ``python -m tools.screenshots``. Never downloads a browser.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def streamlit_command(port: int) -> list[str]:
    """`streamlit run app.py` on 127.0.0.1:``port``, headless, with this Python."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.headless=true",
        f"--server.port={port}",
        "--server.address=127.0.0.1",
        "--browser.gatherUsageStats=false",
    ]


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def running_app(env: dict[str, str] | None = None, timeout: float = 90) -> Iterator[str]:
    """Yield the URL of a fresh `streamlit run app.py`; stop its whole process group afterwards."""
    with running_app_process(env, timeout) as (url, _):
        yield url


@contextmanager
def running_app_process(
    env: dict[str, str] | None = None, timeout: float = 90, cores: set[int] | None = None
) -> Iterator[tuple[str, int]]:
    """The same, yielding (URL, server process id); ``cores``: the only CPUs the server may run on."""
    port = free_port()
    cmd = streamlit_command(port)
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env if env is not None else dict(os.environ),
            preexec_fn=(lambda: os.sched_setaffinity(0, cores)) if cores else None,
        )
        try:
            deadline = time.time() + timeout
            while not _healthy(url):
                if proc.poll() is not None or time.time() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"streamlit did not start:\n{log.read()[-3000:]}")
                time.sleep(0.3)
            yield url, proc.pid
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)


def _healthy(url: str) -> bool:
    try:
        return urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok"
    except OSError:
        return False


@contextmanager
def browser_page(width: int = 1300, height: int = 1500) -> Iterator[object]:
    """A Playwright page in headless Debian Chromium (raises if chromium is missing)."""
    from playwright.sync_api import sync_playwright

    chromium = chromium_path()
    if chromium is None:
        raise FileNotFoundError("chromium is not installed (apt-get install chromium fonts-noto-cjk)")
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            tempfile.mkdtemp(),
            executable_path=chromium,
            headless=True,
            viewport={"width": width, "height": height},
            args=CHROMIUM_ARGS,
        )
        try:
            page = ctx.new_page()
            page.set_default_timeout(60_000)
            yield page
        finally:
            ctx.close()


def open_page(page: object, title: str) -> None:
    """Click a page's link in the sidebar menu (not a link of the same name on the page itself)."""
    label = re.compile(rf"{re.escape(title)}\s*$")  # the icon's ligature text comes first ("homeHome")
    page.get_by_test_id("stSidebar").get_by_test_id("stPageLink-NavLink").filter(has_text=label).first.click()
