"""Shared widgets and page helpers; every function returns plain values."""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import streamlit as st

from common.limits import limit
from common.paths import checkpoint_roots
from explain.deadline import ComputationTimeout
from explain.types import Translation
from models.decoding import CheckpointError, Decoding, InputError, PretrainedModelError
from models.registry import ModelSpec, pretrained_spec
from ui import cache
from ui import state as ui_state
from ui.fields import DECODINGS, FIELDS, MAX_NAME_CHARS
from ui.state import md_escape, safe_text, stop_page

log = logging.getLogger(__name__)
T = TypeVar("T")

SHARED_KEYS = (
    "model",
    "src",
    "decoding",
    "beams",
    "max_new",
    "temperature",
    "top_p",
    "seed",
    "extra_models",
    "prompt_view",
)
PROMPT_VIEWS = {"sentence": "your sentence", "prompt": "the whole prompt"}


@dataclass(frozen=True)
class Inputs:
    spec: ModelSpec
    text: str
    decoding: Decoding
    whole_prompt: bool = False  # a prompted model: explanations show every prompt token, not only the sentence's

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


def offered_models() -> dict[str, ModelSpec]:
    specs = [*cache.available_models(), *st.session_state.get("extra_models", [])]
    return {s.name: s for s in specs}


def _on_model_change() -> None:
    """Swap in the new model's example sentence unless the user typed their own."""
    new = offered_models().get(st.session_state.get("model"))
    if new and st.session_state.get("src", "").strip() in ("", st.session_state.get("_example")):
        st.session_state["src"] = new.example
    if new:
        st.session_state["_example"] = new.example


def _load_another_model() -> None:
    """Sidebar form: load a pretrained model by hub id or folder for this session, then switch to it."""
    with st.expander("Load another model"):
        st.text_input(
            "Hugging Face hub id or model folder",
            key="model.add",
            max_chars=MAX_NAME_CHARS,
            placeholder="Helsinki-NLP/opus-mt-zh-en",
            help="Read from the local Hugging Face cache "
            "or a folder under the model roots; weights only from safetensors, no remote code.",
        )
        if st.button("Load", key="model.load"):
            try:
                cache.warm_up().join()  # reads the config with transformers: never beside the background import
                spec = pretrained_spec(st.session_state.get("model.add", ""))
                cache.get_model(spec)
            except (PretrainedModelError, CheckpointError) as err:
                st.error(md_escape(str(err)))
                return
            _add_model(spec)
            # the model selectbox exists already in this run: the switch happens at the top of the next one
            update = {"model": spec.name, "_example": spec.example}
            if st.session_state.get("src", "").strip() in ("", st.session_state.get("_example")):
                update["src"] = spec.example
            ui_state.request_state(update)


def _add_model(spec: ModelSpec) -> None:
    extra = [s for s in st.session_state.get("extra_models", []) if s.name != spec.name]
    st.session_state["extra_models"] = [*extra, spec]


def _known_model(name: object, by_name: dict[str, ModelSpec]) -> bool:
    """Whether ``name`` (from a link or a session) is a model of this server, adding a folder or hub id it names."""
    if name in by_name:
        return True
    if not isinstance(name, str) or not name.strip():
        return False
    try:
        cache.warm_up().join()  # reads the config with transformers: never beside the background import
        spec = pretrained_spec(name)
    except PretrainedModelError as err:
        ui_state.note(f"The model {name!r} is not available here ({err}); showing {next(iter(by_name))} instead.")
        return False
    _add_model(spec)
    by_name[spec.name] = spec
    return True


def bounds(key: str) -> tuple:
    """(low, high) of a numeric widget: the range ``ui.fields`` accepts from links and sessions."""
    field = FIELDS[key]
    return (field.kind(field.low), field.kind(field.high))


def sidebar_inputs() -> Inputs:
    """Model, source text and decoding in the sidebar; stops the page when no model exists."""
    by_name = offered_models()
    if not by_name:
        roots = ", ".join(str(r) for r in checkpoint_roots())
        st.error(
            f"No model checkpoints found under {roots}. Train one: `python -m training.train configs/lstm_zh_en.toml`."
        )
        stop_page()
    state = st.session_state
    if not _known_model(state.get("model"), by_name):
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
        ("prompt_view", "sentence"),
    ):
        state.setdefault(key, value)
    state["src"] = safe_text(str(state["src"]))  # however it got there, the text box must be able to send it
    with st.sidebar:
        titles = Counter(s.title for s in by_name.values())  # two models with one title: the names tell them apart
        st.selectbox(
            "Model",
            list(by_name),
            key="model",
            format_func=lambda n: by_name[n].title if titles[by_name[n].title] == 1 else f"{by_name[n].title} · {n}",
            on_change=_on_model_change,
        )
        _load_another_model()
        label = "Prompt" if spec.task == "generate" else "Source text"
        st.text_area(
            label,
            key="src",
            height=110,
            max_chars=int(limit("input_chars")),
            help="Any text; it is normalised (NFKC, invisible characters removed) before the model reads it.",
        )
        if spec.prompt:
            st.radio(
                "Input tokens shown",
                list(PROMPT_VIEWS),
                key="prompt_view",
                format_func=PROMPT_VIEWS.get,
                horizontal=True,
                help="This base model translates because your sentence follows three translated example pairs (a "
                "few-shot prompt). Explanations are computed over every prompt token; the pages show your "
                "sentence's tokens unless you ask for the whole prompt.",
            )
        if spec.licence:
            st.caption(f"Licence: {spec.licence}")
        st.radio("Decoding", DECODINGS, key="decoding", horizontal=True)
        if state["decoding"] == "beam search":
            st.slider("Beam size", *bounds("beams"), key="beams")
        if state["decoding"] == "sampling":
            st.slider("Temperature", *bounds("temperature"), step=0.05, key="temperature")
            st.slider("Top-p", *bounds("top_p"), step=0.05, key="top_p")
            st.number_input("Seed", *bounds("seed"), key="seed")
        st.number_input("Max output tokens", *bounds("max_new"), key="max_new")
    choice = state["decoding"]
    decoding = Decoding(
        num_beams=int(state["beams"]) if choice == "beam search" else 1,
        max_new_tokens=int(state["max_new"]),
        do_sample=choice == "sampling",
        temperature=float(state["temperature"]) if choice == "sampling" else 1.0,
        top_p=float(state["top_p"]) if choice == "sampling" else 1.0,
        seed=int(state["seed"]) if choice == "sampling" else 0,
    )
    return Inputs(spec, state["src"], decoding, whole_prompt=state["prompt_view"] == "prompt")


