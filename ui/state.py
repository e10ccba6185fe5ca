"""Sessions: the page state in the URL, save/load as JSON, state handed over between runs, and chart exports.

The keys of ``ui.fields.FIELDS`` (sidebar inputs and each page's choices) are mirrored into
``st.query_params`` after every run, so a copied link reproduces the view; a new session reads them back
before any widget is drawn. A saved session holds the same state plus what was shown (outputs).

Every value from outside (a link, a session file) goes through ``ui.fields.clean_state``. State that must
change after the page drew its widgets (loading a session, loading a model, an "open this in..." link) is
never written into a widget's key directly, which Streamlit forbids: ``request_state`` hands it to the next
run, whose first act, before any widget exists, is ``apply_pending_state``.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any, NoReturn

import plotly.graph_objects as go
import streamlit as st

from common.limits import limit
from ui.fields import FIELDS, clean_state

SESSION_FORMAT = "lantern-session"


class PageStop(Exception):
    """The page has shown what it can (a hint, an error, a button to press): the rest of it is skipped.

    Not ``st.stop()``: that asks Streamlit to stop the whole script run, so the session tools drawn after the
    page (and the URL written last) would be cut off too. app.py catches this after the page."""


def stop_page() -> NoReturn:
    raise PageStop


def safe_text(value: str) -> str:
    """Drop what cannot be sent to a browser as UTF-8 (lone surrogates, e.g. from a JSON ``\\ud800``)."""
    return value.encode("utf-8", "ignore").decode("utf-8")


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$&])")


def md_escape(text: str) -> str:
    """Escape Markdown (and so HTML) so model or user text shows literally."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def note(*messages: str) -> None:
    """Messages for the user about state that was not taken (shown once, at the top of the next page drawn)."""
    st.session_state.setdefault("_notes", []).extend(messages)


def show_notes() -> None:
    for message in st.session_state.pop("_notes", []):  # they quote links and files: shown as text
        st.warning(md_escape(message), icon=":material/info:")


def request_state(updates: dict[str, Any]) -> NoReturn:
    """Set state on the next run, before its widgets exist (``apply_pending_state``), and start that run now."""
    st.session_state.setdefault("_pending_state", {}).update(updates)
    st.rerun()


def apply_pending_state() -> None:
    """First thing of every run: the state ``request_state`` handed over."""
    for key, value in st.session_state.pop("_pending_state", {}).items():
        st.session_state[key] = value


def restore_from_url() -> None:
    """Once per browser session, before widgets exist: take the state a link carries (checked like any input)."""
    if st.session_state.get("_url_restored"):
        return
    st.session_state["_url_restored"] = True
    state, notes = clean_state(dict(st.query_params.items()), "This link")
    st.session_state.update(state)
    note(*notes)


def check_widget_state() -> None:
    """Before the sidebar's and pages' widgets are drawn: any stored value a widget could not show is dropped
    (the widget then shows its default), whatever put it there."""
    present = {k: st.session_state[k] for k in FIELDS if k in st.session_state}
    state, notes = clean_state(present, "The page state")
    for key in present.keys() - state.keys():
        del st.session_state[key]
    note(*notes)


def sync_to_url() -> None:
    """Mirror the current state into the URL (only keys that have a value, and not very long texts).

    Written on every run, not only when a value changed: moving to another page through the menu leaves the
    browser's address bare while the server still holds the old parameters, so a comparison would skip it."""
    wanted = {k: str(st.session_state[k]) for k in FIELDS if k in st.session_state}
    st.query_params.from_dict({k: v for k, v in wanted.items() if len(v) <= limit("url_value_chars")})


def session_json(outputs: dict[str, Any] | None = None) -> str:
    state = {k: st.session_state[k] for k in FIELDS if k in st.session_state}
    return json.dumps(
        {
            "format": SESSION_FORMAT,
            "version": 1,
            "saved": datetime.now(UTC).isoformat(timespec="seconds"),
            "state": state,
            "outputs": outputs or {},
        },
        ensure_ascii=False,
        indent=1,
    )


def parse_session(data: bytes) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(state, recorded outputs, notes on values left out) of a saved session; ``ValueError`` saying why a file
    is not one. Never anything else: deep nesting, wrong types and huge files are all refused with a reason."""
    most = int(limit("session_bytes"))  # state and the outputs shown (an attribution's scores among them)
    if len(data) > most:
        raise ValueError(f"the file has {len(data):,} bytes; a session file has at most {most:,}")
    try:
        parsed = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError("the file is not UTF-8 text") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"not a JSON file ({err})") from None
    except RecursionError:
        raise ValueError("the JSON is nested too deeply to be a session file") from None
    if not isinstance(parsed, dict) or parsed.get("format") != SESSION_FORMAT:
        raise ValueError("not a Lantern session file")
    state = parsed.get("state", {})
    if not isinstance(state, dict):
        raise ValueError(f"its state is a {type(state).__name__}, not a table of values")
    outputs = parsed.get("outputs", {})
    cleaned, notes = clean_state(state, "The session file")
    return cleaned, outputs if isinstance(outputs, dict) else {}, notes


# --- charts ---------------------------------------------------------------------------------------


def reset_charts() -> None:
    st.session_state["_charts"] = {}


def chart(fig: go.Figure, key: str) -> None:
    """Draw a figure with a PNG/SVG download in its toolbar, and keep it for the page's HTML export."""
    fmt = st.session_state.get("figfmt", "png")
    st.plotly_chart(
        fig,
        key=key,
        config={"toImageButtonOptions": {"format": fmt, "filename": f"lantern-{key}"}, "displaylogo": False},
    )
    st.session_state.setdefault("_charts", {})[key] = fig


def charts_html(figs: list[go.Figure] | None = None) -> str:
    """Every chart of the page (``figs``, default: the charts drawn in this run) in one self-contained HTML file
    (plotly.js included once, works offline)."""
    if figs is None:
        figs = list(st.session_state.get("_charts", {}).values())
    parts = [fig.to_html(full_html=False, include_plotlyjs=i == 0) for i, fig in enumerate(figs)]
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Lantern</title></head><body>"
        + "".join(parts)
        + "</body></html>"
    )
