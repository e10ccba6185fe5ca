"""Shared widgets and page helpers; every function returns plain values."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import streamlit as st

from common.paths import checkpoint_roots
from explain.aggregate import AGGREGATIONS
from explain.attention_views import KIND_LABELS, attention_stack, available_kinds
from explain.attribution import AttributionTimeout
from explain.methods import METHODS
from explain.types import AttentionMaps, Translation
from models.adapter import Decoding, InputError
from models.pretrained import PretrainedModelError
from models.registry import ModelSpec, pretrained_spec
from ui import cache
from ui import state as ui_state
from ui.state import safe_text
from viz.tokens import prettify_token

log = logging.getLogger(__name__)
T = TypeVar("T")

SHARED_KEYS = ("model", "src", "decoding", "beams", "max_new", "temperature", "top_p", "seed", "extra_models")
MAX_INPUT_CHARS = 5000  # the text box refuses more; the model then reads its own token limit
DECODINGS = ("greedy", "beam search", "sampling")


@dataclass(frozen=True)
class Inputs:
    spec: ModelSpec
    text: str
    decoding: Decoding

    @property
    def model(self) -> str:
        return self.spec.name

    def args(self) -> tuple[ModelSpec, str, Decoding]:
        """Arguments of the cached runs in ``ui.cache``."""
        return (self.spec, self.text, self.decoding)


def keep_shared_state() -> None:
    """Keep the sidebar's values when a page without the sidebar is shown (Streamlit drops them)."""
    for key in SHARED_KEYS:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


def _specs() -> dict[str, ModelSpec]:
    specs = [*cache.available_models(), *st.session_state.get("extra_models", [])]
    return {s.name: s for s in specs}


def _on_model_change() -> None:
    """Swap in the new model's example sentence unless the user typed their own."""
    new = _specs().get(st.session_state.get("model"))
    if new and st.session_state.get("src", "").strip() in ("", st.session_state.get("_example")):
        st.session_state["src"] = new.example
    if new:
        st.session_state["_example"] = new.example


def _load_another_model() -> None:
    """Sidebar form: load a pretrained model by hub id or folder for this session."""
    with st.expander("Load another model"):
        st.text_input(
            "Hugging Face hub id or model folder",
            key="model.add",
            placeholder="Helsinki-NLP/opus-mt-zh-en",
            help="Read from the local Hugging Face cache "
            "or a folder under the model roots; weights only from safetensors, no remote code.",
        )
        if st.button("Load", key="model.load"):
            try:
                spec = pretrained_spec(st.session_state.get("model.add", ""))
                cache.get_model(spec)
            except PretrainedModelError as err:
                st.error(str(err))
                return
            extra = [s for s in st.session_state.get("extra_models", []) if s.name != spec.name]
            st.session_state["extra_models"] = [*extra, spec]
            st.session_state["model"] = spec.name
            _on_model_change()
            st.rerun()


def sidebar_inputs() -> Inputs:
    """Model, source text and decoding in the sidebar; stops the page when no model exists."""
    by_name = _specs()
    if not by_name:
        roots = ", ".join(str(r) for r in checkpoint_roots())
        st.error(
            f"No model checkpoints found under {roots}. Train one: `python -m training.train configs/lstm_zh_en.toml`."
        )
        st.stop()
    state = st.session_state
    if state.get("model") not in by_name:
        state["model"] = next(iter(by_name))
    spec = by_name[state["model"]]
    for key, value in (
        ("src", spec.example),
        ("_example", spec.example),
        ("decoding", "greedy"),
        ("beams", 5),
        ("max_new", 64),
        ("temperature", 0.7),
        ("top_p", 0.9),
        ("seed", 0),
    ):
        state.setdefault(key, value)
    state["src"] = safe_text(str(state["src"]))  # however it got there, the text box must be able to send it
    with st.sidebar:
        st.selectbox(
            "Model", list(by_name), key="model", format_func=lambda n: by_name[n].title, on_change=_on_model_change
        )
        _load_another_model()
        label = "Prompt" if spec.task == "generate" else "Source text"
        st.text_area(
            label,
            key="src",
            height=110,
            max_chars=MAX_INPUT_CHARS,
            help="Any text; it is normalised (NFKC, invisible characters removed) before the model reads it.",
        )
        st.radio("Decoding", DECODINGS, key="decoding", horizontal=True)
        if state["decoding"] == "beam search":
            st.slider("Beam size", 2, 10, key="beams")
        if state["decoding"] == "sampling":
            st.slider("Temperature", 0.1, 2.0, step=0.05, key="temperature")
            st.slider("Top-p", 0.05, 1.0, step=0.05, key="top_p")
            st.number_input("Seed", min_value=0, max_value=2**31 - 1, key="seed")
        st.number_input("Max output tokens", min_value=1, max_value=256, key="max_new")
    choice = state["decoding"]
    decoding = Decoding(
        num_beams=int(state["beams"]) if choice == "beam search" else 1,
        max_new_tokens=int(state["max_new"]),
        do_sample=choice == "sampling",
        temperature=float(state["temperature"]) if choice == "sampling" else 1.0,
        top_p=float(state["top_p"]) if choice == "sampling" else 1.0,
        seed=int(state["seed"]) if choice == "sampling" else 0,
    )
    return Inputs(spec, state["src"], decoding)