def run_or_explain(fn: Callable[..., T], *args: object, **kwargs: object) -> T:
    """Call a cached computation; show bad input as a hint and failures as an error, never a traceback.

    Messages may quote what the user typed: they are escaped, so Markdown in them shows as text."""
    try:
        return fn(*args, **kwargs)
    except InputError as err:
        st.info(f"Type a sentence in the sidebar: {md_escape(str(err))}.")
    except ComputationTimeout as err:
        st.warning(f"This took too long for this server and was {md_escape(str(err))}.")
    except (ValueError, PretrainedModelError, CheckpointError) as err:  # a request the model cannot serve
        st.warning(md_escape(str(err)))
    except Exception as err:  # a page must never die with a traceback
        log.exception("computation failed")
        st.error(f"Lantern could not compute this: {type(err).__name__}: {md_escape(str(err))}")
    stop_page()


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


def session_sidebar() -> None:
    """Sidebar "Session": chart download format, the page's charts as HTML, save/load the session as JSON."""
    with st.sidebar.expander("Session: link, save, load, export"):
        st.radio("Chart download format (camera button)", ["png", "svg"], horizontal=True, key="figfmt")
        if st.session_state.get("_charts"):
            figs = list(st.session_state["_charts"].values())
            st.download_button(  # built on click: plotly.js makes each copy 3.5 MB, too much for every page run
                "This page's charts (HTML)",
                lambda: ui_state.charts_html(figs),
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
                state, outputs, notes = ui_state.parse_session(upload.getvalue())
            except ValueError as err:
                st.error(f"Could not load this session: {md_escape(str(err))}")
            else:
                ui_state.note(*notes)
                ui_state.request_state({**state, "_saved_outputs": outputs})  # widgets exist: the next run sets it
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


def cost_gate(
    token_passes: int,
    what: str,
    key: str,
    run_key: object,
    confirm: str = "confirm_token_passes",
    refuse: str | None = "max_token_passes",
    scale: float = 1.0,
) -> bool:
    """Show what a computation costs; refuse it above the ``refuse`` limit, and above the ``confirm`` limit run it
    only once the user pressed its button (for these exact settings). Returns whether it may run now. (Every such
    computation also has a time limit, ``LANTERN_REQUEST_SECONDS``.)

    ``scale``: what one token pass of this model costs against Lantern's own models (``cache.model_scale``); the
    limits are divided by it, since they are set for Lantern's own models."""
    rate = st.session_state.get(f"_rate.{key}")  # token passes per second of this kind of run, measured here
    eta = f", about {token_passes / rate:.0f} s at this server's last measured speed" if rate else ""
    larger = f" (each costs about {scale:.0f}× a pass of Lantern's own models)" if scale >= 1.5 else ""
    st.caption(f"Cost of {what}: {token_passes:,} token passes{larger}{eta}.")
    most = limit(refuse) / scale if refuse else math.inf
    if token_passes > most:
        st.warning(
            f"That is more than this server runs per request ({most:,.0f} token passes). Lower the steps or samples, "
            "or explain a shorter sentence."
        )
        return False
    if token_passes <= limit(confirm) / scale or st.session_state.get(f"{key}.approved") == run_key:
        return True
    if st.button(f"Run {what}", key=f"{key}.run", type="primary"):
        st.session_state[f"{key}.approved"] = run_key
        return True
    st.info(f"This is expensive, so it waits for you: press “Run {what}”.")
    return False


class ProgressBar:
    """A progress bar for a long computation: its callback updates the bar and, because every Streamlit element
    call checks for it, stops the computation when its session ends or reruns. ``done`` records the speed for the
    cost gate of the same ``key``."""

    def __init__(self, text: str, token_passes: int = 0, key: str = "") -> None:
        self.bar, self.text, self.token_passes, self.key = st.progress(0.0, text=text), text, token_passes, key
        self.started = time.perf_counter()

    def __call__(self, fraction: float) -> None:
        self.bar.progress(min(max(fraction, 0.0), 1.0), text=self.text)

    def done(self) -> None:
        seconds = time.perf_counter() - self.started
        self.bar.empty()
        if self.key and self.token_passes and seconds > 1.0:  # short runs measure overheads, not speed
            st.session_state[f"_rate.{self.key}"] = self.token_passes / seconds
