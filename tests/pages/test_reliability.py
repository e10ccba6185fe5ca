"""The failures of the hostile-and-careless-user probe (issue 16), each through the page a person uses."""

import json
import re

import pytest
from streamlit.testing.v1 import AppTest

from tests.pages.test_pages import APP, model_names, open_page

SIDEBAR_PAGES = [
    "app_pages/translate.py",
    "app_pages/attention.py",
    "app_pages/attributions.py",
    "app_pages/whatif.py",
    "app_pages/evaluate.py",
]


def session_file(**state: object) -> bytes:
    return json.dumps({"format": "lantern-session", "version": 1, "state": state, "outputs": {}}).encode()


def load_session(at: AppTest, data: bytes) -> AppTest:
    at.file_uploader(key="session.load").set_value(("lantern-session.json", data, "application/json")).run()
    return at


def problems(at: AppTest) -> str:
    """The messages shown, as read (Markdown escapes removed: pages escape what users typed)."""
    return re.sub(r"\\(.)", r"\1", " ".join(e.value for e in [*at.error, *at.warning, *at.info]))


@pytest.mark.parametrize("page", SIDEBAR_PAGES)
def test_f1_a_saved_session_loads_on_a_page_with_sidebar_widgets(app_env, page):
    at = open_page(page, src="我爱你。")
    saved = session_file(src="他喜欢狗。", beams=3, decoding="beam search", model="tiny-zh-en")
    load_session(at, saved)
    assert not at.exception, at.exception
    assert at.session_state["src"] == "他喜欢狗。" and at.session_state["beams"] == 3
    assert at.text_area(key="src").value == "他喜欢狗。"  # the widget shows the loaded text


def test_f2_loading_another_model_switches_to_it(app_env):
    folder = model_names(app_env)["decoder-only"]
    at = open_page("app_pages/translate.py", src="我爱你。")
    at.text_input(key="model.add").set_value(folder).run()
    at.button(key="model.load").click().run()
    assert not at.exception, at.exception
    assert at.session_state["model"] == folder
    assert at.title[0].value == "Generate"  # the page now runs the decoder-only model


def test_f3_a_huge_text_from_a_session_or_link_is_refused_with_a_message(app_env):
    at = open_page("app_pages/translate.py", src="我爱你。")
    load_session(at, session_file(src="我" * 200_000))
    assert not at.exception, at.exception
    assert "200,000 characters" in problems(at)
    assert at.session_state["src"] == "我爱你。"  # the session kept what it had
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["src"] = "我" * 20_000
    at.run()
    assert not at.exception and "20,000 characters" in problems(at)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("beams", "999", "beams"),
        ("temperature", "nan", "temperature"),
        ("top_p", "-1", "top_p"),
        ("attr.steps", "100000", "attr.steps"),
        ("attr.samples", "100000", "attr.samples"),
        ("whatif.escale", "1e9", "whatif.escale"),
        ("max_new", "100000", "max_new"),
        ("attr.method", "gradcam", "attr.method"),
        ("attn.layer", "-3", "attn.layer"),
    ],
)
def test_f7_out_of_range_link_values_are_ignored_with_a_message(app_env, key, value, message):
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["model"] = "tiny-zh-en"
    for k, v in {"src": "我爱你。", "decoding": "sampling", key: value}.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, at.exception
    assert message in problems(at), problems(at)  # said on the first page the link opens
    page = "app_pages/whatif.py" if key.startswith("whatif") else "app_pages/attributions.py"
    at.switch_page(page).run()  # and the page whose widget it is draws its default instead
    assert not at.exception, at.exception


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"format": "lantern-session", "state": []}', "Could not load this session: its state is a list"),
        (b'{"format": "lantern-session", "state": "beams"}', "Could not load this session: its state is a str"),
        (b'{"format": "lantern-session", "state": null}', "Could not load this session: its state is a NoneType"),
        (b"[" * 100_000 + b"]" * 100_000, "Could not load this session: the JSON is nested too deeply"),
        (b"\xff\xfe not utf-8", "Could not load this session: the file is not UTF-8"),
        (
            b'{"format": "lantern-session", "state": {"beams": [1, 2], "src": "hi"}, "outputs": 3}',
            "The session file set beams = [1, 2], which must be a whole number, not a list; it was ignored.",
        ),
    ],
    ids=["list", "string", "null", "deep nesting", "not utf-8", "wrong types"],
)
def test_f8_malformed_session_files_give_a_message(app_env, data, message):
    at = open_page("app_pages/translate.py", src="我爱你。")
    load_session(at, data)
    assert not at.exception, at.exception
    assert message in problems(at), problems(at)


def test_f12_scoring_a_huge_output_is_refused_and_ratios_never_print_inf(app_env):
    at = open_page("app_pages/whatif.py", src="我爱你。", **{"whatif.output": "love " * 3000})
    assert not at.exception, at.exception
    assert "characters" in problems(at)
    at = open_page("app_pages/whatif.py", src="我爱你。", **{"whatif.output": "dogs " * 200})
    assert not at.exception, at.exception
    assert "inf" not in " ".join(m.value for m in at.markdown).replace("infin", "")


def test_f13_contrast_with_a_byte_level_runner_up(app_env, monkeypatch):
    """Runner-ups are passed back by id: a display string of a byte-level token is never looked up as a token."""
    name = str(app_env.parent / "models" / "tiny-bytes")
    monkeypatch.setenv("LANTERN_HUB_MODELS", name)
    at = open_page("app_pages/whatif.py", model=name, src="أنا أحب", max_new=4)
    assert not at.exception, at.exception
    assert at.session_state["model"] == name
    assert at.selectbox(key="whatif.calt").options
    assert not any("not a token" in m.value for m in [*at.error, *at.warning]), [e.value for e in at.error]
    assert at.get("plotly_chart")  # the contrast's bars are drawn


def test_f14_markup_in_a_model_name_is_shown_as_text(app_env):
    at = open_page("app_pages/translate.py", src="我爱你。")
    at.text_input(key="model.add").set_value("![i](https://example.com/t.png)").run()
    at.button(key="model.load").click().run()
    assert not at.exception
    shown = " ".join(e.value for e in at.error)
    assert "example" in shown and "![i](" not in shown  # Markdown escaped: shown as text, no image requested


def test_a_page_that_ends_early_still_draws_the_session_tools_and_the_link(app_env):
    """A hint (here: no text) ends the page, not the run: the session panel and the URL still follow."""
    at = open_page("app_pages/attention.py", src="\u200b")
    assert not at.exception and any("Type a sentence" in i.value for i in at.info)
    assert at.get("download_button") and at.file_uploader(key="session.load")
    assert at.query_params.get("model") == ["tiny-zh-en"] or at.query_params.get("model") == "tiny-zh-en"


def test_f14_notes_that_quote_a_link_show_its_markup_as_text(app_env):
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["beams"] = "![i](https://example.com/t.png)"
    at.run()
    shown = " ".join(w.value for w in at.warning)
    assert "beams" in shown and "example" in shown and "![i](" not in shown
