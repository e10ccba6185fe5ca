"""Plain results of the Inside page's computations (activations, not attributions): numpy and strings, no torch.

Made by ``explain.inside`` (Transformers), ``explain.recurrent`` (Lantern's LSTM) and ``explain.embeddings``;
read by ``viz.inside``. Like ``explain.types``: frozen, picklable (cached by the app), ``to_pandas()`` for a table,
and shown with the app's figures in a notebook. Shapes use ``layers``, ``P`` (positions of one side), ``T``
(generated tokens), ``k`` (alternatives or units kept), ``d`` (dimensions of one head).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from explain.types import _ShowsInNotebooks

if TYPE_CHECKING:
    import pandas as pd

# The quantities of an LSTM step: the state (h, c) and the four gates, in nn.LSTM's order after the state.
LSTM_QUANTITIES = ("hidden", "cell", "input", "forget", "candidate", "output")
LSTM_SIDES = ("encoder_forward", "encoder_backward", "decoder")


@dataclass(frozen=True, eq=False)
class Anatomy:
    """What there is to look at in a model: its family and the sizes the Inside page's controls need."""

    model: str
    family: str  # "lstm" | "seq2seq" (Transformer encoder-decoder) | "causal" (decoder-only Transformer)
    layers: Mapping[str, int] = field(default_factory=dict)  # side ("encoder", "decoder", "causal") -> layers
    heads: Mapping[str, int] = field(default_factory=dict)  # attention kind ("encoder", "cross", ...) -> heads
    ffn: Mapping[str, int] = field(default_factory=dict)  # side -> FFN neurons per layer
    units: Mapping[str, int] = field(default_factory=dict)  # LSTM side -> units; its layers in ``layers``

    @property
    def kinds(self) -> tuple[str, ...]:
        """Attention kinds of the neuron view: encoder, decoder, cross (encoder-decoder) or causal."""
        return tuple(self.heads)

    @property
    def sides(self) -> tuple[str, ...]:
        return tuple(self.layers)


@dataclass(frozen=True, eq=False)
class LogitLens(_ShowsInNotebooks):
    """What each layer would predict if it were the last (nostalgebraist 2020), at every output position.

    Layer 0 is the embeddings' output, layer l the output of block l; each is read through the model's final
    norm and output head. Early layers are not in the output basis, so their predictions are biased: the tuned
    lens (Belrose et al. 2023) learns a translator per layer instead.
    """

    model: str
    tgt_tokens: tuple[str, ...]  # [T] the tokens the model produced (column t predicts tgt_tokens[t])
    input_tokens: tuple[str, ...]  # [T] the token each predicting position reads
    top_ids: np.ndarray  # [layers + 1, T, k]
    top_tokens: tuple[tuple[tuple[str, ...], ...], ...]  # [layers + 1][T][k]
    top_probs: np.ndarray  # [layers + 1, T, k]
    target_probs: np.ndarray  # [layers + 1, T] probability of the token finally produced
    target_ranks: np.ndarray  # [layers + 1, T] its rank (0: the layer's top token)
    final_gap: float  # largest |log p| difference between the last layer's lens and the model's own output

    @property
    def n_layers(self) -> int:
        """Blocks (rows are n_layers + 1: the embeddings, then each block)."""
        return self.target_probs.shape[0] - 1

    def to_pandas(self) -> pd.DataFrame:
        """One row per (layer, output position): the top token, its probability, and the final token's rank."""
        import pandas as pd

        layer, step = (a.ravel() for a in np.indices(self.target_probs.shape))
        return pd.DataFrame(
            {
                "layer": layer,
                "step": step,
                "output_token": np.asarray(self.tgt_tokens, dtype=object)[step],
                "top_token": [self.top_tokens[i][t][0] for i, t in zip(layer, step, strict=True)],
                "top_probability": self.top_probs[layer, step, 0],
                "output_token_probability": self.target_probs.ravel(),
                "output_token_rank": self.target_ranks.ravel(),
                "top_k": [
                    [(tok, float(p)) for tok, p in zip(self.top_tokens[i][t], self.top_probs[i, t], strict=True)]
                    for i, t in zip(layer, step, strict=True)
                ],
            }
        )


