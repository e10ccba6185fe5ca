"""Cached access to models and results.

Models: ``st.cache_resource``, one shared instance per process (at most ``MAX_MODELS``), never
mutated. Results: ``st.cache_data``, plain numpy dataclasses, copied per call. Arguments are the
model's ``ModelSpec`` and a ``Decoding`` (frozen dataclasses, hashed by value).
"""

from __future__ import annotations

import gc
import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st

from common.limits import limit
from common.memory import bound_heap_growth, release_memory
from common.paths import REPO_ROOT
from models.folder import META_FILE
from models.registry import ModelSpec, list_models

if TYPE_CHECKING:
    from explain.alignment import AlignmentMaps, GoldAlignment
    from explain.beam import BeamSearch
    from explain.faithfulness import Faithfulness
    from explain.inside_types import (
        Anatomy,
        EmbeddingProjection,
        LayerNorms,
        LogitLens,
        LstmStates,
        Neighbours,
        NeuronView,
        PatternSearch,
        TopNeurons,
    )
    from explain.types import AttentionMaps, Attribution, Translation
    from models.adapter import LanternModel
    from models.decoding import Decoding

# The explanation layer and model loading import torch, transformers and Captum (about 6 s on 2 cores): each
# function below imports what it runs when it first runs, so the app's first page (Home) renders without them.
# ``warm_up`` imports them in a background thread once the first page is drawn; a function that needs them
# waits for that thread instead of importing them in parallel (one importer, no two threads racing for locks).

bound_heap_growth()  # the server's peak memory stays at what it holds (see common/memory.py, bench/memory.md)
MAX_MODELS = 3  # models held in memory at once (SmolLM2 alone takes ~0.6 GB)


@st.cache_data(ttl=30, show_spinner=False)
def available_models() -> list[ModelSpec]:
    return list_models()


@st.cache_resource(max_entries=MAX_MODELS, show_spinner="Loading the model…")
def get_model(spec: ModelSpec) -> LanternModel:
    warm_up().join()  # one thread imports the model code; a page that needs it waits for it
    from models.loading import load_model

    return load_model(spec)


# About Lantern's own models outside their input embeddings (lstm-zh-en 4.4M, transformer-zh-en 6.7M parameters),
# which the cost limits are set for. Measured on 2 cores (faithfulness of 我爱北京天安门): transformer-zh-en 6,700
# and lstm-zh-en 11,300 token passes/s, Gemma 3 270M (100M outside its embedding) ~410: the ratio (16-27×) is about
# what the parameters say (20×).
REFERENCE_PARAMETERS = 5_000_000


@st.cache_data(max_entries=32, show_spinner=False)
def model_scale(spec: ModelSpec) -> float:
    """What one token pass of this model costs against one of Lantern's own: its parameters outside the input
    embedding (a lookup) over ``REFERENCE_PARAMETERS``, at least 1."""
    net = get_model(spec).model
    embedding = net.get_input_embeddings().weight
    n = sum(p.numel() for p in net.parameters() if p is not embedding)
    return max(1.0, n / REFERENCE_PARAMETERS)


@st.cache_data(max_entries=256, show_spinner="Generating…")
def run_translation(spec: ModelSpec, text: str, decoding: Decoding) -> Translation:
    warm_up().join()  # one thread imports the model code; a page that needs it waits for it
    from explain.generation import translate

    return translate(get_model(spec), text, decoding)


@st.cache_data(max_entries=128, show_spinner="Reading the attention…")
def run_attention(spec: ModelSpec, text: str, decoding: Decoding) -> AttentionMaps:
    warm_up().join()  # one thread imports the model code; a page that needs it waits for it
    from explain.attention import extract_attention

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
def _results() -> _LRU:
    """Long computations' results (attributions, faithfulness, randomisation checks), shared by every session."""
    return _LRU(96)


