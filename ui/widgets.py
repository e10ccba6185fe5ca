"""Shared widgets and page helpers; every function returns plain values."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import streamlit as st

from explain.aggregate import AGGREGATIONS
from explain.attribution import METHODS
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


def run_or_explain(fn: Callable[..., T], *args: object, **kwargs: object) -> T:
    """Call a cached computation; show bad input as a hint and failures as an error, never a traceback."""
    try:
        return fn(*args, **kwargs)
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
            f"{translation.n_kept_tokens}. The rest was cut."
        )


TARGET_LABELS = {
    "logprob": "log-probability of each token",
    "prob": "probability of each token",
    "contrast": "contrast with an alternative",
}


@dataclass(frozen=True)
class AttributionControls:
    method: str
    target: str
    contrast_step: int | None
    contrast_token: str | None
    contrast_text: str | None
    with_prefix: bool
    n_steps: int
    n_samples: int
    compare: str | None  # a second method shown side by side
    word_agg: str | None  # None: tokens; else merge subwords into words with this aggregation
    figure_format: str

    def args(self, method: str | None = None) -> tuple:
        """Arguments of ``ui.cache.run_attribution`` after the input arguments."""
        return (method or self.method, self.target, self.contrast_step, self.contrast_token, self.contrast_text,
                self.with_prefix, self.n_steps, self.n_samples)  # fmt: skip

    @property
    def figure_config(self) -> dict:
        return {"toImageButtonOptions": {"format": self.figure_format, "filename": f"lantern-{self.method}"}}


def attribution_controls(translation: Translation) -> AttributionControls:
    """Method, target, granularity and settings of the Attributions page."""
    ids = list(METHODS)
    c1, c2, c3 = st.columns(3)
    method = c1.selectbox("Method", ids, index=ids.index("input_x_gradient"), key="attr.method",
                          format_func=lambda m: METHODS[m].title)  # fmt: skip
    c1.caption(METHODS[method].description)
    target = c2.radio("What is explained", list(TARGET_LABELS), format_func=TARGET_LABELS.get, key="attr.target")
    granularity = c3.radio("Granularity", ["tokens", "words"], horizontal=True, key="attr.granularity")
    word_agg = c3.selectbox("Merge subwords by", AGGREGATIONS, key="attr.agg") if granularity == "words" else None
    step = token = text = None
    if target == "contrast":
        mode = c2.radio("Alternative", ["one token", "a whole output"], horizontal=True, key="attr.contrast_mode")
        if mode == "one token":
            tokens = translation.tgt_tokens
            step = c2.selectbox("At output token", range(len(tokens)), key="attr.contrast_step",
                                format_func=lambda t: f"{t}: {tokens[t]}")  # fmt: skip
            step = min(step, len(tokens) - 1)
            options = [a for a in translation.alt_tokens[step] if a != tokens[step]]
            token = c2.selectbox("Rather than", options, key="attr.contrast_token",
                                 help="The model's runners-up at that step.")  # fmt: skip
        else:
            text = c2.text_input("Rather than this output", key="attr.contrast_text",
                                 help="Compared token by token, each after the model's own prefix.")  # fmt: skip
            if not text.strip():
                st.info("Type the alternative output to contrast with.")
                st.stop()
    others = ["", *[m for m in ids if m != method]]
    with st.expander("Settings"):
        with_prefix = st.checkbox(
            "Also attribute to the target prefix (earlier output tokens)", True, key="attr.prefix"
        )
        n_steps = st.slider("Integration steps (integrated gradients)", 4, 128, 32, key="attr.steps")
        n_samples = st.slider("Samples (Gradient SHAP, Shapley, LIME)", 4, 200, 25, key="attr.samples")
        compare = st.selectbox("Compare with", others, key="attr.compare",
                               format_func=lambda m: METHODS[m].title if m else "(nothing)")  # fmt: skip
        fmt = st.radio("Chart download format", ["png", "svg"], horizontal=True, key="attr.figfmt")
    return AttributionControls(method, target, step, token, text, with_prefix, n_steps, n_samples,
                               compare or None, word_agg, fmt)  # fmt: skip
