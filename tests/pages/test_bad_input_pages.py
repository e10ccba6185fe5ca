"""Every page with hostile input: a hint, a visible truncation or a note, never an exception or an error box."""

import pytest

from tests.pages.test_pages import open_page
from tests.test_bad_inputs import BAD_INPUTS

PAGES = [
    "app_pages/translate.py",
    "app_pages/attention.py",
    "app_pages/attributions.py",
    "app_pages/whatif.py",
    "app_pages/evaluate.py",
]


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_page_with_bad_input(app_env, page, case):
    text, expected = BAD_INPUTS[case]
    at = open_page(page, src=text)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    if expected == "error":
        assert any("Type a sentence" in i.value for i in at.info)
    if expected == "truncated":
        assert any("The rest was cut" in w.value for w in at.warning)
    if expected == "too long":  # over the input limit: left out (with a note on the first page drawn)
        assert at.session_state["src"] != text
    rendered = " ".join(m.value for m in at.markdown)
    assert "<script>" not in rendered  # markup from the input is escaped, never rendered