@dataclass(frozen=True, eq=False)
class LayerNorms(_ShowsInNotebooks):
    """How large the residual stream is after each layer, and what each block adds to it, per position.

    Post-norm models (Marian) normalise the stream after every block, so their stream norms stay near √d.
    """

    model: str
    side: str  # "encoder" | "decoder" | "causal"
    tokens: tuple[str, ...]  # [P] the token read at each position
    residual: np.ndarray  # [layers + 1, P] ‖stream‖ after the embeddings (row 0) and after each block
    attention: np.ndarray  # [layers, P] ‖what self-attention adds‖
    ffn: np.ndarray  # [layers, P] ‖what the feed-forward block adds‖
    cross: np.ndarray | None = None  # [layers, P] ‖what cross-attention adds‖ (an encoder-decoder's decoder)

    def to_pandas(self) -> pd.DataFrame:
        """Long format: one row per (quantity, layer, position, norm). Residual layer 0 is the embeddings."""
        import pandas as pd

        parts = {"residual": self.residual, "attention": self.attention, "ffn": self.ffn}
        if self.cross is not None:
            parts["cross"] = self.cross
        frames = []
        for name, values in parts.items():
            first = 0 if name == "residual" else 1  # blocks are numbered from 1, the embeddings are 0
            layer, pos = (a.ravel() for a in np.indices(values.shape))
            frames.append(
                pd.DataFrame(
                    {
                        "quantity": name,
                        "layer": layer + first,
                        "position": pos,
                        "token": np.asarray(self.tokens, dtype=object)[pos],
                        "norm": values.ravel(),
                    }
                )
            )
        return pd.concat(frames, ignore_index=True).assign(model=self.model, side=self.side)


@dataclass(frozen=True, eq=False)
class NeuronView(_ShowsInNotebooks):
    """BertViz's neuron view of one head: a query, the keys it may attend, their products and the attention row.

    Queries and keys are those the model multiplies (after RoPE and QK-norm where the model has them);
    ``scores`` are q·k times the head's scaling (soft-capped where the model does), before the mask.
    """

    model: str
    kind: str  # "encoder" | "decoder" | "cross" | "causal"
    layer: int
    head: int
    position: int  # the query's position
    query_token: str
    key_tokens: tuple[str, ...]  # [K] the keys this query may attend (the others are masked)
    key_positions: np.ndarray  # [K] their positions
    query: np.ndarray  # [d]
    keys: np.ndarray  # [K, d]
    scores: np.ndarray  # [K]
    attention: np.ndarray  # [K] the weights the model used; sum to 1
    scaling: float
    kv_head: int  # the key/value head this head reads (grouped-query attention), else == head

    @property
    def products(self) -> np.ndarray:
        """[K, d] query ∘ key: row sums times ``scaling`` are the scores (before any soft-capping)."""
        return self.query[None, :] * self.keys

    def to_pandas(self) -> pd.DataFrame:
        """One row per key: its position, token, score, attention and the vector q ∘ k."""
        import pandas as pd

        return pd.DataFrame(
            {
                "position": self.key_positions,
                "key_token": self.key_tokens,
                "score": self.scores,
                "attention": self.attention,
                "q_dot_k": self.products.sum(1),
                "q_times_k": list(self.products),
            }
        ).assign(model=self.model, kind=self.kind, layer=self.layer, head=self.head, query_position=self.position)


@dataclass(frozen=True, eq=False)
class TopNeurons(_ShowsInNotebooks):
    """The feed-forward neurons most active at one position, with their activations at every position.

    The activation is the FFN's hidden value: the input of its output projection (Marian ``fc2``, Llama and
    Gemma ``down_proj``), i.e. after the non-linearity and, for gated FFNs, after the gate.
    """

    model: str
    side: str  # "encoder" | "decoder" | "causal"
    layer: int
    position: int
    tokens: tuple[str, ...]  # [P]
    neurons: np.ndarray  # [k] neuron indices, most active at ``position`` first
    activations: np.ndarray  # [k, P]
    n_neurons: int  # neurons in this layer's FFN

    @property
    def values(self) -> np.ndarray:
        """[k] the activations at ``position``."""
        return self.activations[:, self.position]

    def to_pandas(self) -> pd.DataFrame:
        import pandas as pd

        rank, pos = (a.ravel() for a in np.indices(self.activations.shape))
        return pd.DataFrame(
            {
                "rank": rank,
                "neuron": self.neurons[rank],
                "position": pos,
                "token": np.asarray(self.tokens, dtype=object)[pos],
                "activation": self.activations.ravel(),
            }
        ).assign(model=self.model, side=self.side, layer=self.layer, selected_position=self.position)


@dataclass(frozen=True, eq=False)
class LstmRun:
    """One LSTM's steps over one sequence: each quantity is [layers, steps, units], steps in reading order of the
    tokens (the backward encoder's too: step s is token s, read after s + 1)."""

    tokens: tuple[str, ...]  # [steps]
    hidden: np.ndarray
    cell: np.ndarray
    input: np.ndarray  # gate i
    forget: np.ndarray  # gate f
    candidate: np.ndarray  # cell candidate g (tanh)
    output: np.ndarray  # gate o

    def values(self, quantity: str, layer: int | slice = -1) -> np.ndarray:
        """[steps, units] of one quantity (``LSTM_QUANTITIES``) at one layer (default: the top one)."""
        if quantity not in LSTM_QUANTITIES:
            raise ValueError(f"unknown LSTM quantity {quantity!r}; known: {', '.join(LSTM_QUANTITIES)}")
        return getattr(self, quantity)[layer]


