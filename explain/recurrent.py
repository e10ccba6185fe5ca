"""Inside Lantern's LSTM: states and gates step by step, and LSTMVis-style pattern search over its units.

``nn.LSTM`` returns hidden states only (and the last cell state): the gates are recomputed here from the
module's own weights, step by step, with PyTorch's equations (gate order i, f, g, o):

    i, f, o = σ(W_i x + b_i + U_i h),  g = tanh(W_g x + b_g + U_g h),  c' = f c + i g,  h' = o tanh(c')

and checked against the module's outputs (``LstmStates.max_error``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from explain.anatomy import family
from explain.inside_types import LSTM_QUANTITIES, LstmRun, LstmStates, PatternMatch, PatternSearch
from explain.types import Translation
from models.adapter import LanternModel
from models.decoding import InputError
from models.threads import under_policy

SEARCH_SIDES = ("encoder_forward", "encoder_backward")
MAX_SENTENCES = 5000  # sentences one pattern search reads
BATCH = 128  # sentences per encoder pass of the search


def _require_lstm(lm: LanternModel, what: str) -> None:
    if family(lm) != "lstm":
        raise InputError(
            f"{what} reads Lantern's LSTM; {lm.name} is a Transformer: use the logit lens, layer norms, the "
            "neuron view or FFN neurons (explain.inside) instead"
        )


def _steps(lstm: nn.LSTM, layer: int, suffix: str, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> dict:
    """One direction of one layer over x [steps, in] from (h, c) [units]: each quantity as [steps, units]."""
    w_ih, w_hh = getattr(lstm, f"weight_ih_l{layer}{suffix}"), getattr(lstm, f"weight_hh_l{layer}{suffix}")
    bias = getattr(lstm, f"bias_ih_l{layer}{suffix}", None)
    pre_x = x @ w_ih.T + (0 if bias is None else bias + getattr(lstm, f"bias_hh_l{layer}{suffix}"))
    out: dict[str, list[torch.Tensor]] = {q: [] for q in LSTM_QUANTITIES}
    for pre in pre_x:
        i, f, g, o = (pre + w_hh @ h).chunk(4)
        i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
        c = f * c + i * g
        h = o * c.tanh()
        for name, value in zip(LSTM_QUANTITIES, (h, c, i, f, g, o), strict=True):
            out[name].append(value)
    return {name: torch.stack(values) for name, values in out.items()}


def _run(tokens: Sequence[str], per_layer: list[dict]) -> LstmRun:
    arrays = {q: torch.stack([layer[q] for layer in per_layer]).cpu().numpy() for q in LSTM_QUANTITIES}
    return LstmRun(tokens=tuple(tokens), **arrays)


def _encoder(lstm: nn.LSTM, embeds: torch.Tensor) -> tuple[list[dict], list[dict]]:
    """Both directions of every layer; the backward one in source order (step s is token s)."""
    zero = embeds.new_zeros(lstm.hidden_size)
    forward, backward, x = [], [], embeds
    for layer in range(lstm.num_layers):
        fwd = _steps(lstm, layer, "", x, zero, zero)
        bwd = {q: v.flip(0) for q, v in _steps(lstm, layer, "_reverse", x.flip(0), zero, zero).items()}
        forward.append(fwd)
        backward.append(bwd)
        x = torch.cat([fwd["hidden"], bwd["hidden"]], -1)
    return forward, backward


def _decoder(lstm: nn.LSTM, embeds: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor) -> list[dict]:
    runs, x = [], embeds
    for layer in range(lstm.num_layers):
        run = _steps(lstm, layer, "", x, h0[layer], c0[layer])
        runs.append(run)
        x = run["hidden"]
    return runs


@under_policy
@torch.no_grad()
def lstm_states(lm: LanternModel, translation: Translation) -> LstmStates:
    """Encoder (forward and backward) and decoder states and gates of the LSTM for ``translation``.

    Each quantity is [layers, steps, units]: hidden and cell states, input, forget and output gates, and the cell
    candidate. The decoder starts from the model's bridge of the encoder's final states and reads the decoder
    inputs (start token, then the output but its last token); its step t predicts output token t.
    """
    _require_lstm(lm, "LSTM states")
    model = lm.model
    src = torch.tensor([list(translation.src_ids)], device=lm.device)
    dec_ids = lm.decoder_inputs(list(translation.tgt_ids))
    dec = torch.tensor([dec_ids], device=lm.device)
    with lm.lock:
        enc_embeds = model.encoder.embed_tokens(src)[0].float()
        forward, backward = _encoder(model.encoder.lstm, enc_embeds)
        enc_out = model.encoder(src, torch.ones_like(src)).last_hidden_state  # [1, S, hidden]
        h0, c0 = model.decoder.initial_state(enc_out, torch.tensor([src.shape[1]], device=lm.device))
        dec_embeds = model.decoder.embed_tokens(dec)
        decoder = _decoder(model.decoder.lstm, dec_embeds[0].float(), h0[:, 0].float(), c0[:, 0].float())
        dec_out, _ = model.decoder.lstm(dec_embeds, (h0, c0))  # nn.LSTM's own top-layer outputs
    half = enc_out.shape[-1] // 2
    error = max(
        float((enc_out[0, :, :half] - forward[-1]["hidden"]).abs().max()),
        float((enc_out[0, :, half:] - backward[-1]["hidden"]).abs().max()),
        float((dec_out[0] - decoder[-1]["hidden"]).abs().max()),
    )
    return LstmStates(
        model=lm.name,
        tgt_tokens=translation.tgt_tokens,
        encoder_forward=_run(translation.src_tokens, forward),
        encoder_backward=_run(translation.src_tokens, backward),
        decoder=_run(lm.target_tokens(dec_ids), decoder),
        max_error=error,
    )


@torch.no_grad()
def _encoder_hidden(lm: LanternModel, batch: list[list[int]], side: str) -> list[np.ndarray]:
    """Top-layer hidden states [steps, units] of one encoder direction for each id sequence (one padded pass)."""
    width = max(map(len, batch))
    ids = torch.full((len(batch), width), lm.model.config.pad_token_id, dtype=torch.long, device=lm.device)
    mask = torch.zeros_like(ids)
    for row, seq in enumerate(batch):
        ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
    with lm.lock:
        out = lm.model.encoder(ids, mask).last_hidden_state.float()  # [B, S, hidden]: forward | backward
    half = out.shape[-1] // 2
    part = out[..., :half] if side == "encoder_forward" else out[..., half:]
    return [part[row, : len(seq)].cpu().numpy() for row, seq in enumerate(batch)]


def _runs(on: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs [start, end) of True in a 1-D boolean array."""
    edges = np.diff(np.concatenate([[0], on.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


def select_units(values: np.ndarray, span: tuple[int, int], threshold: float) -> np.ndarray:
    """Units (columns of values [steps, units]) at or above ``threshold`` on every step of ``span`` and below it on
    the steps just before and after the span (where there are such steps): LSTMVis's selection."""
    start, end = span
    keep = (values[start:end] >= threshold).all(0)
    if start > 0:
        keep &= values[start - 1] < threshold
    if end < len(values):
        keep &= values[end] < threshold
    return np.flatnonzero(keep)


def _check_search(lm: LanternModel, side: str, span: tuple[int, int], n_tokens: int, k: int, min_on: float) -> None:
    if side not in SEARCH_SIDES:
        raise InputError(
            f"pattern search reads the encoder ({', '.join(SEARCH_SIDES)}), not {side!r}: the decoder's states depend "
            "on the output, which the other sentences do not share"
        )
    start, end = span
    if not 0 <= start < end <= n_tokens:
        raise InputError(f"the span must lie within the sentence's {n_tokens} tokens: 0 <= start < end, not {span}")
    if not 1 <= k <= 500:
        raise InputError(f"k (matches returned) must be between 1 and 500, not {k}")
    if not 0 < min_on <= 1:
        raise InputError(f"min_on (share of the selected units that must be on) must be in (0, 1], not {min_on}")


@under_policy
def pattern_search(
    lm: LanternModel,
    translation: Translation,
    side: str,
    span: tuple[int, int],
    sentences: Sequence[str],
    threshold: float = 0.3,
    k: int = 20,
    min_on: float = 1.0,
) -> PatternSearch:
    """LSTMVis's pattern search (Strobelt et al. 2018) over the encoder's top-layer hidden states.

    Select the units on (≥ ``threshold``) at every token of ``span`` = (start, end) of the current source and off
    on the tokens around it; then, in each of ``sentences`` (e.g. the model's test split), every maximal span
    where at least ``min_on`` of those units are on is a match. Matches are ranked by the share of units on,
    then by how close their length is to the selected span's, then by the units' mean activation.
    """
    _require_lstm(lm, "Pattern search")
    span = (int(span[0]), int(span[1]))
    _check_search(lm, side, span, len(translation.src_ids), k, min_on)
    if len(sentences) > MAX_SENTENCES:
        raise InputError(f"pattern search reads up to {MAX_SENTENCES:,} sentences, not {len(sentences):,}")
    current = _encoder_hidden(lm, [list(translation.src_ids)], side)[0]
    units = select_units(current, span, threshold)
    matches: list[tuple[tuple, PatternMatch]] = []
    if len(units):
        encoded = []
        for i, text in enumerate(sentences):
            try:
                encoded.append((i, text, lm.encode_source(text).ids))
            except InputError:  # an empty line of the corpus: nothing to match
                continue
        span_len = span[1] - span[0]
        for chunk in range(0, len(encoded), BATCH):
            part = encoded[chunk : chunk + BATCH]
            for (i, text, ids), hidden in zip(part, _encoder_hidden(lm, [e[2] for e in part], side), strict=True):
                sel = hidden[:, units]  # [steps, selected units]
                share = (sel >= threshold).mean(1)
                tokens = None
                for start, end in _runs(share >= min_on - 1e-9):
                    score = float(share[start:end].mean())
                    rank = (-score, abs(end - start - span_len), -float(sel[start:end].mean()))
                    tokens = tokens or tuple(lm.source_tokens(ids))
                    matches.append((rank, PatternMatch(i, text, tokens, start, end, score)))
    matches.sort(key=lambda m: m[0])
    return PatternSearch(
        model=lm.name,
        side=side,
        threshold=float(threshold),
        tokens=translation.src_tokens,
        span=span,
        units=units,
        values=current[:, units].T.copy(),
        matches=tuple(m for _, m in matches[:k]),
        n_sentences=len(sentences),
    )
