"""Plain results of Lantern's computations: frozen dataclasses of numpy arrays and strings.

No torch here: these objects are cached by the app, pickled, exported and read by the plots.
Shapes use ``src`` (source tokens), ``tgt`` (generated tokens), ``k`` (alternatives).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Translation:
    """A generated output with the model's own view of each step."""

    model: str
    src_text: str  # cleaned source the model saw (after truncation: its tokens)
    src_tokens: tuple[str, ...]
    src_ids: tuple[int, ...]
    tgt_tokens: tuple[str, ...]  # generated tokens, EOS included when generated
    tgt_ids: tuple[int, ...]
    text: str  # detokenized output
    logprobs: np.ndarray  # [tgt] log p(token_t | source, prefix)
    entropy: np.ndarray  # [tgt] entropy (nats) of the step's distribution
    alt_tokens: tuple[tuple[str, ...], ...]  # [tgt][k] most probable tokens at each step
    alt_probs: np.ndarray  # [tgt, k] their probabilities
    decoding: str  # e.g. "greedy" or "beam 5"
    unknown: tuple[str, ...] = ()  # source substrings the vocabulary lacks (became <unk>)
    n_src_tokens: int = 0  # tokens of the input text before truncation
    n_kept_tokens: int = 0  # tokens of the input text the model read
    alt_ids: tuple[tuple[int, ...], ...] = ()  # [tgt][k] ids of alt_tokens

    @property
    def truncated(self) -> bool:
        return self.n_src_tokens > self.n_kept_tokens

    @property
    def probs(self) -> np.ndarray:
        return np.exp(self.logprobs)


@dataclass(frozen=True, eq=False)
class AttentionMaps:
    """Attention weights from one teacher-forced pass over (source, generated target)."""

    src_tokens: tuple[str, ...]
    tgt_tokens: tuple[str, ...]
    cross: np.ndarray | None  # [layers, heads, tgt, src]; rows sum to 1
    encoder_self: np.ndarray | None = None  # [layers, heads, src, src]
    decoder_self: np.ndarray | None = None  # [layers, heads, tgt, tgt]; lower-triangular
    # decoder-only: [layers, heads, src + tgt - 1, src + tgt - 1] over prompt and prefix
    prefix_tokens: tuple[str, ...] = ()  # decoder inputs (keys of decoder self-attention)

    def __post_init__(self) -> None:
        if self.cross is not None and self.cross.shape[-2:] != (len(self.tgt_tokens), len(self.src_tokens)):
            raise ValueError(
                f"cross-attention has {self.cross.shape[-2]} target and {self.cross.shape[-1]} "
                f"source positions but there are {len(self.tgt_tokens)} target and "
                f"{len(self.src_tokens)} source tokens"
            )

    @property
    def n_layers(self) -> int:
        return 0 if self.cross is None else self.cross.shape[0]

    @property
    def n_heads(self) -> int:
        return 0 if self.cross is None else self.cross.shape[1]


@dataclass(frozen=True, eq=False)
class Attribution:
    """How much each input token contributed to each generated token, under one method.

    Encoder-decoder: ``scores`` covers the source, ``prefix_scores`` the decoder inputs (the start
    token and the target tokens before each step). Row t explains generated token t.
    """

    model: str
    method: str  # a key of explain.attribution.METHODS
    target: str  # "logprob" | "prob" | "contrast"
    src_tokens: tuple[str, ...]
    tgt_tokens: tuple[str, ...]  # generated tokens (rows)
    prefix_tokens: tuple[str, ...]  # decoder inputs: start token, then tgt_tokens[:-1]
    scores: np.ndarray  # [tgt, src]
    prefix_scores: np.ndarray | None  # [tgt, prefix]; row t is 0 beyond column t (causal)
    step_logprobs: np.ndarray  # [tgt] log p(token_t) under the model
    step_entropy: np.ndarray  # [tgt] entropy (nats) of step t's distribution
    delta: np.ndarray | None = None  # [tgt] completeness gap: Σ scores − (f(x) − f(baseline))
    steps: tuple[int, ...] = ()  # rows that were explained (all when empty)
    contrast: str = ""  # what the chosen tokens were contrasted with
    params: tuple[tuple[str, object], ...] = ()  # method settings, e.g. (("n_steps", 32),)

    def __post_init__(self) -> None:
        if self.scores.shape != (len(self.tgt_tokens), len(self.src_tokens)):
            raise ValueError(
                f"scores are {self.scores.shape} but there are {len(self.tgt_tokens)} target and "
                f"{len(self.src_tokens)} source tokens"
            )
        if self.prefix_scores is not None and self.prefix_scores.shape != (
            len(self.tgt_tokens),
            len(self.prefix_tokens),
        ):
            raise ValueError(
                f"prefix scores are {self.prefix_scores.shape} but there are {len(self.tgt_tokens)} "
                f"target and {len(self.prefix_tokens)} prefix tokens"
            )

    @property
    def rows(self) -> tuple[int, ...]:
        return self.steps or tuple(range(len(self.tgt_tokens)))
