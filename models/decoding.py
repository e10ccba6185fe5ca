"""What a request asks of a model, checked before any model is touched: the errors a user can cause, the
decoding settings and the input length limit. Torch-free, so the app's first page and its input checks load
without torch (the rest of ``models`` imports it); ``models.adapter``, ``models.loading`` and
``models.pretrained`` re-export these names.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.limits import limit


class InputError(ValueError):
    """The input text cannot be used as it is (empty after cleaning, longer than the server takes, ...)."""


MAX_OUTPUT_TOKENS = 512  # generated or forced target tokens


def check_length(text: str, what: str) -> str:
    """``text`` when it is within the input limit (``LANTERN_MAX_INPUT_CHARS``), else ``InputError``.

    Every text a user gives (source, prompt, an output to score, an alternative to contrast with) goes through
    it before any work is done, so a huge paste or session file costs nothing."""
    if not isinstance(text, str):
        raise InputError(f"the {what} must be a string, not {type(text).__name__}")
    most = int(limit("input_chars"))
    if len(text) > most:
        raise InputError(f"the {what} has {len(text):,} characters; Lantern reads up to {most:,}")
    return text


class PretrainedModelError(RuntimeError):
    """A pretrained model cannot be loaded; the message says why and what to do."""


class CheckpointError(RuntimeError):
    """A model folder is missing, incomplete or unreadable."""


@dataclass(frozen=True)
class Decoding:
    """How to generate: greedy (num_beams=1), beam search, or sampling (decoder-only and seq2seq)."""

    num_beams: int = 1
    max_new_tokens: int = 64
    length_penalty: float = 1.0
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name, kind in (("num_beams", int), ("max_new_tokens", int), ("seed", int), ("do_sample", bool)):
            value = getattr(self, name)
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                expected = "a whole number" if kind is int else "True or False"
                raise InputError(f"{name} must be {expected}, not {value!r}")
        for name in ("length_penalty", "temperature", "top_p"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InputError(f"{name} must be a number, not {value!r}")
        if not 1 <= self.num_beams <= 16:
            raise InputError(f"num_beams must be between 1 and 16, not {self.num_beams}")
        if not 1 <= self.max_new_tokens <= MAX_OUTPUT_TOKENS:
            raise InputError(f"max_new_tokens must be between 1 and {MAX_OUTPUT_TOKENS}, not {self.max_new_tokens}")
        if self.do_sample and not (0 < self.temperature <= 5 and 0 < self.top_p <= 1):  # also refuses NaN
            raise InputError("sampling needs 0 < temperature ≤ 5 and 0 < top_p ≤ 1")
        if not -10 <= self.length_penalty <= 10:
            raise InputError(f"length_penalty must be between -10 and 10, not {self.length_penalty}")
        if not 0 <= self.seed < 2**63:
            raise InputError(f"the seed must be a non-negative integer, not {self.seed}")

    @property
    def label(self) -> str:
        if self.do_sample:
            return f"sampling (T={self.temperature:g}, top-p={self.top_p:g}, seed {self.seed})"
        return "greedy" if self.num_beams == 1 else f"beam {self.num_beams}"

    def generate_kwargs(self) -> dict[str, object]:
        kw: dict[str, object] = {
            "num_beams": self.num_beams,
            "max_new_tokens": self.max_new_tokens,
            "length_penalty": self.length_penalty,
            "do_sample": self.do_sample,
            "max_time": limit("request_seconds"),  # a generation past the request's time limit ends where it is
        }
        if self.do_sample:
            kw.update(temperature=self.temperature, top_p=self.top_p, top_k=0)
        else:
            kw.update(temperature=None, top_p=None, top_k=None)  # silence generation-config sampling defaults
        return kw
