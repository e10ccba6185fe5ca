"""What is attributed: per-step scores of a fixed output, as a function of the input embeddings.

``Objective`` runs the model on a batch of (source, target-prefix) embedding rows, substituted for
the outputs of the encoder's and decoder's embedding modules by forward hooks that live only for
the call (the model's lock is held by the caller), and returns one score per generated step:

- ``logprob``: log p(y_t | x, y_<t)
- ``prob``: p(y_t | x, y_<t)
- ``contrast``: log p(y_t | x, y_<t) − log p(a_t | x, y_<t): an alternative token at one step, or the
  tokens of a whole alternative target aligned by position, each after the same prefix as the
  chosen token (Inseq's default, without forcing the alternative's own prefix).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from models.adapter import LanternModel

TARGETS = ("logprob", "prob", "contrast")
MEMORY_ENV = "LANTERN_ATTRIBUTION_MB"  # activation memory one attribution chunk may use (default 1500 MB)
BASELINES = ("pad", "unk")  # the token whose embedding stands for "no information"


def _fill_id(tokenizer: PreTrainedTokenizerBase, baseline: str) -> int:
    """Token id whose embedding is the baseline; byte-level vocabularies may lack pad or unk."""
    if baseline == "unk":
        if tokenizer.unk_token_id is None:
            raise ValueError("this tokenizer has no <unk> token; use the pad baseline")
        return tokenizer.unk_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad is None:
        raise ValueError("this tokenizer has neither a pad nor an end-of-sequence token to use as a baseline")
    return pad


def step_score(
    logp: torch.Tensor, chosen_ids: torch.Tensor, target: str, alt_ids: torch.Tensor | None = None
) -> torch.Tensor:
    """What is attributed at one step, from its log-probabilities: the one definition every method uses.

    logp [..., V]; chosen_ids [...] the tokens the output has; alt_ids [...] the alternatives of a contrast
    (-1 where a step is not contrasted, which scores 0) -> scores [...].
    """
    chosen = logp.gather(-1, chosen_ids[..., None])[..., 0]
    if target == "logprob":
        return chosen
    if target == "prob":
        return chosen.exp()
    if target == "contrast":
        if alt_ids is None:
            raise ValueError("target 'contrast' needs an alternative token or an alternative target")
        alt = logp.gather(-1, alt_ids.clamp(min=0)[..., None])[..., 0]
        return torch.where(alt_ids >= 0, chosen - alt, torch.zeros_like(chosen))
    raise ValueError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")


@contextmanager
def embeddings_replaced(
    src_module: nn.Module, dec_module: nn.Module | None, src: torch.Tensor, dec: torch.Tensor | None
) -> Iterator[None]:
    """Make the embedding modules output ``src`` [B, S, d] and ``dec`` [B, T, d] for one forward pass.

    ``dec_module`` None: a decoder-only model, whose single embedding call outputs ``src``.
    """
    if dec_module is None:
        handles = [src_module.register_forward_hook(lambda m, i, o: src)]
    elif src_module is dec_module:  # one shared module (T5): the encoder calls it before the decoder
        queue = [src, dec]
        handles = [src_module.register_forward_hook(lambda m, i, o: queue.pop(0) if queue else o)]
    else:
        handles = [
            src_module.register_forward_hook(lambda m, i, o: src),
            dec_module.register_forward_hook(lambda m, i, o: dec),
        ]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@dataclass
class Objective:
    """Scores of one fixed output under perturbed or interpolated input embeddings."""

    lm: LanternModel
    src_ids: torch.Tensor  # [S]
    dec_ids: torch.Tensor  # [T] decoder inputs: start token, y_0 .. y_{T-2}
    tgt_ids: torch.Tensor  # [T] generated tokens
    target: str = "logprob"
    alt_ids: torch.Tensor | None = None  # [T] alternative token per step (-1 where not contrasted)
    baseline: str = "pad"  # pad: padding embeddings everywhere (Captum's usual choice, zeros here);
    # unk: <unk> embeddings, the decoder start token kept (Inseq's convention)

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise ValueError(f"unknown target {self.target!r}; choose one of {', '.join(TARGETS)}")
        if self.baseline not in BASELINES:
            raise ValueError(f"unknown baseline {self.baseline!r}; choose one of {', '.join(BASELINES)}")
        if self.target == "contrast" and self.alt_ids is None:
            raise ValueError("target 'contrast' needs an alternative token or an alternative target")
        self._keeps_logits = "logits_to_keep" in inspect.signature(self.lm.model.forward).parameters
        self.src_module = self.lm.source_embedding()
        self.dec_module = self.lm.target_embedding()
        with torch.no_grad():
            self.src_embeds = self.src_module(self.src_ids[None])[0]  # [S, d]
            self.dec_embeds = self.dec_module(self.dec_ids[None])[0]  # [T, d]
            src_fill, dec_fill = (
                _fill_id(self.lm.src_tokenizer, self.baseline),
                _fill_id(self.lm.tgt_tokenizer, self.baseline),
            )
            dec_base_ids = torch.full_like(self.dec_ids, dec_fill)
            if self.baseline == "unk" and self.lm.is_seq2seq() and len(dec_base_ids):
                dec_base_ids[0] = self.dec_ids[0]  # the decoder start token is always there
            self.src_base = self.src_module(torch.full_like(self.src_ids, src_fill)[None])[0]
            self.dec_base = self.dec_module(dec_base_ids[None])[0]

    @property
    def n_steps(self) -> int:
        return len(self.tgt_ids)

    def tokens_per_chunk(self, backward: bool) -> int:
        """How many tokens (copies × sequence length) one batched pass may hold.

        Estimated from the model's width and depth: a backward pass keeps ~6·hidden + 2·ffn floats per token
        and layer; a forward-only pass frees them as it goes (a quarter is a safe bound).
        """
        cfg = self.lm.model.config
        hidden = getattr(cfg, "hidden_size", None) or getattr(cfg, "d_model", None) or 512
        layers = getattr(cfg, "num_hidden_layers", None) or (
            getattr(cfg, "encoder_layers", 1) + getattr(cfg, "decoder_layers", 1)
        )
        ffn = getattr(cfg, "intermediate_size", None) or getattr(cfg, "encoder_ffn_dim", None) or 4 * hidden
        per_token = 4 * layers * (6 * hidden + 2 * ffn) * (1.0 if backward else 0.25)
        budget = float(os.environ.get(MEMORY_ENV, "1500")) * 2**20
        return max(64, int(budget / per_token))

    @property
    def n_prefix(self) -> int:
        """Decoder inputs: T for encoder-decoders (start token first), T - 1 for decoder-only models."""
        return len(self.dec_ids)

    def prefix_length(self, steps: int) -> int:
        """Decoder inputs needed to score the first ``steps`` generated tokens."""
        return steps if self.lm.is_seq2seq() else steps - 1

    def _logprobs(self, src: torch.Tensor, dec: torch.Tensor, steps: torch.Tensor | None = None) -> torch.Tensor:
        """Log-probabilities for the first ``dec``-covered steps: [B, n, V]; with ``steps`` [B], only each row's
        own step: [B, 1, V] (the model projects onto the vocabulary at that one position, when it can)."""
        b = len(src)
        dec_ids = self.dec_ids[: dec.shape[1]]
        offset = 0 if self.lm.is_seq2seq() else len(self.src_ids) - 1  # position predicting step 0
        kwargs = {}
        if steps is not None and self._keeps_logits:
            kwargs["logits_to_keep"] = (steps + offset)[:, None]
        if not self.lm.is_seq2seq():  # one embedding call over prompt + target prefix
            ids = torch.cat([self.src_ids, dec_ids]).expand(b, -1)
            with embeddings_replaced(self.src_module, None, torch.cat([src, dec], 1), None):
                logits = self.lm.model(input_ids=ids, attention_mask=torch.ones_like(ids), **kwargs).logits
        else:
            with embeddings_replaced(self.src_module, self.dec_module, src, dec):
                logits = self.lm.model(
                    input_ids=self.src_ids.expand(b, -1),
                    attention_mask=torch.ones(b, len(self.src_ids), dtype=torch.long, device=src.device),
                    decoder_input_ids=dec_ids.expand(b, -1),
                    **kwargs,
                ).logits
        if steps is not None and not self._keeps_logits:
            logits = logits.gather(1, (steps + offset)[:, None, None].expand(-1, 1, logits.shape[-1]))
        elif steps is None and offset:
            logits = logits[:, offset:]
        return logits.float().log_softmax(-1)

    def score_at(self, src: torch.Tensor, dec: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        """src [B, S, d], dec [B, P, d], steps [B] -> each row's score at its own step [B]."""
        logp = self._logprobs(src, dec, steps)[:, :1]  # [B, 1, V]
        return self.scores(logp, steps[:, None])[:, 0]

    def __call__(self, src: torch.Tensor, dec: torch.Tensor) -> torch.Tensor:
        """src [B, S, d], dec [B, P, d] -> scores [B, steps] of the first steps the prefix covers.

        The full prefix scores every step; a shorter one (``prefix_length(k)`` positions) only the first k,
        which is all a step needs under causal decoding and saves the rest of the decoder's work.
        """
        logp = self._logprobs(src, dec)
        steps = torch.arange(logp.shape[1], device=logp.device).expand(len(src), -1)
        return self.scores(logp, steps)

    def scores(self, logp: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        """Log-probabilities [B, n, V] of ``steps`` [B, n] -> the attributed score at each [B, n]."""
        alt = self.alt_ids[steps] if self.alt_ids is not None else None
        return step_score(logp, self.tgt_ids[steps], self.target, alt)

    @torch.no_grad()
    def step_distribution(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(log p of each generated token [T], entropy of each step [T]) at the real input."""
        logp = self._logprobs(self.src_embeds[None], self.dec_embeds[None])[0]
        return logp.gather(-1, self.tgt_ids[:, None])[:, 0], -(logp.exp() * logp).sum(-1)