@dataclass(frozen=True, eq=False)
class LstmStates(_ShowsInNotebooks):
    """Hidden and cell states and the four gates of Lantern's LSTM, step by step, for one translation."""

    model: str
    tgt_tokens: tuple[str, ...]  # decoder step t reads decoder.tokens[t] and predicts tgt_tokens[t]
    encoder_forward: LstmRun
    encoder_backward: LstmRun
    decoder: LstmRun
    max_error: float  # largest |recomputed h − nn.LSTM's own output| (a self-check of the recomputation)

    def run(self, side: str) -> LstmRun:
        if side not in LSTM_SIDES:
            raise ValueError(f"unknown LSTM side {side!r}; known: {', '.join(LSTM_SIDES)}")
        return getattr(self, side)

    def to_pandas(self) -> pd.DataFrame:
        """Long format: side, layer, step, token, unit and every quantity."""
        import pandas as pd

        frames = []
        for side in LSTM_SIDES:
            run = self.run(side)
            layer, step, unit = (a.ravel() for a in np.indices(run.hidden.shape))
            columns = {q: run.values(q, slice(None)).ravel() for q in LSTM_QUANTITIES}
            frames.append(
                pd.DataFrame(
                    {
                        "side": side,
                        "layer": layer,
                        "step": step,
                        "token": np.asarray(run.tokens, dtype=object)[step],
                        "unit": unit,
                        **columns,
                    }
                )
            )
        return pd.concat(frames, ignore_index=True)


@dataclass(frozen=True, eq=False)
class PatternMatch:
    sentence: int  # index into the searched sentences
    text: str
    tokens: tuple[str, ...]
    start: int  # the matched span is tokens[start:end]
    end: int
    score: float  # mean fraction of the selected units that are on over the span


@dataclass(frozen=True, eq=False)
class PatternSearch(_ShowsInNotebooks):
    """LSTMVis-style search (Strobelt et al. 2018): the units on over a selected span and off around it, and the
    spans of other sentences where the same units are on."""

    model: str
    side: str  # "encoder_forward" | "encoder_backward"
    threshold: float
    tokens: tuple[str, ...]  # [P] the current sentence
    span: tuple[int, int]  # the selected span: tokens[start:end]
    units: np.ndarray  # [k] selected units
    values: np.ndarray  # [k, P] their hidden states over the current sentence
    matches: tuple[PatternMatch, ...]  # best first
    n_sentences: int  # sentences searched

    def to_pandas(self) -> pd.DataFrame:
        """One row per match: the sentence, the span and its tokens, the score."""
        import pandas as pd

        return pd.DataFrame(
            {
                "sentence": [m.sentence for m in self.matches],
                "text": [m.text for m in self.matches],
                "start": [m.start for m in self.matches],
                "end": [m.end for m in self.matches],
                "span_tokens": [" ".join(m.tokens[m.start : m.end]) for m in self.matches],
                "score": [m.score for m in self.matches],
            },
        ).assign(model=self.model, side=self.side, units=" ".join(map(str, self.units.tolist())))


@dataclass(frozen=True, eq=False)
class EmbeddingProjection(_ShowsInNotebooks):
    """Token embeddings projected to 2-D by PCA: a sample of the vocabulary, the sentence's tokens highlighted."""

    model: str
    side: str  # "source" | "target"
    tokens: tuple[str, ...]  # [n]
    ids: np.ndarray  # [n]
    coords: np.ndarray  # [n, 2] principal components 1 and 2
    counts: np.ndarray  # [n] occurrences in the training split (-1: not known)
    highlighted: np.ndarray  # [n] bool: tokens asked for (the sentence's)
    explained: np.ndarray  # [2] share of the sample's variance along each axis
    sample: str  # how the vocabulary was sampled

    def to_pandas(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(
            {
                "token": self.tokens,
                "id": self.ids,
                "pc1": self.coords[:, 0],
                "pc2": self.coords[:, 1],
                "count": self.counts,
                "highlighted": self.highlighted,
            }
        ).assign(model=self.model, side=self.side)


@dataclass(frozen=True, eq=False)
class Neighbours(_ShowsInNotebooks):
    """The tokens whose embeddings are closest to one token's, by cosine similarity."""

    model: str
    side: str
    token: str
    token_id: int
    tokens: tuple[str, ...]  # [k] nearest first (the token itself excluded)
    ids: np.ndarray  # [k]
    similarity: np.ndarray  # [k] cosine similarity

    def to_pandas(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(
            {"rank": range(1, len(self.tokens) + 1), "token": self.tokens, "id": self.ids, "cosine": self.similarity}
        ).assign(model=self.model, side=self.side, of=self.token)