def run_or_explain(fn: Callable[..., T], *args: object, **kwargs: object) -> T:
    """Call a cached computation; show bad input as a hint and failures as an error, never a traceback."""
    try:
        return fn(*args, **kwargs)
    except InputError as err:
        st.info(f"Type a sentence in the sidebar: {err}.")
    except AttributionTimeout as err:
        st.warning(f"This explanation took too long for this server and was {err}.")
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
    contrast_token: int | None  # a token id of the output vocabulary
    contrast_text: str | None
    with_prefix: bool
    n_steps: int
    n_samples: int
    compare: str | None  # a second method shown side by side
    word_agg: str | None  # None: tokens; else merge subwords into words with this aggregation
    baseline: str = "pad"

    def args(self, method: str | None = None) -> tuple:
        """Arguments of ``ui.cache.run_attribution`` after the input arguments."""
        return (
            method or self.method,
            self.target,
            self.contrast_step,
            self.contrast_token,
            self.contrast_text,
            self.with_prefix,
            self.n_steps,
            self.n_samples,
            self.baseline,
        )


def attribution_controls(translation: Translation, decoder_only: bool = False) -> AttributionControls:
    """Method, target, granularity and settings of the Attributions page.

    Decoder-only models default to the ``<unk>`` baseline: they normalise first (RMSNorm/LayerNorm),
    which makes an all-zero padding baseline degenerate for path methods.
    """
    ids = list(METHODS)
    c1, c2, c3 = st.columns(3)
    method = c1.selectbox(
        "Method", ids, index=ids.index("input_x_gradient"), key="attr.method", format_func=lambda m: METHODS[m].title
    )
    c1.caption(METHODS[method].description)
    target = c2.radio("What is explained", list(TARGET_LABELS), format_func=TARGET_LABELS.get, key="attr.target")
    granularity = c3.radio("Granularity", ["tokens", "words"], horizontal=True, key="attr.granularity")
    word_agg = c3.selectbox("Merge subwords by", AGGREGATIONS, key="attr.agg") if granularity == "words" else None
    step = token = text = None
    if target == "contrast":
        mode = c2.radio("Alternative", ["one token", "a whole output"], horizontal=True, key="attr.contrast_mode")
        if mode == "one token":
            tokens = translation.tgt_tokens
            step = c2.selectbox(
                "At output token",
                range(len(tokens)),
                key="attr.contrast_step",
                format_func=lambda t: f"{t}: {tokens[t]}",
            )
            step = min(step, len(tokens) - 1)
            # token ids, not display strings: byte-level vocabularies show a token differently from how it is stored
            names = dict(zip(translation.alt_ids[step], translation.alt_tokens[step], strict=True))
            options = [i for i in translation.alt_ids[step] if i != translation.tgt_ids[step]]
            token = c2.selectbox(
                "Rather than",
                options,
                key="attr.contrast_token",
                format_func=lambda i: prettify_token(names[i]),
                help="The model's runners-up at that step.",
            )
        else:
            text = c2.text_input(
                "Rather than this output",
                key="attr.contrast_text",
                help="Compared token by token, each after the model's own prefix.",
            )
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
        compare = st.selectbox(
            "Compare with", others, key="attr.compare", format_func=lambda m: METHODS[m].title if m else "(nothing)"
        )
        baselines = ["unk", "pad"] if decoder_only else ["pad", "unk"]
        baseline = st.radio(
            "Baseline (what a token is replaced with)",
            baselines,
            horizontal=True,
            key="attr.baseline",
            format_func={"pad": "padding", "unk": "<unk> token"}.get,
            help="Path and perturbation methods compare the input with this baseline.",
        )
    return AttributionControls(
        method, target, step, token, text, with_prefix, n_steps, n_samples, compare or None, word_agg, baseline
    )


