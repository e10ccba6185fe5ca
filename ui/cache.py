"""Cached access to models and results.

Models: ``st.cache_resource``, one shared instance per process (at most ``MAX_MODELS``), never
mutated. Results: ``st.cache_data``, plain numpy dataclasses, copied per call. Arguments are the
model's ``ModelSpec`` and a ``Decoding`` (frozen dataclasses, hashed by value).
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import streamlit as st

from common.paths import REPO_ROOT
from explain.attention import extract_attention
from explain.attribution import attribute
from explain.beam import BeamSearch, beam_search
from explain.faithfulness import Faithfulness, measure
from explain.generation import force_translation, translate
from explain.intervene import edit_attention
from explain.sanity import cascading_randomisation
from explain.types import AttentionMaps, Attribution, Translation
from models.adapter import Decoding, LanternModel
from models.loading import load_model
from models.registry import ModelSpec, list_models

MAX_MODELS = 3  # models held in memory at once (SmolLM2 alone takes ~0.6 GB)
REQUEST_SECONDS = float(os.environ.get("LANTERN_REQUEST_SECONDS", "120"))  # one attribution's time limit


@st.cache_data(ttl=30, show_spinner=False)
def available_models() -> list[ModelSpec]:
    return list_models()


@st.cache_resource(max_entries=MAX_MODELS, show_spinner="Loading the model…")
def get_model(spec: ModelSpec) -> LanternModel:
    return load_model(spec)


@st.cache_data(max_entries=256, show_spinner="Generating…")
def run_translation(spec: ModelSpec, text: str, decoding: Decoding) -> Translation:
    return translate(get_model(spec), text, decoding)


@st.cache_data(max_entries=128, show_spinner="Reading the attention…")
def run_attention(spec: ModelSpec, text: str, decoding: Decoding) -> AttentionMaps:
    return extract_attention(get_model(spec), run_translation(spec, text, decoding))


class _LRU:
    """A small thread-safe least-recently-used store (results are immutable and shared between sessions)."""

    def __init__(self, size: int) -> None:
        self.size, self.items, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, key: Hashable) -> Any:
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        return None

    def put(self, key: Hashable, value: Any) -> None:
        with self.lock:
            self.items[key] = value
            while len(self.items) > self.size:
                self.items.popitem(last=False)


@st.cache_resource
def _attributions() -> _LRU:
    return _LRU(64)


def run_attribution(
    spec: ModelSpec,
    text: str,
    decoding: Decoding,
    method: str,
    target: str = "logprob",
    contrast_step: int | None = None,
    contrast_token: int | None = None,
    contrast_text: str | None = None,
    with_prefix: bool = True,
    n_steps: int = 32,
    n_samples: int = 25,
    baseline: str = "pad",
    progress: Callable[[float], None] | None = None,
) -> Attribution:
    """Cached attribution. Not ``st.cache_data``: ``progress`` updates a progress bar while it runs, and
    Streamlit cannot replay element calls made inside a cached function on a later cache hit."""
    key = (
        spec,
        text,
        decoding,
        method,
        target,
        contrast_step,
        contrast_token,
        contrast_text,
        with_prefix,
        n_steps,
        n_samples,
        baseline,
    )
    store = _attributions()
    cached = store.get(key)
    if cached is not None:
        return cached
    translation = run_translation(spec, text, decoding)
    contrast = (contrast_step, contrast_token) if contrast_step is not None and contrast_token is not None else None
    result = attribute(
        get_model(spec),
        translation,
        method,
        target,
        contrast_token=contrast,
        contrast_target=contrast_text,
        with_prefix=with_prefix,
        n_steps=n_steps,
        n_samples=n_samples,
        baseline=baseline,
        progress=progress,
        time_limit=REQUEST_SECONDS,
    )
    store.put(key, result)
    return result


@st.cache_data(ttl=60, show_spinner=False)
def read_json(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


@st.cache_data(max_entries=64, show_spinner=False)
def run_faithfulness(
    spec: ModelSpec, text: str, decoding: Decoding, method: str, baseline: str = "pad"
) -> Faithfulness:
    translation = run_translation(spec, text, decoding)
    attr = run_attribution(spec, text, decoding, method, baseline=baseline)
    return measure(get_model(spec), translation, attr)


@st.cache_data(max_entries=16, show_spinner=False)
def run_randomisation(spec: ModelSpec, text: str, decoding: Decoding, method: str) -> tuple[Attribution, list]:
    return cascading_randomisation(get_model(spec), run_translation(spec, text, decoding), method)


@st.cache_data(ttl=30, show_spinner=False)
def evaluation_runs() -> dict[str, dict]:
    """Summaries written by ``python -m explain.evaluate``: in ``$LANTERN_EVALUATIONS`` (os.pathsep-separated
    folders) or evaluations/ and runs/eval/ of the repository."""
    env = os.environ.get("LANTERN_EVALUATIONS")
    folders = (
        [Path(p) for p in env.split(os.pathsep)] if env else [REPO_ROOT / "evaluations", REPO_ROOT / "runs" / "eval"]
    )
    found = {}
    for folder in folders:
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            data = read_json(str(path))
            if data and "methods" in data:
                found[f"{folder.name}/{path.name}"] = data
    return found


@st.cache_data(max_entries=64, show_spinner="Decoding from the forced token…")
def run_with_prefix(spec: ModelSpec, text: str, decoding: Decoding, prefix: tuple[int, ...]) -> Translation:
    return translate(get_model(spec), text, decoding, prefix=prefix)


@st.cache_data(max_entries=64, show_spinner="Scoring the output…")
def run_forced(spec: ModelSpec, text: str, output: str) -> Translation:
    return force_translation(get_model(spec), text, output)


@st.cache_data(max_entries=32, show_spinner="Running beam search…")
def run_beam(spec: ModelSpec, text: str, num_beams: int, n_best: int, max_new_tokens: int) -> BeamSearch:
    return beam_search(get_model(spec), text, num_beams, n_best, max_new_tokens)


@st.cache_data(max_entries=32, show_spinner="Re-decoding with the edited attention…")
def run_attention_edit(
    spec: ModelSpec, text: str, decoding: Decoding, step: int, src_index: int, scale: float
) -> Translation:
    original = run_translation(spec, text, decoding)
    return edit_attention(get_model(spec), text, original, step, src_index, scale)
