"""Readable token labels (no torch, no plotly)."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

WORD_START = ("▁", "Ġ")  # SentencePiece / Metaspace, byte-level BPE
SPACE_TOKENS = {"▁": "␣", "Ġ": "␣"}
VISIBLE = {"\n": "⏎", "\t": "⇥", "\r": "␍"}


def prettify_token(token: str) -> str:
    """``▁love`` -> ``love``; a lone ``▁`` -> ``␣``; invisible characters shown as code points."""
    if token in SPACE_TOKENS:
        return SPACE_TOKENS[token]
    if token.startswith(WORD_START):
        token = token[1:]
    elif token.startswith("##"):
        token = token[2:]
    out = "".join(VISIBLE.get(ch) or _visible(ch) for ch in token)
    return out or "␣"


def _visible(ch: str) -> str:
    return f"U+{ord(ch):04X}" if unicodedata.category(ch) in ("Cc", "Cf", "Zs", "Zl", "Zp") else ch


def prettify_tokens(tokens: Sequence[str]) -> list[str]:
    return [prettify_token(t) for t in tokens]
