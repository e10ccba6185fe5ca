"""Text normalisation applied to training data and to every text a user gives Lantern."""

from __future__ import annotations

import re
import unicodedata

_SPACE = re.compile(r"\s+")


def clean_text(text: str) -> str:
    """NFKC, drop control/format characters (zero-width, BOM, bidi marks), fold whitespace.

    NFKC maps no-break spaces (U+00A0, U+202F, U+3000) to plain spaces and full-width ASCII to
    ASCII, so the model sees one form of each character. Applied to training data and to every
    text the app receives, so both go through the same normalisation.
    """
    text = unicodedata.normalize("NFKC", text)
    text = "".join(
        " " if ch in "\t\n\r\x0b\x0c\x85\u2028\u2029" else ch
        for ch in text
        if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co") or ch in "\t\n\r"
    )
    return _SPACE.sub(" ", text).strip()
