"""The page state a link or a session file may set, and the one validator every outside value goes through.

Each key of the URL and of a saved session has a ``Field``: its type, its range or choices, its length. The
widgets draw their bounds from the same fields, so what the validator accepts is what a widget can show.
``clean_state`` never raises: a bad value is left out with a note that says why.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from common.limits import limit
from explain.alignment import ALIGNMENT_METHODS, COMBINATIONS, EXTRACTIONS, STEPS
from explain.attention_views import KIND_LABELS
from explain.inside_types import LSTM_QUANTITIES
from explain.inside_views import UNIT_ORDERS

DECODINGS = ("greedy", "beam search", "sampling")
KINDS = {str: "text", int: "a whole number", float: "a number"}
MAX_NAME_CHARS = 500  # a model name, hub id or folder
INSIDE_VIEWS = ("states", "search", "lens", "norms", "neuron", "ffn", "embeddings")
ALIGN_EOS = ("drop", "no link")  # the special tokens' row and column: dropped, or a best partner that means no link
ALIGN_SCORES = ("absolute", "signed")
ALIGN_OUTPUTS = ("gold", "model")  # which French is explained: the gold reference (forced) or the model's own
INSIDE_SIDES = ("encoder_forward", "encoder_backward", "decoder", "encoder", "causal")


@dataclass(frozen=True)
class Field:
    kind: type  # str, int or float
    low: float = -math.inf
    high: float = math.inf
    choices: Callable[[], Collection[str]] | None = None
    words: tuple[str, ...] = ()  # strings a numeric field also takes ("mean", "max")
    max_chars: Callable[[], int] | int = 200

    def parse(self, value: object) -> object:
        """The value as this field stores it, or ``ValueError`` saying what is wrong."""
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError(f"must be {KINDS[self.kind]}, not a {type(value).__name__}")
        text = str(value)
        if self.kind is str or text in self.words:
            most = self.max_chars() if callable(self.max_chars) else self.max_chars
            if len(text) > most:
                raise ValueError(f"has {len(text):,} characters; Lantern takes up to {most:,}")
            if self.kind is not str or self.choices is None or text in self.choices():
                return text.encode("utf-8", "ignore").decode("utf-8")  # lone surrogates cannot reach a browser
            raise ValueError(f"is not one of {', '.join(self.choices())}")
        try:
            number = float(text) if self.kind is float else int(text)
        except ValueError:
            raise ValueError(f"is not a {'number' if self.kind is float else 'whole number'}") from None
        if not math.isfinite(number):
            raise ValueError("is not a finite number")
        if not self.low <= number <= self.high:
            raise ValueError(f"is outside {self.low:g} to {self.high:g}")
        return number


# The attribution choices come from the explanation layer, which imports torch and Captum: read when a value is
# checked, not on import, so the app's first page renders without them.
def _methods() -> Collection[str]:
    from explain.methods import METHODS

    return METHODS.keys()


def _targets() -> Collection[str]:
    from explain.objective import TARGETS

    return TARGETS


def _baselines() -> Collection[str]:
    from explain.objective import BASELINES

    return BASELINES


FIELDS: dict[str, Field] = {
    "model": Field(str, max_chars=MAX_NAME_CHARS),
    "src": Field(str, max_chars=lambda: int(limit("input_chars"))),
    "decoding": Field(str, choices=lambda: DECODINGS),
    "beams": Field(int, 2, 10),
    "max_new": Field(int, 1, 256),
    "temperature": Field(float, 0.1, 2.0),
    "top_p": Field(float, 0.05, 1.0),
    "seed": Field(int, 0, 2**31 - 1),
    "prompt_view": Field(str, choices=lambda: ("sentence", "prompt")),
    "attn.kind": Field(str, choices=lambda: KIND_LABELS.keys()),
    "attn.layer": Field(int, 0, 1023, words=("mean",)),
    "attn.head": Field(int, 0, 1023, words=("mean", "max")),
    "attn.granularity": Field(str, choices=lambda: ("tokens", "words")),
    "attr.method": Field(str, choices=_methods),
    "attr.target": Field(str, choices=_targets),
    "attr.granularity": Field(str, choices=lambda: ("tokens", "words")),
    "attr.steps": Field(int, 4, 128),
    "attr.samples": Field(int, 4, 200),
    "attr.noise": Field(float, 0.0, 1.0),
    "attr.compare": Field(str, choices=lambda: ("", *_methods())),
    "attr.baseline": Field(str, choices=_baselines),
    "attr.contrast_step": Field(int, 0, 511),
    "whatif.step": Field(int, 0, 511),
    "whatif.cstep": Field(int, 0, 511),
    "whatif.estep": Field(int, 0, 511),
    "whatif.escale": Field(float, 0.0, 3.0),
    # the Alignments page (app_pages/alignments.py)
    "align.method": Field(str, choices=lambda: ALIGNMENT_METHODS),
    "align.layer": Field(int, 0, 1023, words=("mean",)),
    "align.extraction": Field(str, choices=lambda: EXTRACTIONS),
    "align.eos": Field(str, choices=lambda: ALIGN_EOS),
    "align.scores": Field(str, choices=lambda: ALIGN_SCORES),
    "align.output": Field(str, choices=lambda: ALIGN_OUTPUTS),
    "align.reverse": Field(str, max_chars=MAX_NAME_CHARS),
    "align.step": Field(str, choices=lambda: STEPS),
    "align.combine": Field(str, choices=lambda: COMBINATIONS),
    "data.step": Field(int, 0, 511),
    "data.query": Field(str, max_chars=100),
    "data.side": Field(str, choices=lambda: ("source", "target")),
    # the Dataset explorer (app_pages/explorer.py)
    "explore.dataset": Field(str, max_chars=200),
    "explore.second": Field(str, max_chars=MAX_NAME_CHARS),
    "explore.limit": Field(int, 1, 20_000),
    "explore.search": Field(str, max_chars=200),
    "explore.metric": Field(str, max_chars=100),
    "explore.sort": Field(str, max_chars=100),
    "explore.order": Field(str, choices=lambda: ("ascending", "descending")),
    "explore.slice": Field(str, max_chars=100),
    "eval.sanity_method": Field(str, choices=lambda: [m for m in _methods() if m != "deeplift"]),
    # the Inside page (ui/inside.py): its view, then each view's choices
    "inside.view": Field(str, choices=lambda: INSIDE_VIEWS),
    "inside.side": Field(str, choices=lambda: INSIDE_SIDES),
    "inside.kind": Field(str, choices=lambda: ("encoder", "decoder", "cross", "causal")),
    "inside.quantity": Field(str, choices=lambda: LSTM_QUANTITIES),
    "inside.order": Field(str, choices=lambda: UNIT_ORDERS),
    "inside.units": Field(str, max_chars=200),
    "inside.neurons": Field(int, 1, 200),
    "inside.n_units": Field(int, 1, 256),
    "inside.matches": Field(int, 1, 256),
    "inside.neighbours": Field(int, 1, 200),
    "inside.norm_position": Field(int, 0, 1023, words=("mean",)),
    "inside.pick": Field(str, max_chars=100),
    "inside.layer": Field(int, 0, 1023),
    "inside.head": Field(int, 0, 1023),
    "inside.position": Field(int, 0, 1023),
    "inside.topk": Field(int, 1, 20),
    "inside.start": Field(int, 0, 1023),
    "inside.end": Field(int, 1, 1024),
    "inside.threshold": Field(float, -1.0, 1.0),
    "inside.min_on": Field(float, 0.1, 1.0),
    "inside.embed_side": Field(str, choices=lambda: ("source", "target")),
    "inside.n": Field(int, 100, 5000),
    "inside.token": Field(str, max_chars=100),
}


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}…"


def clean_state(raw: Mapping[str, object], where: str) -> tuple[dict[str, object], list[str]]:
    """(the values of ``raw`` that are valid page state, a note for each one left out). Unknown keys are ignored.

    ``where`` names the source in the notes ("This link", "The session file").
    """
    ok: dict[str, object] = {}
    notes = []
    for key, value in raw.items():
        field = FIELDS.get(key) if isinstance(key, str) else None
        if field is None:
            continue
        try:
            ok[key] = field.parse(value)
        except ValueError as err:
            notes.append(f"{where} set {key} = {_shown(value)}, which {err}; it was ignored.")
    return ok, notes
