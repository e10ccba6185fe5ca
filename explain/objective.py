"""What is attributed: per-step scores of a fixed output, as a function of the input embeddings.

``Objective`` runs the model on a batch of (source, target-prefix) embedding rows, substituted for
the outputs of the encoder's and decoder's embedding modules by forward hooks that live only for
one forward pass, under the model's lock, and returns one score per generated step. The lock covers that
forward pass alone (backward passes run on the recorded graph, without hooks), so another session's short
request on the same model waits for one batched chunk, not for a whole attribution:

- ``logprob``: log p(y_t | x, y_<t)
- ``prob``: p(y_t | x, y_<t)
- ``contrast``: log p(y_t | x, y_<t) − log p(a_t | x, y_<t): an alternative token at one step, or the
  tokens of a whole alternative target aligned by position, each after the same prefix as the
  chosen token (Inseq's default, without forcing the alternative's own prefix).
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from common.limits import limit
from models.adapter import LanternModel

TARGETS = ("logprob", "prob", "contrast")
BASELINES = ("pad", "unk")
# Memory a copy needs, as a multiple of the activations autograd saves for it (measured per model): a backward
# pass also creates gradients while it frees them; a pass without gradients holds the largest transients of a
# layer and the scores over the vocabulary. Calibrated with bench/memory.py (peak RSS of the worst attribution).
BACKWARD_FACTOR = 2.5
FORWARD_FACTOR = 1.0  # the token whose embedding stands for "no information"


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

    ``dec_module`` None: a decoder-only model, whose single embedding call outputs ``src``. The hooks act on
    this thread's calls only: another session calling the shared module meanwhile gets its own embeddings
    (callers also hold the model's lock, so no other forward pass runs while they are in place).
    """
    owner = threading.get_ident()

    def replace(value: torch.Tensor) -> Callable[..., torch.Tensor]:
        return lambda m, i, o: value if threading.get_ident() == owner else o

    if dec_module is None:
        handles = [src_module.register_forward_hook(replace(src))]
    elif src_module is dec_module:  # one shared module (T5): the encoder calls it before the decoder
        queue = [src, dec]

        def in_turn(m: nn.Module, i: object, o: torch.Tensor) -> torch.Tensor:
            return queue.pop(0) if queue and threading.get_ident() == owner else o

        handles = [src_module.register_forward_hook(in_turn)]
    else:
        handles = [
            src_module.register_forward_hook(replace(src)),
            dec_module.register_forward_hook(replace(dec)),
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
    span: tuple[int, int] | None = None  # a prompted model: only src_ids[a:b] (the text) move to the baseline; the
    # prompt around it stays as it is (its baseline is the input itself), so path and perturbation methods explain
    # the text, perturb only its tokens, and give the rest of the prompt 0

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise ValueError(f"unknown target {self.target!r}; choose one of {', '.join(TARGETS)}")
        if self.baseline not in BASELINES:
            raise ValueError(f"unknown baseline {self.baseline!r}; choose one of {', '.join(BASELINES)}")
        if self.target == "contrast" and self.alt_ids is None:
            raise ValueError("target 'contrast' needs an alternative token or an alternative target")
        self._keeps_logits = "logits_to_keep" in inspect.signature(self.lm.model.forward).parameters
        self._copy_bytes: dict[int, float] = {}  # prefix length -> activations saved per copy (bytes)
        self.src_module = self.lm.source_embedding()
        self.dec_module = self.lm.target_embedding()
        with torch.no_grad(), self.lm.lock:  # plain module calls, but never while another thread's hooks are in
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
            self.fixed = torch.zeros(len(self.src_ids), dtype=torch.bool, device=self.src_ids.device)
            if self.span is not None:
                self.fixed[:] = True
                self.fixed[self.span[0] : self.span[1]] = False
                self.src_base[self.fixed] = self.src_embeds[self.fixed]
            self.dec_base = self.dec_module(dec_base_ids[None])[0]

    @property
    def n_steps(self) -> int:
        return len(self.tgt_ids)

    def copies_per_chunk(self, prefix: int, backward: bool) -> int:
        """How many copies of the input (the source and ``prefix`` decoder inputs) one batched pass may hold
        within the attribution memory budget (``LANTERN_ATTRIBUTION_MB``)."""
        if prefix not in self._copy_bytes:
            self._copy_bytes[prefix] = self._measured_copy_bytes(prefix)
        if backward:  # one position's scores over the vocabulary per copy (logits_to_keep): in the measurement
            per_copy = self._copy_bytes[prefix] * BACKWARD_FACTOR
        else:  # every position's logits, their log-softmax and a float copy: [prefix, vocabulary] three times
            vocab = max(len(self.lm.tgt_tokenizer), getattr(self.lm.model.config, "vocab_size", 0) or 0)
            per_copy = self._copy_bytes[prefix] * FORWARD_FACTOR + 3 * 4 * max(prefix, 1) * vocab
        return max(1, int(limit("attribution_mb") * 2**20 / per_copy))

    def _measured_copy_bytes(self, prefix: int) -> float:
        """The activations one copy holds for its backward pass, measured on this model: the tensors autograd saves
        for 2 copies minus those for 1 (weights are shared, counted once). Measured, not estimated from the config,
        so that any architecture (an LSTM's additive attention over every source and target pair, a decoder's
        quadratic self-attention) is covered; ``bench/memory.py`` checks the peaks against the budget."""
        saved = []
        for copies in (1, 2):
            storages: dict[int, int] = {}

            def pack(t: torch.Tensor, storages: dict[int, int] = storages) -> None:
                storage = t.untyped_storage()
                storages[storage.data_ptr()] = storage.nbytes()
                # Not ``t``: a node holding its own output through a Python object is a reference cycle through
                # C++ that Python's collector cannot see, and every measurement leaked its whole graph (~8 MB on
                # transformer-en-fr). This graph is never run backward, so nothing needs unpacking.

            src = self.src_embeds.expand(copies, -1, -1).clone().requires_grad_(True)
            dec = self.dec_embeds[:prefix].expand(copies, -1, -1).clone().requires_grad_(True)
            steps = torch.full((copies,), max(0, min(self.n_steps, prefix + (0 if self.lm.is_seq2seq() else 1)) - 1))
            with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda _: None):
                self.score_at(src, dec, steps)
            saved.append(sum(storages.values()))
        return float(max(saved[1] - saved[0], 1))

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
        elif steps is None and offset and self._keeps_logits:  # the output's positions, not the prompt's
            kwargs["logits_to_keep"] = dec.shape[1] + 1
        if not self.lm.is_seq2seq():  # one embedding call over prompt + target prefix
            ids = torch.cat([self.src_ids, dec_ids]).expand(b, -1)
            with self.lm.lock, embeddings_replaced(self.src_module, None, torch.cat([src, dec], 1), None):
                logits = self.lm.model(input_ids=ids, attention_mask=torch.ones_like(ids), **kwargs).logits
        else:
            with self.lm.lock, embeddings_replaced(self.src_module, self.dec_module, src, dec):
                logits = self.lm.model(
                    input_ids=self.src_ids.expand(b, -1),
                    attention_mask=torch.ones(b, len(self.src_ids), dtype=torch.long, device=src.device),
                    decoder_input_ids=dec_ids.expand(b, -1),
                    **kwargs,
                ).logits
        if steps is not None and not self._keeps_logits:
            logits = logits.gather(1, (steps + offset)[:, None, None].expand(-1, 1, logits.shape[-1]))
        elif steps is None and offset and not self._keeps_logits:
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