def _cached(key: tuple, compute: Callable[[], Any]) -> Any:
    """``compute()`` once per key. Not ``st.cache_data``: the computations update a progress bar while they run
    (which also stops them when their session ends or reruns), and Streamlit cannot replay element calls made
    inside a cached function on a later cache hit. Freed memory goes back to the system afterwards (after a
    computation of over a second with a full garbage collection, whose ~0.2 s is then a small share)."""
    store = _results()
    found = store.get(key)
    if found is None:
        start = time.monotonic()
        try:
            found = compute()
        finally:
            release_memory(full=time.monotonic() - start > 1.0)
        store.put(key, found)
    return found


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
    noise_level: float = 0.15,
    progress: Callable[[float], None] | None = None,
) -> Attribution:
    """Cached attribution. Not ``st.cache_data``: ``progress`` updates a progress bar while it runs, and
    Streamlit cannot replay element calls made inside a cached function on a later cache hit."""
    warm_up().join()  # one thread imports the model code; a page that needs it waits for it
    from explain.attribution import attribute

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
        noise_level,
    )
    contrast = (contrast_step, contrast_token) if contrast_step is not None and contrast_token is not None else None
    return _cached(
        ("attribution", *key),
        lambda: attribute(
            get_model(spec),
            run_translation(spec, text, decoding),
            method,
            target,
            contrast_token=contrast,
            contrast_target=contrast_text,
            with_prefix=with_prefix,
            n_steps=n_steps,
            n_samples=n_samples,
            baseline=baseline,
            noise_level=noise_level,
            progress=progress,
            time_limit=limit("request_seconds"),
        ),
    )


