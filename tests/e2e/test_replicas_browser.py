"""Two app replicas behind HAProxy (tools/replicas.py) serve the same shared link, each to its own visitor."""

from __future__ import annotations

import os
import urllib.parse

import pytest

from explain.generation import translate
from models.adapter import Decoding
from models.loading import load_model
from tools.browser import CHROMIUM_ARGS, chromium_path
from tools.replicas import COOKIE, haproxy_path, running_replicas

LINK = {"model": "lstm-zh-en", "src": "我爱你。"}


def _require(tool: str, found: object) -> None:
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{tool} is missing on CI: `make test` installs it")
        pytest.skip(f"{tool} is not installed (make browser installs chromium and haproxy)")


def test_two_replicas_serve_a_shared_link_with_sticky_sessions():
    _require("chromium", chromium_path())
    _require("haproxy", haproxy_path())
    from playwright.sync_api import sync_playwright

    env = {k: v for k, v in os.environ.items() if k != "LANTERN_CHECKPOINTS"}  # the shipped models
    with running_replicas(2, env=env) as (url, _), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        link = f"{url}/translate?{urllib.parse.urlencode(LINK)}"
        outputs = []
        for replica in ("r1", "r2"):  # one visitor per replica, as the cookie HAProxy set would keep them
            ctx = browser.new_context(viewport={"width": 1300, "height": 1400})
            ctx.add_cookies([{"name": COOKIE, "value": replica, "url": url}])
            served: list[str | None] = []
            ctx.on("response", lambda r, served=served: served.append(r.headers.get("x-lantern-replica")))
            page = ctx.new_page()
            page.set_default_timeout(90_000)
            page.goto(link)
            page.locator("text=How often the model saw").first.wait_for()
            page.locator("[data-testid='stStatusWidget']").wait_for(state="hidden")
            outputs.append(page.locator("h4").first.inner_text())
            page.reload()  # the page, its assets and the new WebSocket stay on the same replica
            page.locator("text=How often the model saw").first.wait_for()
            assert served and set(served) == {replica}, (replica, set(served))
            ctx.close()
        # a new visitor without a cookie is given a replica and keeps it
        ctx = browser.new_context()
        page = ctx.new_page()
        page.goto(link)
        page.locator("text=How often the model saw").first.wait_for()
        given = {c["name"]: c["value"] for c in ctx.cookies()}.get(COOKIE)
        served = []
        ctx.on("response", lambda r: served.append(r.headers.get("x-lantern-replica")))
        page.reload()
        page.locator("text=How often the model saw").first.wait_for()
        assert given in ("r1", "r2") and set(served) == {given}
        browser.close()
    expected = translate(load_model(LINK["model"]), LINK["src"], Decoding()).text
    assert outputs == [expected, expected]  # the same link, the same translation, from either replica
