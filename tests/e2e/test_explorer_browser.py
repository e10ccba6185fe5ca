"""The Dataset explorer in a real browser: a run over a test split, a row selected in the table, and the selected
sentence becoming the sentence of the other pages (and of the link)."""

import re
import urllib.parse

import pytest
from playwright.sync_api import expect

from explain.generation import translate
from explore.run import explore
from explore.sets import dataset
from models.adapter import Decoding
from models.loading import load_model

pytestmark = pytest.mark.e2e
N = 40


def test_run_a_test_split_then_a_selected_row_is_the_sentence_of_every_page(browser_page, app_url):
    page = browser_page
    state = {"model": "transformer-en-fr", "explore.dataset": "test:transformer-en-fr", "explore.limit": N}
    page.goto(f"{app_url}/explorer?{urllib.parse.urlencode(state)}")
    page.get_by_role("heading", name="Dataset explorer").first.wait_for()
    table = page.locator("[data-testid='stDataFrame']")
    run = page.get_by_role("button", name="Run", exact=True)
    expect(table.or_(run).first).to_be_visible(timeout=60_000)
    if run.is_visible():  # not yet run on this server (the finished table is kept for every visitor)
        run.click()
    expect(table).to_be_visible(timeout=120_000)
    assert page.locator("[data-testid='stException']").count() == 0

    lm = load_model("transformer-en-fr")
    frame = explore(lm, dataset(f"test:transformer-en-fr[:{N}]"), tgt_lang="fr")
    first = frame.sort_values("chrF", kind="stable").source.iloc[0]  # the default order: worst chrF first
    expect(page.get_by_text(f"{N} of {N} sentences")).to_be_visible()
    # the row's selection box sits in the grid's first column, one row height below the header; the mouse works in
    # viewport coordinates, so the table is scrolled into view first (the page above it grows with its captions)
    table.scroll_into_view_if_needed()
    box = table.bounding_box()
    page.mouse.move(box["x"] + 15, box["y"] + 35 + 17)
    page.mouse.click(box["x"] + 15, box["y"] + 35 + 17)
    expect(page.get_by_role("textbox", name="Source text")).to_have_value(first, timeout=60_000)
    expect(page).to_have_url(re.compile(re.escape(urllib.parse.quote_plus(first[:12]))), timeout=60_000)
    page.get_by_role("link", name="Translate").first.click()
    page.get_by_text(translate(lm, first, Decoding()).text, exact=True).first.wait_for()


def test_the_table_of_every_shipped_models_test_split_renders(browser_page, app_url):
    from explore import jobs
    from explore.run import save, summary
    from models.registry import get_spec

    page = browser_page
    for model in ("lstm-zh-en", "transformer-zh-en", "lstm-en-de", "transformer-en-de", "transformer-en-fr"):
        spec, ds = get_spec(model), dataset(f"test:{model}[:10]")
        frame = explore(load_model(spec), ds, tgt_lang=spec.tgt_lang)  # the run the page would start, made here
        save(jobs.folder_for(spec, ds), frame, summary(frame, ds, model, 1.0, spec.tgt_lang))
        state = {"model": model, "explore.dataset": f"test:{model}", "explore.limit": 10}
        page.goto(f"{app_url}/explorer?{urllib.parse.urlencode(state)}")
        expect(page.get_by_text("10 of 10 sentences")).to_be_visible(timeout=60_000)
        expect(page.locator("[data-testid='stDataFrame']")).to_be_visible()
        page.get_by_text(f"{len(frame)} of {len(frame)} sentences").wait_for()
        page.get_by_text("chrF by source length (words)").first.wait_for()
        assert page.locator("[data-testid='stException']").count() == 0


def test_winomt_why_this_gender_in_the_browser(browser_page, app_url):
    from explore import jobs
    from explore.run import save, summary
    from models.registry import get_spec

    page = browser_page
    spec, ds = get_spec("transformer-en-fr"), dataset("winomt[:6]")
    frame = explore(load_model(spec), ds, tgt_lang="fr")  # with the gender probe's columns
    save(jobs.folder_for(spec, ds), frame, summary(frame, ds, spec.name, 1.0, "fr"))
    row = frame[frame["profession words"] != ""].iloc[0]
    state = {"model": spec.name, "src": row.source, "explore.dataset": "winomt", "explore.limit": 6}
    page.goto(f"{app_url}/explorer?{urllib.parse.urlencode(state)}")
    page.get_by_text("Gender bias (WinoMT)").wait_for(timeout=60_000)
    page.get_by_text("Contrastive input×gradient").wait_for(timeout=60_000)
    expect(page.get_by_text("Gender accuracy")).to_be_visible()
    assert page.locator("[data-testid='stException']").count() == 0
