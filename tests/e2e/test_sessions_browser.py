"""In the browser (issue 16): every page saves its session and loads it back with the same outputs; a tiny model
folder loads from the sidebar; no page asks anything of a host other than the Lantern server."""

import json
import re
import time
import urllib.parse

import pytest
from playwright.sync_api import expect

from tests.e2e.test_browser import PAGES, idle
from tools.browser import open_page

pytestmark = pytest.mark.e2e

SIDEBAR_PAGES = {"Translate", "Attention", "Attributions", "What if?", "Training data", "Evaluate"}


def session_panel(page):
    panel = page.get_by_test_id("stSidebar").get_by_test_id("stExpander").filter(has_text="Session: link")
    summary = panel.locator("summary")
    if (
        panel.get_by_role("button", name="Save the session (JSON)").count() == 0
        or not panel.get_by_role("button", name="Save the session (JSON)").is_visible()
    ):
        summary.click()
    return panel


def output_text(page) -> str:
    """What the page shows of the current translation (the Translate page's heading or the Output line)."""
    box = page.get_by_test_id("stMain")
    heading = box.locator("h4")
    if heading.count():
        return heading.first.inner_text()
    return box.locator("p", has_text=re.compile(r"^Output:")).first.inner_text()


def settled_charts(page, quiet: float = 2.0, timeout: float = 60.0) -> int:
    """The number of charts once no new one has appeared for ``quiet`` seconds: Plotly draws each chart after the
    run's messages arrive (and loads its library first), so a count taken as the run ends may be short."""
    last, since, end = -1, time.monotonic(), time.monotonic() + timeout
    while time.monotonic() < end:
        n = page.locator(".js-plotly-plot").count()
        if n != last:
            last, since = n, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return n
        page.wait_for_timeout(200)
    return last


def type_source(page, text: str) -> None:
    """Type a sentence and wait for the run it starts to finish (its last act writes the text into the link)."""
    box = page.get_by_role("textbox", name="Source text")
    box.fill(text)
    box.press("Control+Enter")
    expect(page).to_have_url(re.compile(re.escape(urllib.parse.quote(text))), timeout=60_000)
    idle(page)


@pytest.fixture()
def page(browser_page):
    """A new tab: a new Streamlit session (a tab keeps its session across page loads)."""
    tab = browser_page.context.new_page()
    tab.set_default_timeout(60_000)
    yield tab
    tab.close()


@pytest.mark.parametrize("title", PAGES)
def test_a_session_saved_on_each_page_loads_back_with_the_same_outputs(page, app_url, tmp_path, title):
    page.goto(f"{app_url}/?model=lstm-zh-en")
    page.get_by_role("heading", name="Lantern").wait_for()
    open_page(page, title)
    idle(page)
    if title in SIDEBAR_PAGES:
        type_source(page, "他喜欢狗。")
        shown, charts = output_text(page), settled_charts(page)
    with page.expect_download() as download:
        session_panel(page).get_by_role("button", name="Save the session (JSON)").click()
    saved = tmp_path / "session.json"
    download.value.save_as(saved)
    data = json.loads(saved.read_text(encoding="utf-8"))
    assert data["format"] == "lantern-session"
    if title in SIDEBAR_PAGES:
        assert data["state"]["src"] == "他喜欢狗。"
        type_source(page, "你好。")  # the view moves on...
        assert output_text(page) != shown
    session_panel(page).locator("input[type='file']").set_input_files(str(saved))  # ...and the session brings it back
    idle(page)
    page.get_by_test_id("stMain").wait_for()
    assert page.locator("[data-testid='stException']").count() == 0, title
    assert page.get_by_text("Could not load this session").count() == 0, title
    if title in SIDEBAR_PAGES:
        expect(page.get_by_role("textbox", name="Source text")).to_have_value("他喜欢狗。", timeout=60_000)
        page.get_by_text(shown, exact=True).first.wait_for()
        idle(page)
        assert output_text(page) == shown
        expect(page.locator(".js-plotly-plot")).to_have_count(charts, timeout=60_000)


def test_load_another_model_from_the_sidebar(page, app_url, tiny_model_folder):
    page.goto(f"{app_url}/?model=lstm-zh-en")
    page.get_by_role("heading", name="Lantern").wait_for()
    open_page(page, "Translate")
    idle(page)
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_test_id("stExpander").filter(has_text="Load another model").locator("summary").click()
    sidebar.get_by_role("textbox", name="Hugging Face hub id or model folder").fill(str(tiny_model_folder))
    sidebar.get_by_role("button", name="Load", exact=True).click()
    page.get_by_role("heading", name="Generate").first.wait_for()  # the page now runs the decoder-only model
    idle(page)
    assert page.locator("[data-testid='stException']").count() == 0
    expect(page).to_have_url(re.compile(re.escape(urllib.parse.quote(str(tiny_model_folder), safe=""))))


def test_no_page_calls_any_host_but_the_server(page, app_url):
    host = urllib.parse.urlsplit(app_url).netloc
    elsewhere: list[str] = []

    def record(request) -> None:
        netloc = urllib.parse.urlsplit(request.url).netloc
        if request.url.startswith(("http:", "https:", "ws:", "wss:")) and netloc != host:
            elsewhere.append(request.url)

    page.on("request", record)
    try:
        page.goto(f"{app_url}/?model=lstm-zh-en")
        page.get_by_role("heading", name="Lantern").wait_for()
        for title in PAGES:
            open_page(page, title)
            idle(page)
    finally:
        page.remove_listener("request", record)
    assert elsewhere == []
