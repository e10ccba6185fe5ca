"""Plain results of Lantern's computations: frozen dataclasses of numpy arrays and strings.

No torch here: these objects are cached by the app, pickled, exported and read by the plots.
Shapes use ``src`` (source tokens), ``tgt`` (generated tokens), ``k`` (alternatives).

In a notebook each result shows itself with the figures the app draws (``_repr_html_``, built by
``viz.notebook`` when Jupyter asks for it: the one place the results reach for the plotting layer), and
``to_pandas()`` turns it into a table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd


class _ShowsInNotebooks:
    """Jupyter calls ``_repr_html_``; the figures come from ``viz.notebook``, imported only then."""

    def _repr_html_(self) -> str:
        from viz.notebook import to_html  # lazy: results stay plot-free until a notebook shows one

        return to_html(self)


@dataclass(frozen=True, eq=False)
class Translation(_ShowsInNotebooks):
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
    # a prompted model (few-shot translation): src_tokens[a:b] are the source text's own tokens, the rest is the
    # prompt around them (see explain.focus); None: every source token is the text's
    src_span: tuple[int, int] | None = None

    @property
    def truncated(self) -> bool:
        return self.n_src_tokens > self.n_kept_tokens

    @property
    def n_text_tokens(self) -> int:
        """Source tokens an explanation perturbs: the text's own (a prompt around it stays as it is)."""
        return len(self.src_tokens) if self.src_span is None else self.src_span[1] - self.src_span[0]

    @property
    def probs(self) -> np.ndarray:
        return np.exp(self.logprobs)

    def to_pandas(self) -> pd.DataFrame:
        """One row per generated token: its id, probability, log-probability, entropy and the runners-up."""
        import pandas as pd

        return pd.DataFrame(
            {
                "step": range(len(self.tgt_tokens)),
                "token": self.tgt_tokens,
                "id": self.tgt_ids,
                "probability": self.probs,
                "logprob": self.logprobs,
                "entropy": self.entropy,
                "alternatives": [
                    [(tok, float(p)) for tok, p in zip(toks, probs, strict=True)]
                    for toks, probs in zip(self.alt_tokens, self.alt_probs, strict=True)
                ],
            }
        )


@dataclass(frozen=True, eq=False)
class AttentionMaps(_ShowsInNotebooks):
    """Attention weights from one teacher-forced pass over (source, generated target)."""

    src_tokens: tuple[str, ...]
    tgt_tokens: tuple[str, ...]
    cross: np.ndarray | None  # [layers, heads, tgt, src]; rows sum to 1
    encoder_self: np.ndarray | None = None  # [layers, heads, src, src]
    decoder_self: np.ndarray | None = None  # [layers, heads, tgt, tgt]; lower-triangular
    # decoder-only: [layers, heads, src + tgt - 1, src + tgt - 1] over prompt and prefix
    prefix_tokens: tuple[str, ...] = ()  # decoder inputs (keys of decoder self-attention)
    src_span: tuple[int, int] | None = None  # the source text's own tokens inside a prompt (Translation.src_span)

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

    def to_pandas(self) -> pd.DataFrame:
        """Long format, one row per weight: kind (cross, encoder, decoder), layer, head, row and column with their
        tokens, weight. Decoder-only models have kind "causal" over prompt and prefix."""
        import pandas as pd

        seq2seq = self.cross is not None
        causal_tokens = (*self.src_tokens, *self.prefix_tokens)  # decoder-only: prompt, then the target prefix
        parts = {
            "cross": (self.cross, self.tgt_tokens, self.src_tokens),
            "encoder": (self.encoder_self, self.src_tokens, self.src_tokens),
            "decoder" if seq2seq else "causal": (
                self.decoder_self,
                self.tgt_tokens if seq2seq else causal_tokens,
                self.prefix_tokens if seq2seq else causal_tokens,
            ),
        }
        frames = []
        for kind, (stack, rows, cols) in parts.items():
            if stack is None:
                continue
            layer, head, row, col = (a.ravel() for a in np.indices(stack.shape))
            frames.append(
                pd.DataFrame(
                    {
                        "kind": kind,
                        "layer": layer,
                        "head": head,
                        "row": row,
                        "row_token": np.asarray(rows, dtype=object)[row],
                        "col": col,
                        "col_token": np.asarray(cols, dtype=object)[col],
                        "weight": stack.ravel(),
                    }
                )
            )
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


@dataclass(frozen=True, eq=False)
class Attribution(_ShowsInNotebooks):
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
    signed: bool = True  # scores can be negative (drawn on a diverging scale); False for magnitudes
    src_span: tuple[int, int] | None = None  # the source text's own tokens inside a prompt (Translation.src_span)

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

    def to_pandas(self) -> pd.DataFrame:
        """Long format, one row per (output step, input token) score, source then target prefix. ``explained`` is
        False for output steps the attribution did not explain (a contrast at one step): their scores are 0."""
        import pandas as pd

        sides = [("source", self.src_tokens, self.scores)]
        if self.prefix_scores is not None:
            sides.append(("prefix", self.prefix_tokens, self.prefix_scores))
        # One block of rows per output step (source tokens, then the prefix), built column by column: a frame per
        # step and side, concatenated, took most of an Attributions page run under load (bench/load.py).
        n_steps = len(self.tgt_tokens)
        width = sum(len(tokens) for _, tokens, _ in sides)
        explained = np.isin(np.arange(n_steps), self.rows)
        delta = np.full(n_steps, np.nan) if self.delta is None else np.asarray(self.delta, dtype=float)[:n_steps]
        per_step = {  # one value per output step, repeated over its block
            "step": np.arange(n_steps),
            "output_token": np.array(self.tgt_tokens, dtype=object),
            "step_logprob": np.asarray(self.step_logprobs, dtype=float)[:n_steps],
            "step_entropy": np.asarray(self.step_entropy, dtype=float)[:n_steps],
            "delta": delta,
            "explained": explained,
        }
        block = {  # the same for every output step, tiled
            "side": np.array([side for side, tokens, _ in sides for _ in tokens], dtype=object),
            "position": np.concatenate([np.arange(len(tokens)) for _, tokens, _ in sides]),
            "input_token": np.array([tok for _, tokens, _ in sides for tok in tokens], dtype=object),
        }
        frame = pd.DataFrame(
            {
                **{k: np.repeat(v, width) for k, v in per_step.items()},
                **{k: np.tile(v, n_steps) for k, v in block.items()},
                "score": np.concatenate([np.asarray(scores)[:n_steps] for _, _, scores in sides], axis=1).reshape(-1),
            }
        )
        return frame.assign(model=self.model, method=self.method, target=self.target, contrast=self.contrast)
