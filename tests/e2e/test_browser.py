"""The app in a real browser: pages load, a sentence goes in, the heatmap is drawn."""

import re

import pytest

from explain.translate import translate
from models.adapter import Decoding
from models.registry import load_model
from tools.browser import open_page

pytestmark = pytest.mark.e2e


def test_pages_render_in_chromium_and_show_the_translation(browser_page, app_url, monkeypatch):
    monkeypatch.delenv("LANTERN_CHECKPOINTS", raising=False)
    page = browser_page
    page.goto(app_url)
    page.get_by_role("heading", name="Lantern").wait_for()
    expected = translate(load_model("lstm-zh-en"), "我爱北京天安门", Decoding()).text

    open_page(page, "Translate")
    page.get_by_text(expected, exact=True).first.wait_for()

    open_page(page, "Attention")
    page.locator(".js-plotly-plot").first.wait_for()
    assert page.locator(".js-plotly-plot .heatmaplayer").count() >= 1

    box = page.get_by_role("textbox", name="Source text")
    box.fill("你好。")
    box.press("Control+Enter")
    hello = translate(load_model("lstm-zh-en"), "你好。", Decoding()).text
    page.get_by_text(re.compile(re.escape(hello))).first.wait_for()

    open_page(page, "Training")
    page.locator(".js-plotly-plot").first.wait_for()
    assert not page.get_by_text("Traceback").count()
