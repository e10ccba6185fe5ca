"""The Alignments page in a real browser: a shared link to a Hansards sentence shows its AER against the gold."""

import urllib.parse

import pytest
from playwright.sync_api import expect

from explain.alignment import find_gold, sentence_alignment
from explain.generation import force_translation
from models.loading import load_model

pytestmark = pytest.mark.e2e


def idle(page) -> None:
    page.locator("[data-testid='stStatusWidget']").wait_for(state="hidden")


def test_a_shared_link_to_a_hansards_sentence_shows_its_aer(browser_page, app_url):
    src = "it is our hope to make a decision this week ."
    found = find_gold(src)
    if found is None:
        pytest.skip("the Hansards gold alignments (../shared/data/gold-align-en-fr) are not on this machine")
    _, ref, gold = found
    lm = load_model("transformer-en-fr")
    state = {"model": "transformer-en-fr", "src": src, "align.extraction": "grow-diag", "align.layer": "mean"}
    expected = sentence_alignment(lm, force_translation(lm, src, ref), "attention", "mean", "grow-diag", gold=gold)
    page = browser_page
    page.goto(f"{app_url}/alignments?{urllib.parse.urlencode(state)}")
    page.get_by_role("heading", name="Alignments").first.wait_for()
    aer = page.locator("[data-testid='stMetric']").filter(has_text="AER").locator("[data-testid='stMetricValue']")
    expect(aer).to_have_text(f"{expected.score.aer:.1%}", timeout=60_000)
    page.get_by_text(expected.pharaoh, exact=True).first.wait_for()
    idle(page)
    assert page.locator("[data-testid='stException']").count() == 0
    assert page.get_by_text("Traceback").count() == 0
