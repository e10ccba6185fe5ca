"""Two app replicas behind HAProxy (tools/replicas.py) serve the same shared link, each to its own visitor."""

from __future__ import annotations

import json
import os
import urllib.parse

import pytest

from explain.generation import translate
from models.adapter import Decoding
from models.loading import load_model
from tools.replicas import COOKIE, haproxy_path, running_replicas

LINK = {"model": "lstm-zh-en", "src": "我爱你。"}


def _visit(context, link: str, cookie: str | None, tmp_path) -> tuple[str, set[str | None], str | None, str]:
    """A new visitor (a fresh cookie jar, ``cookie`` as HAProxy would have set it). Returns its output, the
    replicas that answered its requests after a reload (static assets and the favicon aside: the browser may
    take those from its cache), the cookie it ends with, and the source in the session file it downloaded (a
    download is held in the memory of the replica whose session made it: served only if the visitor stays
    there)."""
    context.clear_cookies()
    if cookie:
        parts = urllib.parse.urlsplit(link)
        context.add_cookies([{"name": COOKIE, "value": cookie, "domain": parts.hostname, "path": "/"}])
    page = context.new_page()
    page.set_default_timeout(90_000)
    try:
        page.goto(link)
        page.locator("text=How often the model saw").first.wait_for()
        page.locator("[data-testid='stStatusWidget']").wait_for(state="hidden")
        output = page.locator("h4").first.inner_text()
        served: set[str | None] = set()
        cacheable = ("/static/", "/favicon")  # the browser may answer these from its cache

        def record(r) -> None:
            if not any(part in r.url for part in cacheable):
                served.add(r.headers.get("x-lantern-replica"))

        page.on("response", record)
        page.reload()  # the page and the new WebSocket's session stay on the visitor's replica
        page.locator("text=How often the model saw").first.wait_for()
        page.locator("[data-testid='stStatusWidget']").wait_for(state="hidden")
        panel = page.get_by_test_id("stSidebar").get_by_test_id("stExpander").filter(has_text="Session: link")
        panel.locator("summary").click()
        with page.expect_download() as download:
            panel.get_by_role("button", name="Save the session (JSON)").click()
        saved = tmp_path / "session.json"
        download.value.save_as(saved)
        source = json.loads(saved.read_text(encoding="utf-8"))["state"]["src"]
        kept = {c["name"]: c["value"] for c in context.cookies()}.get(COOKIE)
        return output, served, kept, source
    finally:
        page.close()
        context.clear_cookies()


def test_two_replicas_serve_a_shared_link_with_sticky_sessions(browser_page, tmp_path):
    if haproxy_path() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("haproxy is missing on CI: `make test` installs it (apt-get install haproxy)")
        pytest.skip("haproxy is not installed (make browser installs chromium and haproxy)")
    env = {k: v for k, v in os.environ.items() if k != "LANTERN_CHECKPOINTS"}  # the shipped models
    context = browser_page.context
    with running_replicas(2, env=env) as (url, _):
        link = f"{url}/translate?{urllib.parse.urlencode(LINK)}"
        outputs = []
        for replica in ("r1", "r2"):  # one visitor on each replica
            output, served, kept, source = _visit(context, link, replica, tmp_path)
            assert served == {replica} and kept == replica, (replica, served, kept)
            assert source == LINK["src"]
            outputs.append(output)
        # a visitor without a cookie is given a replica and keeps it
        _, served, given, source = _visit(context, link, None, tmp_path)
        assert given in ("r1", "r2") and served == {given} and source == LINK["src"]
    expected = translate(load_model(LINK["model"]), LINK["src"], Decoding()).text
    assert outputs == [expected, expected]  # the same link, the same translation, from either replica
