"""Sessions: the page state in the URL, save/load as JSON, and chart exports.

The keys below (sidebar inputs and each page's choices) are mirrored into ``st.query_params`` after
every run, so a copied link reproduces the view; a new session reads them back before any widget
is drawn. A saved session holds the same state plus what was shown (outputs), and loads back.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import plotly.graph_objects as go
import streamlit as st

# key -> type of its value (URL values are strings)
URL_KEYS: dict[str, type] = {
    "model": str,
    "src": str,
    "decoding": str,
    "beams": int,
    "max_new": int,
    "temperature": float,
    "top_p": float,
    "seed": int,
    "attn.kind": str,
    "attn.layer": str,
    "attn.head": str,
    "attn.granularity": str,
    "attr.method": str,
    "attr.target": str,
    "attr.granularity": str,
    "attr.steps": int,
    "attr.samples": int,
    "attr.compare": str,
    "attr.baseline": str,
    "attr.contrast_step": int,
    "whatif.step": int,
    "whatif.cstep": int,
    "whatif.estep": int,
    "whatif.escale": float,
    "eval.sanity_method": str,
}
SESSION_FORMAT = "lantern-session"
_NUMERIC_CHOICES = {"attn.layer", "attn.head"}  # "mean"/"max" or a number


def safe_text(value: str) -> str:
    """Drop what cannot be sent to a browser as UTF-8 (lone surrogates, e.g. from a JSON ``\\ud800``)."""
    return value.encode("utf-8", "ignore").decode("utf-8")


def _cast(key: str, value: str) -> Any:
    kind = URL_KEYS[key]
    if key in _NUMERIC_CHOICES and value.isdigit():
        return int(value)
    return safe_text(value) if kind is str else kind(value)


def restore_from_url() -> None:
    """Once per browser session, before widgets exist: take the state a link carries."""
    if st.session_state.get("_url_restored"):
        return
    st.session_state["_url_restored"] = True
    for key, value in st.query_params.items():
        if key in URL_KEYS:
            try:
                st.session_state[key] = _cast(key, value)
            except ValueError:
                continue  # a hand-edited link with a bad value: ignore that key


MAX_URL_VALUE = 2000  # characters; longer texts stay out of the link (browsers and servers cap URL length)


def sync_to_url() -> None:
    """Mirror the current state into the URL (only keys that have a value, and not very long texts)."""
    wanted = {k: str(st.session_state[k]) for k in URL_KEYS if k in st.session_state}
    wanted = {k: v for k, v in wanted.items() if len(v) <= MAX_URL_VALUE}
    if {k: st.query_params.get(k) for k in wanted} != wanted:
        st.query_params.from_dict(wanted)


def session_json(outputs: dict[str, Any] | None = None) -> str:
    state = {k: st.session_state[k] for k in URL_KEYS if k in st.session_state}
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


def load_session(text: str) -> dict[str, Any]:
    """Put a saved session's state back; returns the outputs it recorded. Raises ValueError if it is not one."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"not a JSON file ({err})") from err
    if not isinstance(data, dict) or data.get("format") != SESSION_FORMAT:
        raise ValueError("not a Lantern session file")
    for key, value in data.get("state", {}).items():
        if key in URL_KEYS:
            st.session_state[key] = _cast(key, str(value))
    return data.get("outputs", {})


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


def charts_html() -> str:
    """Every chart of the page in one self-contained HTML file (plotly.js included once, works offline)."""
    figs = list(st.session_state.get("_charts", {}).values())
    parts = [fig.to_html(full_html=False, include_plotlyjs=i == 0) for i, fig in enumerate(figs)]
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Lantern</title></head><body>"
        + "".join(parts)
        + "</body></html>"
    )
