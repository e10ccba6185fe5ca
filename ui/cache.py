"""Cached access to models and results.

Models: ``st.cache_resource``, one shared instance per process, never mutated. Results:
``st.cache_data``, plain numpy dataclasses, copied per call.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import streamlit as st

from explain.attention import extract_attention
from explain.attribution import attribute
from explain.translate import translate
from explain.types import AttentionMaps, Attribution, Translation
from models.adapter import Decoding, LanternModel
from models.registry import ModelSpec, list_models, load_model


@st.cache_data(ttl=30, show_spinner=False)
def available_models() -> list[ModelSpec]:
    return list_models()


@st.cache_resource(max_entries=4, show_spinner="Loading the model…")
def get_model(name: str) -> LanternModel:
    return load_model(name)


@st.cache_data(max_entries=256, show_spinner="Translating…")
def run_translation(name: str, text: str, num_beams: int, max_new_tokens: int) -> Translation:
    return translate(get_model(name), text, Decoding(num_beams=num_beams, max_new_tokens=max_new_tokens))


@st.cache_data(max_entries=128, show_spinner="Reading the attention…")
def run_attention(name: str, text: str, num_beams: int, max_new_tokens: int) -> AttentionMaps:
    translation = run_translation(name, text, num_beams, max_new_tokens)
    return extract_attention(get_model(name), translation)


@st.cache_data(ttl=60, show_spinner=False)
def read_json(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


@st.cache_data(max_entries=64, show_spinner=False)
def run_attribution(
    name: str,
    text: str,
    num_beams: int,
    max_new_tokens: int,
    method: str,
    target: str = "logprob",
    contrast_step: int | None = None,
    contrast_token: str | None = None,
    contrast_text: str | None = None,
    with_prefix: bool = True,
    n_steps: int = 32,
    n_samples: int = 25,
    _progress: Callable[[float], None] | None = None,
) -> Attribution:
    translation = run_translation(name, text, num_beams, max_new_tokens)
    contrast = (contrast_step, contrast_token) if contrast_step is not None and contrast_token is not None else None
    return attribute(
        get_model(name), translation, method, target, contrast_token=contrast, contrast_target=contrast_text,
        with_prefix=with_prefix, n_steps=n_steps, n_samples=n_samples, progress=_progress,
    )  # fmt: skip
