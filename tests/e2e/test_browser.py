"""The app in a real browser (headless Chromium): every page, a sentence typed, a method changed, a file exported."""

import csv
import io
import re

import numpy as np
import pytest

from explain.attribution import attribute
from explain.generation import translate
from models.adapter import Decoding
from models.loading import load_model
from tools.browser import open_page

pytestmark = pytest.mark.e2e

PAGES = [
    "Home",
    "Translate",
    "Attention",
    "Attributions",
    "Alignments",
    "Inside",
    "What if?",
    "Training data",
    "Evaluate",
    "Training",
    "Train a model",
]


def idle(page) -> None:
    """Wait until Streamlit has finished the run (its status widget disappears)."""
    page.locator("[data-testid='stStatusWidget']").wait_for(state="hidden")


def test_every_page_renders_without_an_error(browser_page, app_url):
    page = browser_page
    page.goto(app_url)
    page.get_by_role("heading", name="Lantern").wait_for()
    for title in PAGES:
        open_page(page, title)
        page.get_by_role("heading", name=title if title != "Home" else "Lantern").first.wait_for()
        idle(page)
        assert page.locator("[data-testid='stException']").count() == 0, title
        assert page.get_by_text("Traceback").count() == 0, title


def test_typing_a_sentence_changing_the_method_and_exporting_the_scores(browser_page, app_url):
    page = browser_page
    page.goto(app_url)
    page.get_by_role("heading", name="Lantern").wait_for()
    lm = load_model("lstm-zh-en")
    open_page(page, "Translate")
    page.get_by_text(translate(lm, "我爱北京天安门", Decoding()).text, exact=True).first.wait_for()

    box = page.get_by_role("textbox", name="Source text")
    box.fill("你好。")
    box.press("Control+Enter")
    hello = translate(lm, "你好。", Decoding())
    page.get_by_text(hello.text, exact=True).first.wait_for()

    open_page(page, "Attention")
    page.locator(".js-plotly-plot .heatmaplayer").first.wait_for()

    open_page(page, "Attributions")
    idle(page)
    page.get_by_text("What produced").first.wait_for()
    page.get_by_role("combobox", name="Method").click()
    page.get_by_role("option", name="Integrated gradients").click()
    page.get_by_text("Completeness check").first.wait_for()
    idle(page)  # the rerun that the selection started has finished: the export buttons are this run's
    assert page.locator(".js-plotly-plot .heatmaplayer").count() >= 1
    with page.expect_download() as download:
        page.get_by_role("button", name="Scores as CSV").click()
    with open(download.value.path(), encoding="utf-8") as f:
        rows = list(csv.DictReader(io.StringIO(f.read())))
    expected = attribute(lm, hello, "integrated_gradients")
    got = np.zeros_like(expected.scores)
    for r in rows:
        if r["side"] == "source":
            got[int(r["step"]), int(r["position"])] = float(r["score"])
    np.testing.assert_allclose(got, expected.scores, atol=1e-6)
    assert {r["method"] for r in rows} == {"integrated_gradients"}


def test_a_shared_link_is_the_first_request_to_a_fresh_server(browser_page):
    """A link straight to a page, before anyone opened the home page, runs app.py and restores the view.

    (With a ``pages/`` folder Streamlit would run the page script alone in its legacy mode: no menu, no
    URL state.) The browser is the session's; the server here is a new one.
    """
    import os
    import urllib.parse

    from tools.browser import running_app

    page = browser_page
    env = {k: v for k, v in os.environ.items() if k != "LANTERN_CHECKPOINTS"}
    query = urllib.parse.urlencode({"model": "lstm-zh-en", "src": "你好。", "attr.method": "saliency"})
    with running_app(env) as url:
        page.goto(f"{url}/attributions?{query}")
        page.get_by_role("heading", name="Attributions").first.wait_for()
        idle(page)
        assert page.get_by_role("textbox", name="Source text").input_value() == "你好。"
        assert page.get_by_role("link", name="Evaluate").count() == 1  # app.py's menu is there
        assert "attr.method=saliency" in page.url


def test_gemma_translates_the_seed_sentence_and_its_attributions_show_the_sentence(browser_page, app_url):
    """A link to Gemma 3 270M prompted zh->en: the right translation, its licence, and attributions over the
    sentence's tokens with the rest of the prompt one click away."""
    import urllib.parse

    page = browser_page
    query = urllib.parse.urlencode({"model": "gemma-3-270m-zh-en", "src": "我爱北京天安门"})
    page.goto(f"{app_url}/translate?{query}")
    page.get_by_role("heading", name="Translate").first.wait_for()
    page.get_by_text("I love Beijing Tiananmen Square.").first.wait_for(timeout=180_000)  # the first load converts
    idle(page)
    assert page.get_by_text("Gemma Terms of Use").count() >= 1
    open_page(page, "Attributions")
    page.get_by_text("rest of the few-shot prompt holds").first.wait_for(timeout=120_000)
    idle(page)
    assert page.locator("[data-testid='stException']").count() == 0
    page.get_by_text("the whole prompt", exact=True).click()  # the sidebar's radio
    page.wait_for_url(re.compile(r"prompt_view=prompt"))  # written as the run ends
    idle(page)
    assert page.get_by_text("rest of the few-shot prompt holds").count() == 0

    # a decoder-only model inside: the logit lens of Gemma's 18 layers over the output
    page.goto(
        f"{app_url}/inside?{urllib.parse.urlencode({**dict(urllib.parse.parse_qsl(query)), 'inside.view': 'lens'})}"
    )
    page.get_by_text("tuned lens").first.wait_for(timeout=120_000)
    idle(page)
    assert page.locator("[data-testid='stException']").count() == 0
    assert page.locator("[data-testid='stAlert']").filter(has_text="rror").count() == 0
