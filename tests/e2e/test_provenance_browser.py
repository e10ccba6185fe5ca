"""The Training data page in a real browser: the seed sentence's "Tokyo", its evidence, and a training pair opened."""

import re
import urllib.parse

import pytest
from playwright.sync_api import expect

from explain.generation import translate
from models.adapter import Decoding
from models.loading import load_model
from provenance import find_pairs

pytestmark = pytest.mark.e2e


def idle(page) -> None:
    page.locator("[data-testid='stStatusWidget']").wait_for(state="hidden")


def test_tokyo_evidence_then_a_training_pair_becomes_the_sentence_of_every_page(browser_page, app_url):
    page = browser_page
    lm = load_model("lstm-zh-en")
    tr = translate(lm, "我爱北京天安门", Decoding())
    tokyo = next(t for t, tok in enumerate(tr.tgt_tokens) if tok == "▁Tokyo")
    state = {"model": "lstm-zh-en", "src": "我爱北京天安门", "data.step": tokyo, "data.query": "京"}
    page.goto(f"{app_url}/provenance?{urllib.parse.urlencode(state)}")
    page.get_by_role("heading", name="Training data").first.wait_for()
    ev = find_pairs(lm, "京", also=[tr.tgt_ids[tokyo]])
    page.get_by_text("…whose translation has 'Tokyo'").first.wait_for()
    expected = [f"{ev.n_pairs:,}", f"{ev.n_occurrences:,}", f"{len(ev.with_other):,}"]
    # retried until the run has drawn all three (read mid-run, the page may hold only some of them)
    expect(page.locator("[data-testid='stMetricValue']")).to_have_text(expected, timeout=60_000)
    idle(page)
    assert page.locator("[data-testid='stException']").count() == 0

    first = ev.examples.source.iloc[0]  # the pairs with both first: the default pick
    page.get_by_role("button", name="Open it").first.click()
    expect(page.get_by_role("textbox", name="Source text")).to_have_value(first, timeout=60_000)
    page.get_by_role("link", name="Translate").click()
    page.get_by_text(translate(lm, first, Decoding()).text, exact=True).first.wait_for()
    expect(page).to_have_url(re.compile(re.escape(urllib.parse.quote(first))), timeout=60_000)  # and in the link
