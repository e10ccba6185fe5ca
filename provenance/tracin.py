"""Training-data influence of one output token: TracIn (Pruthi et al. 2020) over the snapshots a run kept.

    influence(lm, "我爱北京天安门", "▁Tokyo")   # proponents and opponents of "Tokyo" among the training pairs

TracIn scores a training pair z for a test output z' as the sum over checkpoints k of  lr_k · ∇ℓ(θ_k, z) · ∇ℓ(θ_k, z'):
positive when a gradient step on z lowers the test loss (a *proponent*: it taught the model this output), negative
for an *opponent*. Here z' is one output token (its loss is -log p(y_t), so proponents raise its log-probability),
z a training pair with the loss training used (token cross-entropy with the run's label smoothing, summed over its
tokens), and the checkpoints are the end-of-epoch snapshots of ``train.tracin_snapshots`` with their mean learning
rates. Adam's preconditioning is not in the formula (TracIn's first-order view of a training step).

The gradients are those of the output layer (TracIn's "last layer" variant, the one the paper and Captum's
``TracInCPFast`` make interactive). Why not Captum's fast classes themselves: they assume one output row per
example, so an example's last-layer gradient is one outer product; a sentence pair's is a *sum* over its target
tokens, Σ_t (p_t − q_t) h_tᵀ, which those classes cannot express (Captum's exact ``TracInCP`` handles any loss,
and the tests check this module against it). So a query runs in two stages:

1. **Retrieve** with an index computed once per model (``precompute``): per training token and snapshot, its
   softmax's ``TOP`` largest entries and its output-layer input in the ``RANK`` principal directions of those
   inputs. A pair's score is Σ_t ((p_t − q_t)·a') (h_t·h'), and both factors are nearly exact from these (the
   softmax mass outside its top entries and the inputs' variance outside the principal directions are small).
   A random projection of both factors (the Kronecker-structured sketch of Captum's ``TracInCPFastRandProj``) was
   tried first and failed here: most pairs' gradients are nearly orthogonal to a test token's, so the sketch's
   error, which scales with the gradients' norms, swamped the scores (Spearman ≈ 0 with the exact ones at k = 32).
2. **Re-rank exactly**: the ``candidates`` best and worst pairs are run through every snapshot again and scored
   with the full vocabulary and the full inputs; the scores shown are these exact last-layer scores.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from models.folder import TRACIN_DIR, TRACIN_FILE
from models.threads import refresh, under_policy
from provenance.data import NoTrainingData, TrainingSet, model_folder, training_config, training_set

CANDIDATES = 100  # pairs re-ranked exactly at each end (proponents, opponents)
BATCH = 128


@dataclass(frozen=True)
class Snapshot:
    step: int
    lr: float
    weights: Path  # a model folder (config.json + model.safetensors)
    stamp: int = 0  # the weights file's modification time: a retrained snapshot is a different one


def snapshots(lm_or_folder: Any) -> list[Snapshot]:
    """The TracIn snapshots of a Lantern model (``NoTrainingData`` when it has none)."""
    training_config(lm_or_folder)
    folder = model_folder(lm_or_folder)
    index = folder / TRACIN_DIR / TRACIN_FILE
    if not index.is_file():
        raise NoTrainingData(
            f"{folder.name} has no TracIn snapshots (train with --set train.tracin_snapshots=3, or continue "
            f"training from it with --set train.init_from={folder}): exact evidence works, influence does not"
        )
    return [
        Snapshot(
            int(s["step"]),
            float(s["lr"]),
            (folder / s["weights"]).resolve(),
            (folder / s["weights"] / "model.safetensors").stat().st_mtime_ns,
        )
        for s in json.loads(index.read_text(encoding="utf-8"))
    ]


@functools.lru_cache(maxsize=8)
def load_snapshot(snap: Snapshot) -> nn.Module:
    """The model at a snapshot, frozen (kept: queries reuse it; nothing may change it)."""
    from transformers import AutoModelForSeq2SeqLM

    import models.lstm_attention  # noqa: F401  (registers the LSTM with the Auto classes)

    model = AutoModelForSeq2SeqLM.from_pretrained(snap.weights, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def output_layer(model: nn.Module) -> tuple[nn.Module, torch.Tensor, torch.Tensor | None]:
    """(the module computing the logits, its weight, its trainable bias or None) of a Lantern seq2seq model."""
    decoder = model.get_decoder()
    if hasattr(decoder, "project"):  # Lantern's LSTM: tied to the target embeddings, with a bias
        return decoder.project, decoder.embed_tokens.weight, decoder.output_bias
    head = model.get_output_embeddings()
    if head is None:
        raise NoTrainingData(f"{type(model).__name__} has no output layer Lantern knows how to read")
    bias = head.bias if isinstance(getattr(head, "bias", None), nn.Parameter) else None
    return head, head.weight, bias  # Marian's final_logits_bias is a buffer: not trained


def _features(
    model: nn.Module, src: Sequence[Sequence[int]], tgt: Sequence[Sequence[int]], pad: int
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Teacher-forced pass over pairs: per pair, the output layer's inputs h [T, d] and logits [T, V]."""
    layer, _, _ = output_layer(model)
    captured: list[torch.Tensor] = []
    hook = layer.register_forward_pre_hook(lambda _m, args: captured.append(args[0]))
    start = model.config.decoder_start_token_id
    try:
        b = len(src)
        s_len, t_len = max(len(s) for s in src), max(len(t) for t in tgt)
        input_ids = torch.full((b, s_len), pad, dtype=torch.long)
        mask = torch.zeros((b, s_len), dtype=torch.long)
        dec = torch.full((b, t_len), pad, dtype=torch.long)
        for i, (s, t) in enumerate(zip(src, tgt, strict=True)):
            input_ids[i, : len(s)], mask[i, : len(s)] = torch.tensor(s), 1
            dec[i, : len(t)] = torch.tensor([start, *t[:-1]])
        with torch.no_grad():
            logits = model(input_ids=input_ids, attention_mask=mask, decoder_input_ids=dec).logits
    finally:
        hook.remove()
    h = captured[-1]
    return [h[i, : len(t)] for i, t in enumerate(tgt)], [logits[i, : len(t)] for i, t in enumerate(tgt)]


