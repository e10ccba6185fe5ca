"""Cached access to models and results.

Models: ``st.cache_resource``, one shared instance per process, never mutated. Results:
``st.cache_data``, plain numpy dataclasses, copied per call.
"""

from __future__ import annotations

import json

import streamlit as st

from explain.attention import extract_attention
from explain.translate import translate
from explain.types import AttentionMaps, Translation
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