@dataclass(frozen=True)
class AttentionControls:
    kind: str
    layer: int | str
    head: int | str
    words: bool
    grid: bool
    grid_layers: tuple[int, ...]
    compare: ModelSpec | None


def attention_controls(maps: AttentionMaps, current: ModelSpec) -> AttentionControls:
    """Kind of attention, layer, head, granularity, view and a model to compare with."""
    kinds = available_kinds(maps)
    c1, c2, c3, c4 = st.columns([3, 1, 1, 1])
    kind = c1.selectbox("Attention", kinds, format_func=KIND_LABELS.get, key="attn.kind")
    stacked = kind not in ("rollout", "causal_rollout")
    n_layers, n_heads = attention_stack(maps, kind)[0].shape[:2] if stacked else (0, 0)
    layer = c2.selectbox(
        "Layer",
        ["mean", *range(n_layers)],
        key="attn.layer",
        disabled=not stacked,
        help="One layer, or the mean over layers.",
    )
    head = c3.selectbox(
        "Head",
        ["mean", "max", *range(n_heads)],
        key="attn.head",
        disabled=not stacked,
        help="One head, or the mean / max over the layer's heads.",
    )
    words = c4.radio("Granularity", ["tokens", "words"], key="attn.granularity") == "words"
    grid = (
        stacked
        and st.toggle(
            "All layers × heads (model view)",
            key="attn.grid",
            disabled=words,
            help="Small multiples of every head of every layer, on one colour scale.",
        )
        and not words
    )
    grid_layers: tuple[int, ...] = ()
    if grid:
        if n_layers > 6:
            lo, hi = st.slider("Layers shown", 0, n_layers - 1, (0, 5), key="attn.grid_layers")
            grid_layers = tuple(range(lo, hi + 1))
        else:
            grid_layers = tuple(range(n_layers))
    others = {s.name: s for s in _specs().values() if s.name != current.name}
    name = st.selectbox(
        "Compare with another model",
        ["", *others],
        key="attn.compare",
        format_func=lambda n: others[n].title if n else "(no comparison)",
    )
    return AttentionControls(kind, layer, head, words, grid, grid_layers, others.get(name))


def session_sidebar() -> None:
    """Sidebar "Session": chart download format, the page's charts as HTML, save/load the session as JSON."""
    with st.sidebar.expander("Session: link, save, load, export"):
        st.radio("Chart download format (camera button)", ["png", "svg"], horizontal=True, key="figfmt")
        if st.session_state.get("_charts"):
            st.download_button(
                "This page's charts (HTML)",
                ui_state.charts_html(),
                "lantern-charts.html",
                "text/html",
                key="session.charts",
            )
        outputs = st.session_state.get("_outputs", {})
        st.download_button(
            "Save the session (JSON)",
            ui_state.session_json(outputs),
            "lantern-session.json",
            "application/json",
            key="session.save",
        )
        upload = st.file_uploader("Load a session", type=["json"], key="session.load")
        if upload is not None and st.session_state.get("_loaded_session") != upload.file_id:
            st.session_state["_loaded_session"] = upload.file_id
            try:
                st.session_state["_saved_outputs"] = ui_state.load_session(upload.getvalue().decode("utf-8"))
            except (ValueError, UnicodeDecodeError) as err:
                st.error(f"Could not load this session: {err}")
            else:
                st.rerun()
        st.caption("The address bar always holds a link to this view: copy it to share what you see.")


def page_translation(inputs: Inputs) -> Translation:
    """The sidebar's sentence through the sidebar's model, with its input warnings, recorded for the session."""
    tr = run_or_explain(cache.run_translation, *inputs.args())
    input_notes(tr)
    remember(translation=translation_record(tr))
    return tr


def remember(**outputs: object) -> None:
    """Record what the page showed, for the saved session (plain JSON-able values)."""
    st.session_state.setdefault("_outputs", {}).update(outputs)


def translation_record(tr: Translation) -> dict:
    return {
        "text": tr.text,
        "tokens": list(tr.tgt_tokens),
        "probabilities": [round(float(p), 6) for p in tr.probs],
        "decoding": tr.decoding,
    }
