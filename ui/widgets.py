"""Shared widgets and page helpers; every function returns plain values."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import streamlit as st

from explain.types import Translation
from models.adapter import InputError
from models.registry import ModelSpec, checkpoint_roots
from ui import cache

log = logging.getLogger(__name__)
T = TypeVar("T")

SHARED_KEYS = ("model", "src", "decoding", "beams", "max_new")
MAX_INPUT_CHARS = 5000  # the text box refuses more; the model then reads its own token limit


@dataclass(frozen=True)
class Inputs:
    spec: ModelSpec
    text: str
    num_beams: int
    max_new_tokens: int

    @property
    def model(self) -> str:
        return self.spec.name

    def args(self) -> tuple[str, str, int, int]:
        """Arguments of the cached runs in ``ui.cache``."""
        return (self.model, self.text, self.num_beams, self.max_new_tokens)


def keep_shared_state() -> None:
    """Keep the sidebar's values when a page without the sidebar is shown (Streamlit drops them)."""
    for key in SHARED_KEYS:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


def _on_model_change() -> None:
    """Swap in the new model's example sentence unless the user typed their own."""
    specs = {s.name: s for s in cache.available_models()}
    new = specs.get(st.session_state.get("model"))
    if new and st.session_state.get("src", "").strip() in ("", st.session_state.get("_example")):
        st.session_state["src"] = new.example
    if new:
        st.session_state["_example"] = new.example


def sidebar_inputs() -> Inputs:
    """Model, source text and decoding in the sidebar; stops the page when no model exists."""
    specs = cache.available_models()
    if not specs:
        roots = ", ".join(str(r) for r in checkpoint_roots())
        st.error(
            f"No model checkpoints found under {roots}. Train one: `python -m models.train configs/lstm_zh_en.toml`."
        )
        st.stop()
    by_name = {s.name: s for s in specs}
    state = st.session_state
    if state.get("model") not in by_name:
        state["model"] = specs[0].name
    spec = by_name[state["model"]]
    state.setdefault("src", spec.example)
    state.setdefault("_example", spec.example)
    state.setdefault("decoding", "greedy")
    state.setdefault("beams", 5)
    state.setdefault("max_new", 64)
    with st.sidebar:
        st.selectbox(
            "Model", list(by_name), key="model", format_func=lambda n: by_name[n].title, on_change=_on_model_change
        )
        st.text_area(
            "Source text",
            key="src",
            height=110,
            max_chars=MAX_INPUT_CHARS,
            help="Any text; it is normalised (NFKC, invisible characters removed) before the model reads it.",
        )
        st.radio("Decoding", ["greedy", "beam search"], key="decoding", horizontal=True)
        if state["decoding"] == "beam search":
            st.slider("Beam size", 2, 10, key="beams")
        st.number_input("Max output tokens", min_value=1, max_value=256, key="max_new")
    beams = state["beams"] if state["decoding"] == "beam search" else 1
    return Inputs(spec, state["src"], int(beams), int(state["max_new"]))


def run_or_explain(fn: Callable[..., T], *args: object) -> T:
    """Call a cached computation; show bad input as a hint and failures as an error, never a traceback."""
    try:
        return fn(*args)
    except InputError as err:
        st.info(f"Type a sentence in the sidebar: {err}.")
    except Exception as err:  # a page must never die with a traceback
        log.exception("computation failed")
        st.error(f"Lantern could not compute this: {type(err).__name__}: {err}")
    st.stop()
    raise AssertionError("unreachable")  # st.stop() raises


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$&])")


def md_escape(text: str) -> str:
    """Escape Markdown (and so HTML) so model or user text shows literally."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def input_notes(translation: Translation) -> None:
    """Warnings about what the model did to the input: unknown characters, truncation."""
    if translation.unknown:
        chars = " ".join(f"`{u}`" if "`" not in u else repr(u) for u in translation.unknown)
        st.warning(
            f"Not in this model's vocabulary: {chars}. The model reads them as `<unk>` "
            "(shown as such in the tokens below)."
        )
    if translation.truncated:
        st.warning(
            f"The text has {translation.n_src_tokens} tokens; this model reads the first "
            f"{len(translation.src_ids)}. The rest was cut."
        )
