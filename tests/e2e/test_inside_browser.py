"""The Inside page in a real browser: a shared link opens a view, another view is picked, its table is exported."""

import csv
import io
import re
import urllib.parse

import numpy as np
import pytest

from explain.generation import translate
from explain.inside import neuron_view
from models.adapter import Decoding
from models.loading import load_model

pytestmark = pytest.mark.e2e


def idle(page) -> None:
    page.locator("[data-testid='stStatusWidget']").wait_for(state="hidden")


def test_a_link_to_the_logit_lens_then_the_neuron_view_and_its_csv(browser_page, app_url):
    page = browser_page
    query = urllib.parse.urlencode({"model": "transformer-zh-en", "src": "我爱北京天安门", "inside.view": "lens"})
    page.goto(f"{app_url}/inside?{query}")
    page.get_by_role("heading", name="Inside").first.wait_for()
    page.get_by_text("tuned lens").first.wait_for()  # the logit lens with its caveat
    page.locator(".js-plotly-plot .heatmaplayer").first.wait_for()
    idle(page)
    assert page.locator("[data-testid='stException']").count() == 0

    page.get_by_role("combobox", name="View").click()
    page.get_by_role("option", name="Neuron view").click()
    page.get_by_text("weighs each key for the query").first.wait_for()
    idle(page)
    page.wait_for_url(re.compile(r"inside\.view=neuron"))  # the view is in the link (written as the run ends)
    idle(page)
    with page.expect_download() as download:
        page.get_by_role("button", name="Table as CSV").click()
    with open(download.value.path(), encoding="utf-8") as f:
        rows = list(csv.DictReader(io.StringIO(f.read())))
    lm = load_model("transformer-zh-en")
    expected = neuron_view(lm, translate(lm, "我爱北京天安门", Decoding()), 0, 0, 0, "cross")  # the view's defaults
    np.testing.assert_allclose([float(r["attention"]) for r in rows], expected.attention, atol=1e-6)
    assert [int(r["position"]) for r in rows] == expected.key_positions.tolist()