@st.cache_data(ttl=60, show_spinner=False)
def read_json(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def run_faithfulness(
    spec: ModelSpec,
    text: str,
    decoding: Decoding,
    method: str,
    baseline: str = "pad",
    progress: Callable[[float], None] | None = None,
) -> Faithfulness:
    """Faithfulness of one method's explanation (the explanation first, then the masked runs), one time limit."""
    warm_up().join()  # one thread imports the model code; a page that needs it waits for it
    from explain.faithfulness import measure

    def compute() -> Faithfulness:
        attr = run_attribution(spec, text, decoding, method, baseline=baseline)
        tr = run_translation(spec, text, decoding)
        return measure(get_model(spec), tr, attr, progress=progress, time_limit=limit("request_seconds"))

    return _cached(("faithfulness", spec, text, decoding, method, baseline), compute)


def run_randomisation(
    spec: ModelSpec, text: str, decoding: Decoding, method: str, progress: Callable[[float], None] | None = None
) -> tuple[Attribution, list]:
    warm_up().join()  # one thread imports the model code; a page that needs it waits for it
    from explain.sanity import cascading_randomisation

    return _cached(
        ("randomisation", spec, text, decoding, method),
        lambda: cascading_randomisation(
            get_model(spec),
            run_translation(spec, text, decoding),
            method,
            progress=progress,
            time_limit=limit("request_seconds"),
        ),
    )


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
    warm_up().join()  # one thread imports the model code; a page that needs it waits for it
    from explain.generation import translate

    return translate(get_model(spec), text, decoding, prefix=prefix)


@st.cache_data(max_entries=64, show_spinner="Scoring the output…")
def run_forced(spec: ModelSpec, text: str, output: str) -> Translation:
    warm_up().join()  # one thread imports the model code; a page that needs it waits for it
    from explain.generation import force_translation

    return force_translation(get_model(spec), text, output)


@st.cache_data(max_entries=32, show_spinner="Running beam search…")
def run_beam(spec: ModelSpec, text: str, num_beams: int, n_best: int, max_new_tokens: int) -> BeamSearch:
    warm_up().join()  # one thread imports the model code; a page that needs it waits for it
    from explain.beam import beam_search

    return beam_search(get_model(spec), text, num_beams, n_best, max_new_tokens)


@st.cache_data(max_entries=32, show_spinner="Re-decoding with the edited attention…")
def run_attention_edit(
    spec: ModelSpec, text: str, decoding: Decoding, step: int, src_index: int, scale: float
) -> Translation:
    warm_up().join()  # one thread imports the model code; a page that needs it waits for it
    from explain.intervene import edit_attention

    original = run_translation(spec, text, decoding)
    return edit_attention(get_model(spec), text, original, step, src_index, scale)


# --- the Alignments page -----------------------------------------------------------------------------------------


@st.cache_data(max_entries=32, show_spinner=False)
def alignment_methods(spec: ModelSpec) -> list[str]:
    """The explanation methods that give this model a source × output map (``explain.alignment``)."""
    warm_up().join()
    from explain.alignment import alignment_methods as offered

    return offered(get_model(spec))


@st.cache_data(max_entries=64, ttl=60, show_spinner=False)
def gold_alignment(text: str) -> tuple[int, str, GoldAlignment] | None:
    """(index, French reference, gold links) when ``text`` is a Hansards gold-alignment sentence on this server."""
    from explain.alignment import find_gold

    return find_gold(text)


def run_alignment_maps(
    spec: ModelSpec,
    text: str,
    decoding: Decoding,
    method: str,
    reference: str | None = None,
    progress: Callable[[float], None] | None = None,
) -> AlignmentMaps:
    """One method's token maps of the model's translation, or of ``reference`` (forced decoding)."""
    warm_up().join()
    from explain.alignment import alignment_maps

    def compute() -> AlignmentMaps:
        tr = run_forced(spec, text, reference) if reference is not None else run_translation(spec, text, decoding)
        return alignment_maps(get_model(spec), tr, method, progress=progress, time_limit=limit("request_seconds"))

    return _cached(("alignment", spec, text, None if reference is not None else decoding, method, reference), compute)


# --- the Inside page: one cached computation per view, so a page run computes only the view shown ----------------


@st.cache_data(max_entries=32, show_spinner=False)
def run_anatomy(spec: ModelSpec) -> Anatomy:
    warm_up().join()  # one thread imports the model code; a page that needs it waits for it
    from explain.anatomy import describe_model

    return describe_model(get_model(spec))


@st.cache_data(max_entries=64, show_spinner="Reading every layer through the output head…")
def run_logit_lens(spec: ModelSpec, text: str, decoding: Decoding, top_k: int) -> LogitLens:
    warm_up().join()
    from explain.inside import logit_lens

    return logit_lens(get_model(spec), run_translation(spec, text, decoding), top_k)


@st.cache_data(max_entries=64, show_spinner="Measuring the residual stream…")
def run_layer_norms(spec: ModelSpec, text: str, decoding: Decoding, side: str) -> LayerNorms:
    warm_up().join()
    from explain.inside import layer_norms

    return layer_norms(get_model(spec), run_translation(spec, text, decoding), side)


@st.cache_data(max_entries=128, show_spinner="Reading the head's queries and keys…")
def run_neuron_view(
    spec: ModelSpec, text: str, decoding: Decoding, layer: int, head: int, position: int, kind: str
) -> NeuronView:
    warm_up().join()
    from explain.inside import neuron_view

    return neuron_view(get_model(spec), run_translation(spec, text, decoding), layer, head, position, kind)


@st.cache_data(max_entries=128, show_spinner="Reading the feed-forward neurons…")
def run_top_neurons(
    spec: ModelSpec, text: str, decoding: Decoding, layer: int, position: int, side: str, k: int
) -> TopNeurons:
    warm_up().join()
    from explain.inside import top_neurons

    return top_neurons(get_model(spec), run_translation(spec, text, decoding), layer, position, side, k)


@st.cache_data(max_entries=64, show_spinner="Recomputing the LSTM's gates step by step…")
def run_lstm_states(spec: ModelSpec, text: str, decoding: Decoding) -> LstmStates:
    warm_up().join()
    from explain.recurrent import lstm_states

    return lstm_states(get_model(spec), run_translation(spec, text, decoding))


@st.cache_data(max_entries=8, show_spinner="Reading the test split…")
def test_sentences(spec: ModelSpec) -> tuple[str, ...]:
    """The source sentences of a Lantern model's test split (the corpus and languages of its ``lantern.json``),
    each once; ``DataNotFoundError`` when the corpus is not on this server."""
    from training.corpora import load_splits

    meta = read_json(str(spec.path / META_FILE)) or {}
    if not meta.get("corpus"):
        raise ValueError(f"{spec.name} does not name its training corpus")
    splits = load_splits(meta["corpus"], meta.get("src_lang", spec.src_lang), meta.get("tgt_lang", spec.tgt_lang))
    return tuple(dict.fromkeys(p.src for p in splits.test))


@st.cache_data(max_entries=64, show_spinner="Searching the sentences for the same pattern…")
def run_pattern_search(
    spec: ModelSpec,
    text: str,
    decoding: Decoding,
    side: str,
    span: tuple[int, int],
    threshold: float,
    k: int,
    min_on: float,
    sentences: tuple[str, ...],
) -> PatternSearch:
    warm_up().join()
    from explain.recurrent import pattern_search

    tr = run_translation(spec, text, decoding)
    return pattern_search(get_model(spec), tr, side, span, sentences, threshold, k, min_on)


@st.cache_data(max_entries=32, show_spinner="Projecting the embeddings…")
def run_embedding_projection(spec: ModelSpec, side: str, n: int, tokens: tuple[str, ...]) -> EmbeddingProjection:
    warm_up().join()
    from explain.embeddings import embedding_projection

    return embedding_projection(get_model(spec), side, tokens, n)


@st.cache_data(max_entries=128, show_spinner=False)
def run_neighbours(spec: ModelSpec, token: str, side: str, k: int) -> Neighbours:
    warm_up().join()
    from explain.embeddings import nearest_neighbours

    return nearest_neighbours(get_model(spec), token, side, k)


class _WarmUp:
    """Imports the explanation layer and model loading in a background thread, once per server process."""

    GRACE = 1.5  # seconds the first page gets to reach the browser first (imports hold the GIL the server needs)

    def __init__(self) -> None:
        self.now = threading.Event()
        self.thread = threading.Thread(target=self._run, name="lantern-warm-up", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.now.wait(self.GRACE)
        import explain.attribution  # torch, transformers, Captum
        import explain.beam
        import explain.faithfulness
        import explain.intervene
        import explain.sanity  # noqa: F401
        import models.loading  # noqa: F401

        # The half million objects of torch, transformers, Captum, pandas and Streamlit live as long as the server:
        # moved out of the collector's generations, they no longer make every full collection walk them (0.2 s
        # each, after every page run: Streamlit's runner.postScriptGC; half the server's CPU under load).
        gc.freeze()

    def join(self) -> None:
        """Wait until the imports are done (starting them at once if they are still waiting)."""
        self.now.set()
        self.thread.join()


@st.cache_resource(show_spinner=False)
def warm_up() -> _WarmUp:
    """Start importing the model code in the background (the first page renders without it, see above); the
    first page that runs a model finds it imported, or waits for it."""
    return _WarmUp()


# --- the Training data page (provenance) --------------------------------------------------------------------


def training_data_status(spec: ModelSpec) -> tuple[str, str]:
    """("none" | "evidence" | "influence", why): what the Training data page can show for this model."""
    warm_up().join()
    from provenance.data import NoTrainingData, training_config
    from provenance.tracin import snapshots

    try:
        training_config(spec.path)
    except NoTrainingData as err:
        return "none", str(err)
    try:
        snapshots(spec.path)
    except NoTrainingData as err:
        return "evidence", str(err)
    return "influence", ""


@st.cache_data(max_entries=128, show_spinner="Searching the training pairs…")
def run_find_pairs(spec: ModelSpec, query: tuple[int, ...] | str, side: str, also: tuple[int, ...] | None):
    from provenance.evidence import find_pairs

    return find_pairs(get_model(spec), list(query) if isinstance(query, tuple) else query, side, also=also)


def influence_ready(spec: ModelSpec) -> bool:
    from provenance.tracin import is_precomputed

    return is_precomputed(get_model(spec))


def run_precompute(spec: ModelSpec, progress: Callable[[float, str], None]) -> None:
    from provenance.tracin import precompute

    precompute(get_model(spec), progress=progress)


def run_influence(spec: ModelSpec, text: str, decoding: Decoding, position: int):
    """TracIn of one output token (its exact scores are cached per model, sentence, decoding and position)."""

    def compute():
        from provenance.tracin import influence

        return influence(get_model(spec), run_translation(spec, text, decoding), position)

    return _cached(("influence", spec, text, decoding, position), compute)


@st.cache_data(ttl=60, show_spinner=False)
def explorer_datasets(src_lang: str | None) -> dict[str, str]:
    """Dataset names -> titles the explorer offers for a model reading ``src_lang`` (None: any text)."""
    from explore.sets import offered

    return offered(src_lang)


@st.cache_data(max_entries=16, show_spinner="Reading the dataset…")
def explorer_dataset(name: str):
    """A named dataset (``explore.sets.dataset``); ``DatasetError`` or ``DataNotFoundError`` when it cannot be."""
    from explore.sets import dataset

    return dataset(name)


@st.cache_data(max_entries=8, show_spinner="Reading the run's table…")
def explorer_table(folder: str, stamp: float):
    """A finished explorer run (table, summary); ``stamp`` (the table's mtime) makes a rerun a new entry."""
    from explore.run import load

    return load(Path(folder))


def winomt_check(model: str) -> dict | None:
    """The WinoMT CLI's summary of ``model`` (``evaluations/winomt/<model>.json``, or under
    ``$LANTERN_EVALUATIONS``): its full-set figures and the gender reader's agreement with hand labels."""
    env = os.environ.get("LANTERN_EVALUATIONS")
    folders = [Path(p) for p in env.split(os.pathsep)] if env else [REPO_ROOT / "evaluations"]
    for folder in folders:
        path = folder / "winomt" / f"{model}.json"
        if path.is_file():
            return read_json(str(path))
    return None
