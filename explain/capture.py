"""Reading activations during one forward pass without changing the model for anyone else.

``hooks``: forward hooks for the duration of one call, removed in ``finally``. ``capturing_attention``: the
queries and keys one attention module multiplies. transformers 5 picks each attention module's function per call
from ``config._attn_implementation`` (``ALL_ATTENTION_FUNCTIONS.get_interface``); Lantern registers one more
function, ``lantern_capture``, which records what it receives and then runs the model's own eager attention, so
the numbers are exactly the model's. The setting is switched only while the model's lock is held and restored
in ``finally``; a pass of another thread that reached the model without the lock would still run plain eager
attention (the recorder is per thread).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface, eager_mask

from models.adapter import LanternModel

CAPTURE = "lantern_capture"
_local = threading.local()


@dataclass
class Captured:
    """What one attention call received: query [B, H, q, d], key [B, KV, k, d], the additive mask
    [B, 1, q, k] (or None: every key allowed) and the call's keyword arguments (scaling, softcap...)."""

    query: torch.Tensor
    key: torch.Tensor
    mask: torch.Tensor | None
    kwargs: dict
    weights: torch.Tensor | None = None  # [B, H, q, k] what the model's eager attention returned


def _eager(module: nn.Module) -> Callable:
    """The eager attention function of the module's own modeling file (Marian, Llama, Gemma 3... each has one)."""
    fn = getattr(sys.modules[type(module).__module__], "eager_attention_forward", None)
    if fn is None:
        raise TypeError(f"{type(module).__name__} has no eager attention function to delegate to")
    return fn


def _capture_attention(module, query, key, value, attention_mask, **kwargs):
    out, weights = _eager(module)(module, query, key, value, attention_mask, **kwargs)
    wanted = getattr(_local, "wanted", None)
    if wanted is not None and module is wanted:
        mask = attention_mask
        if mask is not None and mask.dtype == torch.bool:  # a boolean mask (True: may attend) as an additive one
            mask = torch.zeros(mask.shape, dtype=query.dtype).masked_fill(~mask, torch.finfo(query.dtype).min)
        _local.captured = Captured(query.detach(), key.detach(), None if mask is None else mask.detach(), kwargs)
        _local.captured.weights = None if weights is None else weights.detach()
    return out, weights


AttentionInterface.register(CAPTURE, _capture_attention)
AttentionMaskInterface.register(CAPTURE, eager_mask)  # the same masks as eager attention


def _configs(model: nn.Module) -> list:
    """Every distinct config object the model's modules read (sub-configs included)."""
    found = {id(model.config): model.config}
    for module in model.modules():
        config = getattr(module, "config", None)
        if config is not None and hasattr(config, "_attn_implementation"):
            found[id(config)] = config
    return list(found.values())


@contextmanager
def capturing_attention(lm: LanternModel, module: nn.Module) -> Iterator[Callable[[], Captured]]:
    """While the block runs (under ``lm.lock``), one pass records what ``module`` multiplies; yields a getter."""
    with lm.lock:
        configs = _configs(lm.model)
        saved = [(c, c._attn_implementation_internal) for c in configs]  # internal: setting would recurse
        _local.wanted, _local.captured = module, None
        try:
            for config, _ in saved:
                config._attn_implementation_internal = CAPTURE
            yield lambda: _local.captured
        finally:
            for config, value in saved:
                config._attn_implementation_internal = value
            _local.wanted = _local.captured = None


def _hidden(args: tuple, kwargs: dict) -> torch.Tensor:
    return args[0] if args else kwargs["hidden_states"]


def _output(out: object) -> torch.Tensor:
    return out[0] if isinstance(out, tuple | list) else out


@contextmanager
def hooks(
    outputs: dict[str, nn.Module] | None = None,
    inputs: dict[str, nn.Module] | None = None,
    keep: Callable[[torch.Tensor], torch.Tensor] = lambda t: t,
) -> Iterator[dict[str, torch.Tensor]]:
    """Record the output of each module in ``outputs`` and the (first) input of each in ``inputs``, as
    ``keep(tensor)`` (e.g. some positions only), into the yielded dict under their keys. Removed in ``finally``."""
    found: dict[str, torch.Tensor] = {}
    handles = []

    def on_output(key: str) -> Callable:
        def hook(module, args, kwargs, out):
            found[key] = keep(_output(out).detach())

        return hook

    def on_input(key: str) -> Callable:
        def hook(module, args, kwargs):
            found[key] = keep(_hidden(args, kwargs).detach())

        return hook

    try:
        for key, module in (outputs or {}).items():
            handles.append(module.register_forward_hook(on_output(key), with_kwargs=True))
        for key, module in (inputs or {}).items():
            handles.append(module.register_forward_pre_hook(on_input(key), with_kwargs=True))
        yield found
    finally:
        for handle in handles:
            handle.remove()
