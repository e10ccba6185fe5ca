"""Fuzzing the pages the way a person (or a crafted link) reaches them: random values in the link, in a loaded
session file and in the widgets' stored state. The invariant: the page draws, with a note or a message where a
value was refused, never an exception. Bounded (a few dozen app runs) and derandomised."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from tests.pages.test_pages import APP
from tests.pages.test_reliability import load_session
from tests.test_fuzz import json_values, numbers, texts
from ui.fields import FIELDS

PAGES = [
    "app_pages/translate.py",
    "app_pages/attention.py",
    "app_pages/attributions.py",
    "app_pages/alignments.py",
    "app_pages/whatif.py",
    "app_pages/explorer.py",
]
RUNS = settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
keys = st.sampled_from(sorted(FIELDS))
link_values = st.one_of(texts, numbers.map(str), st.sampled_from(["", "mean", "max", "-1", "1e400", "nan", "9" * 40]))


def run_page(page: str, state: dict | None = None, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["model"] = "tiny-zh-en"
    for key, value in (state or {}).items():
        at.session_state[key] = value
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


@RUNS
@given(st.sampled_from(PAGES), st.dictionaries(keys, link_values, max_size=6))
def test_any_link_opens_every_page(app_env, page, query):
    run_page(page, query={"src": "我爱你。", **query})


@RUNS
@given(st.sampled_from(PAGES), st.dictionaries(keys, json_values, max_size=6))
def test_any_stored_widget_value_is_dropped_or_drawn(app_env, page, state):
    run_page(page, state={"src": "我爱你。", **state})


@RUNS
@given(st.dictionaries(st.one_of(keys, texts), json_values, max_size=6), json_values)
def test_any_session_file_loads_or_is_refused_with_a_message(app_env, state, outputs):
    at = run_page("app_pages/translate.py", state={"src": "我爱你。"})
    data = json.dumps({"format": "lantern-session", "version": 1, "state": state, "outputs": outputs}).encode()
    load_session(at, data)
    assert not at.exception, at.exception