def _with_bias(h: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """The output layer's input with a constant 1 appended when the layer has a trained bias (its gradient)."""
    return torch.cat([h, torch.ones_like(h[..., :1])], -1) if bias is not None else h


def _errors(logits: torch.Tensor, labels: Sequence[int], smoothing: float) -> torch.Tensor:
    """d loss / d logits per token: softmax − target distribution (label smoothing as in training)."""
    p = logits.float().softmax(-1)
    q = torch.full_like(p, smoothing / p.shape[-1])
    q[torch.arange(len(labels)), torch.as_tensor(list(labels))] += 1.0 - smoothing
    return p - q


# --- the factored index ------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Index:
    """Per snapshot and training token, what the retrieval stage needs to estimate (p − q)·a' and h·h':
    the ``top`` largest probabilities of the token's softmax (ids ``top_ids``, values ``top_p``) and its output-layer
    input in a ``basis`` of the principal directions of the training inputs (``h``). ``labels``: the token ids;
    ``starts``: where each pair's tokens begin."""

    steps: tuple[int, ...]
    lrs: tuple[float, ...]
    top_ids: list[np.ndarray]  # int32 [N, m]
    top_p: list[np.ndarray]  # float16 [N, m]
    h: list[np.ndarray]  # float16 [N, r]
    basis: list[np.ndarray]  # float32 [d(+1), r]
    labels: np.ndarray  # int32 [N]
    starts: np.ndarray  # int64 [n_pairs + 1]
    smoothing: float
    seconds: float = 0.0

    @property
    def nbytes(self) -> int:
        return sum(x.nbytes for part in (self.top_ids, self.top_p, self.h) for x in part)


def _training_ids(lm: Any, ts: TrainingSet) -> tuple[list[list[int]], list[list[int]]]:
    """The pairs as training read them (special tokens included, ``training.batching.encode_pairs``)."""
    return lm.src_tokenizer(ts.src).input_ids, lm.tgt_tokenizer(ts.tgt).input_ids


def _cache_path(lm: Any, snaps: list[Snapshot], top: int, rank: int) -> Path:
    from common.paths import cache_root

    h = hashlib.sha256(f"{top}:{rank}".encode())
    for s in snaps:
        st = (s.weights / "model.safetensors").stat()
        h.update(f"{s.step}:{s.lr}:{st.st_size}:{st.st_mtime_ns}".encode())
    cfg = training_config(lm)
    h.update(json.dumps(cfg["data"], sort_keys=True).encode())
    return cache_root() / "provenance" / f"{cfg.get('name', 'model')}-tracin-{h.hexdigest()[:16]}.npz"


_LOCK = threading.Lock()
_MEMO: dict[str, Index] = {}
TOP = 8  # softmax entries kept per training token
RANK = 48  # principal directions kept of the output layer's inputs


def _batches(src: list[list[int]], tgt: list[list[int]]) -> list[np.ndarray]:
    order = np.argsort([len(s) + len(t) for s, t in zip(src, tgt, strict=True)], kind="stable")
    return [order[b : b + BATCH] for b in range(0, len(order), BATCH)]


def _basis(model: nn.Module, src, tgt, batches, pad: int, rank: int) -> np.ndarray:
    """The top ``rank`` right singular vectors of the output layer's inputs over a sample of training tokens."""
    _, _, bias = output_layer(model)
    rng = np.random.default_rng(0)
    sample = rng.choice(len(batches), size=min(len(batches), 16), replace=False)
    hs = []
    for bi in sample:
        idx = batches[bi]
        h, _ = _features(model, [src[i] for i in idx], [tgt[i] for i in idx], pad)
        hs += [_with_bias(x, bias) for x in h]
    _, _, vt = torch.linalg.svd(torch.cat(hs).double(), full_matrices=False)
    return vt[:rank].T.float().numpy()


@under_policy
def precompute(
    lm: Any,
    top: int = TOP,
    rank: int = RANK,
    progress: Callable[[float, str], None] | None = None,
    save: bool = True,
) -> Index:
    """The retrieval index of every snapshot (once per model: kept in memory and in ``cache/provenance``)."""
    snaps = snapshots(lm)
    path = _cache_path(lm, snaps, top, rank)
    with _LOCK:
        if str(path) in _MEMO:
            return _MEMO[str(path)]
        if path.exists():
            z = np.load(path)
            n = len(snaps)
            proj = Index(
                tuple(s.step for s in snaps), tuple(s.lr for s in snaps), [z[f"ids{i}"] for i in range(n)],
                [z[f"p{i}"] for i in range(n)], [z[f"h{i}"] for i in range(n)], [z[f"basis{i}"] for i in range(n)],
                z["labels"], z["starts"], float(z["smoothing"]), float(z["seconds"]),
            )  # fmt: skip
            _MEMO[str(path)] = proj
            return proj
        t0 = time.perf_counter()
        ts = training_set(lm)
        smoothing = float(training_config(lm)["train"].get("label_smoothing", 0.0))
        src, tgt = _training_ids(lm, ts)
        lengths = np.fromiter((len(t) for t in tgt), dtype=np.int64, count=len(tgt))
        starts = np.zeros(len(tgt) + 1, dtype=np.int64)
        np.cumsum(lengths, out=starts[1:])
        labels = np.fromiter((x for t in tgt for x in t), dtype=np.int32, count=int(starts[-1]))
        batches = _batches(src, tgt)
        pad = lm.src_tokenizer.pad_token_id or 0
        parts: dict[str, list[np.ndarray]] = {"ids": [], "p": [], "h": [], "basis": []}
        n = int(starts[-1])
        for si, snap in enumerate(snaps):
            model = load_snapshot(snap)
            _, _, bias = output_layer(model)
            basis = _basis(model, src, tgt, batches, pad, rank)
            ids_out = np.zeros((n, top), dtype=np.int32)
            p_out = np.zeros((n, top), dtype=np.float16)
            h_out = np.zeros((n, basis.shape[1]), dtype=np.float16)
            basis_t = torch.from_numpy(basis)
            for bi, idx in enumerate(batches):
                hs, logits = _features(model, [src[i] for i in idx], [tgt[i] for i in idx], pad)
                rows = np.concatenate([np.arange(starts[i], starts[i + 1]) for i in idx])
                probs = torch.cat(logits).float().softmax(-1)
                val, ind = probs.topk(top, -1)
                ids_out[rows], p_out[rows] = ind.numpy(), val.numpy()
                h_out[rows] = (_with_bias(torch.cat(hs), bias) @ basis_t).numpy()
                refresh()  # the thread count follows the machine's load between batches
                if progress and (bi % 20 == 0 or bi == len(batches) - 1):
                    done = (si + (bi + 1) / len(batches)) / len(snaps)
                    progress(done, f"snapshot {si + 1}/{len(snaps)} (step {snap.step})")
            for key, value in zip(("ids", "p", "h", "basis"), (ids_out, p_out, h_out, basis), strict=True):
                parts[key].append(value)
        proj = Index(
            tuple(s.step for s in snaps), tuple(s.lr for s in snaps), parts["ids"], parts["p"], parts["h"],
            parts["basis"], labels, starts, smoothing, time.perf_counter() - t0,
        )  # fmt: skip
        if save:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp.npz")
            arrays = {f"{k}{i}": v for k, vs in parts.items() for i, v in enumerate(vs)}
            np.savez(tmp, labels=labels, starts=starts, smoothing=smoothing, seconds=proj.seconds, **arrays)
            tmp.replace(path)
        _MEMO[str(path)] = proj
        return proj


def is_precomputed(lm: Any, top: int = TOP, rank: int = RANK) -> bool:
    path = _cache_path(lm, snapshots(lm), top, rank)
    return str(path) in _MEMO or path.exists()


# --- queries ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Influence:
    """Proponents and opponents of one output token among the training pairs, with exact last-layer scores.

    ``table``: one row per re-ranked pair (``pair``, ``source``, ``target``, ``score`` = Σ_k lr_k g_k·g'_k,
    ``estimate`` = the retrieval stage's, ``kind`` proponent/opponent), best proponents first.
    ``agreement``: Spearman correlation of the estimates and the exact scores over the re-ranked pairs.
    """

    token: str
    position: int
    source: str
    output: tuple[str, ...]
    table: pd.DataFrame
    estimates: np.ndarray  # every training pair's retrieval estimate
    agreement: float
    steps: tuple[int, ...]
    seconds: float = 0.0

    def proponents(self, n: int = 10) -> pd.DataFrame:
        return self.table[self.table.score > 0].head(n)

    def opponents(self, n: int = 10) -> pd.DataFrame:
        return self.table[self.table.score < 0].sort_values("score").head(n)

    def _repr_html_(self) -> str:
        return (
            f"<p>TracIn of {self.token!r} (output position {self.position}) over steps {self.steps}</p>"
            + "<h4>Proponents</h4>"
            + self.proponents().to_html(index=False)
            + "<h4>Opponents</h4>"
            + self.opponents().to_html(index=False)
        )


def _test_vectors(model: nn.Module, src_ids: list[int], tgt_ids: list[int], t: int, pad: int):
    """The test token's exact error a' = p − e_y (its loss is −log p(y_t)) and output-layer input h' (+1)."""
    _, _, bias = output_layer(model)
    hs, logits = _features(model, [src_ids], [tgt_ids], pad)
    a = logits[0][t].float().softmax(-1)
    a[tgt_ids[t]] -= 1.0
    return a, _with_bias(hs[0][t], bias)


def exact_scores(
    lm: Any, pairs: Sequence[int], src_ids: list[int], tgt_ids: list[int], t: int, models: list[nn.Module] | None = None
) -> np.ndarray:
    """TracIn last-layer scores of training ``pairs`` for output token ``t``, with the full softmax and inputs:
    for each snapshot, lr × Σ_tokens ((p − q)·(p' − e')) (h·h'), summed over snapshots."""
    snaps = snapshots(lm)
    models = models or [load_snapshot(s) for s in snaps]
    ts = training_set(lm)
    smoothing = float(training_config(lm)["train"].get("label_smoothing", 0.0))
    sub = [ts.src[i] for i in pairs], [ts.tgt[i] for i in pairs]
    src = lm.src_tokenizer(sub[0]).input_ids if pairs else []
    tgt = lm.tgt_tokenizer(sub[1]).input_ids if pairs else []
    pad = lm.src_tokenizer.pad_token_id or 0
    scores = np.zeros(len(pairs))
    for snap, model in zip(snaps, models, strict=True):
        _, _, bias = output_layer(model)
        a_t, h_t = _test_vectors(model, src_ids, tgt_ids, t, pad)
        for b0 in range(0, len(pairs), BATCH):
            hs, logits = _features(model, src[b0 : b0 + BATCH], tgt[b0 : b0 + BATCH], pad)
            for j, (h, lg) in enumerate(zip(hs, logits, strict=True)):
                e = _errors(lg, tgt[b0 + j], smoothing)
                scores[b0 + j] += snap.lr * float(((e @ a_t) * (_with_bias(h, bias) @ h_t)).sum())
    return scores


def _segment_sum(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    out = np.add.reduceat(values, starts[:-1]) if len(values) else np.zeros(len(starts) - 1)
    out[np.diff(starts) == 0] = 0.0
    return out


def estimated_scores(proj: Index, tests: list[tuple[torch.Tensor, torch.Tensor]]) -> np.ndarray:
    """Every training pair's estimated TracIn score for one test token (its exact a' = p' − e', h' per snapshot).

    Per training token, (p − q)·a' = p·p' − p[y'] − (1−ε) p'[y] + (1−ε)[y = y'] (q: the smoothed target, its ε/V
    terms cancel), with p read from its top entries; h·h' in the principal basis.
    """
    total = np.zeros(len(proj.starts) - 1)
    eps = proj.smoothing
    for lr, ids, p, h, basis, (a_t, h_t) in zip(
        proj.lrs, proj.top_ids, proj.top_p, proj.h, proj.basis, tests, strict=True
    ):
        p_test = (a_t.clone()).numpy().astype(np.float64)
        y_test = int(np.argmin(p_test))  # a' = p' − e': the one negative entry
        p_test[y_test] += 1.0
        p32 = p.astype(np.float32)
        ea = (
            (p32 * p_test[ids]).sum(-1)
            - (p32 * (ids == y_test)).sum(-1)
            - (1 - eps) * p_test[proj.labels]
            + (1 - eps) * (proj.labels == y_test)
        )
        hh = h.astype(np.float32) @ (h_t.numpy() @ basis)
        total += lr * _segment_sum(ea * hh, proj.starts)
    return total


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 3:
        return float("nan")
    rx, ry = pd.Series(x).rank().to_numpy(), pd.Series(y).rank().to_numpy()
    return float(np.corrcoef(rx, ry)[0, 1])


@under_policy
def influence(
    lm: Any,
    text_or_translation: Any,
    token: str | int,
    candidates: int = CANDIDATES,
    output: Sequence[int] | None = None,
) -> Influence:
    """TracIn proponents and opponents of one output token.

    ``text_or_translation``: a source text (translated greedily first) or a ``Translation``; ``token``: the output
    position (int) or the token's text (its first occurrence, e.g. ``"▁Tokyo"`` or ``"Tokyo"``); ``output``: score
    this output (target ids) instead of the model's own. Raises ``NoTrainingData`` for a model without snapshots.
    """
    t0 = time.perf_counter()
    proj = precompute(lm)
    ts = training_set(lm)
    if isinstance(text_or_translation, str):
        from explain.generation import translate

        tr = translate(lm, text_or_translation)
    else:
        tr = text_or_translation
    src_ids = list(tr.src_ids)
    tgt_ids = list(output) if output is not None else list(tr.tgt_ids)
    tokens = lm.tgt_tokenizer.convert_ids_to_tokens(tgt_ids)
    t = _position(tokens, token)
    snaps = snapshots(lm)
    models = [load_snapshot(s) for s in snaps]
    pad = lm.src_tokenizer.pad_token_id or 0
    tests = [_test_vectors(m, src_ids, tgt_ids, t, pad) for m in models]
    approx = estimated_scores(proj, tests)
    order = np.argsort(-approx, kind="stable")
    chosen = np.unique(np.concatenate([order[:candidates], order[::-1][:candidates]]))
    exact = exact_scores(lm, chosen.tolist(), src_ids, tgt_ids, t, models)
    table = pd.DataFrame(
        {
            "pair": chosen,
            "source": [ts.src[i] for i in chosen],
            "target": [ts.tgt[i] for i in chosen],
            "score": exact,
            "estimate": approx[chosen],
        }
    )
    table["kind"] = np.where(table.score > 0, "proponent", "opponent")
    table = table.sort_values("score", ascending=False, ignore_index=True)
    return Influence(
        token=tokens[t],
        position=t,
        source=tr.src_text if hasattr(tr, "src_text") else "",
        output=tuple(tokens),
        table=table,
        estimates=approx,
        agreement=_spearman(approx[chosen], exact),
        steps=proj.steps,
        seconds=time.perf_counter() - t0,
    )


def _position(tokens: list[str], token: str | int) -> int:
    if isinstance(token, int | np.integer):
        if not 0 <= int(token) < len(tokens):
            raise ValueError(f"output position {token} does not exist: the output has {len(tokens)} tokens")
        return int(token)
    for form in (token, f"▁{token}"):
        if form in tokens:
            return tokens.index(form)
    raise ValueError(f"{token!r} is not an output token; the output is {' '.join(tokens)}")


def self_influence(lm: Any, pairs: Sequence[int], token: int | None = None) -> pd.DataFrame:
    """Training pairs queried against themselves: each pair's rank among all training pairs by the retrieval scores
    (1 = its own top proponent; chance: half the pairs), queried with its whole loss (``token=None``: the sum over
    its target tokens, teacher-forced on its own reference) or with one of its tokens."""
    proj = precompute(lm)
    ts = training_set(lm)
    models = [load_snapshot(s) for s in snapshots(lm)]
    pad = lm.src_tokenizer.pad_token_id or 0
    rows = []
    for i in pairs:
        src = lm.src_tokenizer(ts.src[i]).input_ids
        tgt = lm.tgt_tokenizer(ts.tgt[i]).input_ids
        steps = range(len(tgt)) if token is None else [min(token, len(tgt) - 1)]
        scores = sum(estimated_scores(proj, [_test_vectors(m, src, tgt, t, pad) for m in models]) for t in steps)
        rows.append({"pair": int(i), "rank": int((scores > scores[i]).sum()) + 1, "n": len(scores)})
    return pd.DataFrame(rows)
