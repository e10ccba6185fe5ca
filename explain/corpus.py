"""Explain many sentences at once: the batched path of ``python -m explain.evaluate``.

The per-sentence API (``explain.attribution.attribute``, ``explain.attention.extract_attention``) runs one copy
of the input per (output step, path point), each cut to its step's prefix, and re-runs the encoder for every
copy. Over a corpus most of that work is shared, and this module shares it, for the same numbers (the tests
compare both paths to float tolerance):

- **One forward pass per path point, one backward pass per step.** Every step of a sentence reads the same
  interpolated (or noisy) input at a path point, so one forward pass scores all of them, and step t's gradient
  is a backward pass from the last hidden state with a cotangent at position t alone (the gradient of
  log p(y_t) with respect to that hidden state, taken for all steps at once through the position-wise output
  layer). The encoder runs once per path point instead of once per (step, point); the decoder runs in a few
  step groups, each cut to its group's last step (causal decoding: a step never reads later positions), so a
  backward pass still covers about the prefix its step reads.
- **Sentences together.** Copies of several sentences (sorted by length, right-padded, masked) go through one
  pass, so a single-point method (saliency, input × gradient) still fills a batch.
- **Shared copies.** Saliency and input × gradient read the same gradients at the input: computed once.
- **Attention maps** of a block of sentences come from one padded teacher-forced pass.

Encoder-decoder Transformers (Marian and Lantern's own, T5, BART-style) take this path; other models, and the
methods it does not cover (perturbations, DeepLIFT, Gradient SHAP, the context-mixing maps), run per sentence.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from common.text import clean_text
from explain.generation import describe_logits, force_translation
from explain.gradients import ig_path, smooth_path
from explain.objective import Objective
from explain.types import AttentionMaps, Translation
from models.adapter import LanternModel, SourceEncoding
from models.decoding import MAX_OUTPUT_TOKENS, check_length
from models.threads import under_policy

GRADIENT_METHODS = ("saliency", "input_x_gradient", "integrated_gradients", "smoothgrad")
ATTENTION_METHODS = ("attention", "rollout")
BATCHED = GRADIENT_METHODS + ATTENTION_METHODS
STEP_GROUP = 6  # decoder steps per decoder pass: shorter prefixes for early steps, few extra forward passes
MAX_COPIES = 64  # copies per batched pass: large enough to fill the matrix units, small enough for the caches
PADDING = 0.5  # a pass takes copies of other lengths while padding adds at most this share of its work (fewer,
# larger passes beat less padding: each backward pass costs the same bookkeeping whatever its size)
ACTIVATION_FACTOR = 3.0  # memory per copy: the encoder's and every step group's graph, plus one backward pass


@dataclass(frozen=True)
class Explained:
    """What ``evaluate`` reads from one method's result: the same fields as ``explain.types.Attribution``."""

    scores: np.ndarray  # [T, S]
    prefix_scores: np.ndarray | None  # [T, P], lower-triangular
    delta: np.ndarray | None = None  # [T] completeness gap (integrated gradients)


def supported(lm: LanternModel) -> bool:
    """Whether ``lm`` can take the batched path: an encoder-decoder whose forward takes ``encoder_outputs`` and
    whose output layer is a linear map applied position by position (not an LSTM)."""
    model = lm.model
    if not lm.is_seq2seq() or any(isinstance(m, nn.RNNBase) for m in model.modules()):
        return False
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    params = inspect.signature(model.forward).parameters
    return isinstance(head, nn.Linear) and "encoder_outputs" in params and hasattr(model, "get_encoder")


def batched_methods(lm: LanternModel, methods: list[str]) -> list[str]:
    """The methods of ``methods`` this module runs for ``lm`` (none where the model is not supported)."""
    return [m for m in methods if m in BATCHED] if supported(lm) else []


def objective(lm: LanternModel, tr: Translation) -> Objective:
    """The objective ``attribute`` builds for a translation: log-probabilities, padding baselines."""
    dev = lm.device
    return Objective(
        lm,
        torch.tensor(tr.src_ids, device=dev),
        torch.tensor(lm.decoder_inputs(list(tr.tgt_ids)), device=dev, dtype=torch.long),
        torch.tensor(tr.tgt_ids, device=dev),
    )


# --- the gradient engine ------------------------------------------------------------------------------------------


@dataclass
class _Job:
    """The copies of one sentence under one path, and where their weighted gradients go."""

    sentence: int  # index into the batch's objectives
    alphas: torch.Tensor  # [K]
    weights: torch.Tensor  # [K]
    noise: tuple[torch.Tensor, torch.Tensor] | None  # [K, S, d], [K, P, d]
    sinks: list[Callable[[int, int, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], None]]
    # each sink gets (copy's point k, step t, g_src [S, d], g_dec [P, d], x_src, x_dec): the copy's gradient at
    # step t and its (un-interpolated) input


@dataclass
class _Sums:
    """Per sentence: Σ_k w_k g_k (the vector, for saliency and SmoothGrad) or Σ_k w_k Σ_d m_k g_k (a sum)."""

    src: torch.Tensor
    dec: torch.Tensor


@contextmanager
def _replaced(module: nn.Module, value: torch.Tensor) -> Iterator[None]:
    """Make ``module`` (an embedding) output ``value`` for this thread's calls while the block runs."""
    owner = threading.get_ident()
    handle = module.register_forward_hook(lambda m, i, o: value if threading.get_ident() == owner else o)
    try:
        yield
    finally:
        handle.remove()


@contextmanager
def _head_input(lm: LanternModel, box: dict[str, torch.Tensor]) -> Iterator[None]:
    """Record what the output layer reads (the last hidden states) in ``box["h"]``."""
    owner = threading.get_ident()

    def grab(m: nn.Module, args: tuple, out: torch.Tensor) -> None:
        if threading.get_ident() == owner:
            box["h"] = args[0]

    handle = lm.model.get_output_embeddings().register_forward_hook(grab)
    try:
        yield
    finally:
        handle.remove()


def _copies_per_pass(objs: list[Objective]) -> int:
    """Copies of the longest sentence one pass may hold within the attribution memory budget."""
    longest = max(objs, key=lambda o: len(o.src_ids) + len(o.dec_ids))
    per_copy = longest.copies_per_chunk(len(longest.dec_ids), backward=True)  # measured on the model, full prefix
    return max(1, min(MAX_COPIES, int(per_copy / ACTIVATION_FACTOR)))


def _run_jobs(lm: LanternModel, objs: list[Objective], jobs: list[_Job]) -> None:
    """Every (job, point) copy through batched passes; each step's gradient goes to the job's sinks."""
    copies = [(j, k) for j, job in enumerate(jobs) for k in range(len(job.alphas))]
    size = [(len(objs[job.sentence].src_ids), len(objs[job.sentence].dec_ids)) for job in jobs]
    copies.sort(key=lambda c: (size[c[0]][1], size[c[0]][0]))
    per_pass = _copies_per_pass([objs[job.sentence] for job in jobs]) if jobs else 1
    chunk: list[tuple[int, int]] = []
    for copy in copies:
        if chunk and (len(chunk) >= per_pass or _padding([size[j] for j, _ in [*chunk, copy]]) > PADDING):
            _run_chunk(lm, objs, jobs, chunk)
            chunk = []
        chunk.append(copy)
    if chunk:
        _run_chunk(lm, objs, jobs, chunk)


def _padding(sizes: list[tuple[int, int]]) -> float:
    """The share of a pass's work that padding would add: each row's backward passes cost about (its steps) ×
    (source + half its prefix) when it is alone, and (longest steps) × (longest source + half the longest prefix)
    padded (an over-estimate: the passes drop finished rows)."""
    s_max, t_max = max(s for s, _ in sizes), max(t for _, t in sizes)
    alone = sum(t * (s + t / 2) for s, t in sizes)
    return len(sizes) * t_max * (s_max + t_max / 2) / alone - 1


def _run_chunk(lm: LanternModel, objs: list[Objective], jobs: list[_Job], chunk: list[tuple[int, int]]) -> None:
    n = len(chunk)
    members = [objs[jobs[j].sentence] for j, _ in chunk]
    s_max, p_max = max(len(o.src_ids) for o in members), max(len(o.dec_ids) for o in members)
    d = members[0].src_embeds.shape[1]
    dev, dtype = members[0].src_embeds.device, members[0].src_embeds.dtype
    x_src, x_dec = torch.zeros(n, s_max, d, device=dev, dtype=dtype), torch.zeros(n, p_max, d, device=dev, dtype=dtype)
    m_src, m_dec = torch.zeros_like(x_src), torch.zeros_like(x_dec)  # the input before interpolation
    src_ids = torch.zeros(n, s_max, dtype=torch.long, device=dev)
    mask = torch.zeros(n, s_max, dtype=torch.long, device=dev)
    dec_ids = torch.zeros(n, p_max, dtype=torch.long, device=dev)
    tgt_ids = torch.zeros(n, p_max, dtype=torch.long, device=dev)
    for c, (j, k) in enumerate(chunk):
        job, o = jobs[j], members[c]
        s, p = len(o.src_ids), len(o.dec_ids)
        xs, xd = o.src_embeds, o.dec_embeds
        if job.noise is not None:  # SmoothGrad: the fixed noise of the copy's sample
            xs, xd = xs + job.noise[0][k].to(xs), xd + job.noise[1][k].to(xd)
        a = job.alphas[k].to(xs)
        x_src[c, :s] = o.src_base + a * (xs - o.src_base)  # as ``explain.gradients``: base + α (x − base)
        x_dec[c, :p] = o.dec_base + a * (xd - o.dec_base)
        m_src[c, :s], m_dec[c, :p] = xs, xd
        src_ids[c, :s], mask[c, :s], dec_ids[c, :p], tgt_ids[c, :p] = o.src_ids, 1, o.dec_ids, o.tgt_ids
    n_steps = torch.tensor([len(o.tgt_ids) for o in members], device=dev)
    n_src = torch.tensor([len(o.src_ids) for o in members], device=dev)
    model = lm.model
    enc_rows: torch.Tensor | None = None  # the rows the current encoder pass holds, padded to s_len tokens
    s_len = 0
    with torch.enable_grad():
        for g0 in range(0, p_max, STEP_GROUP):
            # Only the copies whose output reaches this group take part: a short sentence beside a long one does not
            # ride along through the long one's later steps. The encoder runs again when a quarter of its work (rows
            # × padded length) is no longer needed (its graph serves the groups in between).
            rows = (n_steps > g0).nonzero()[:, 0]
            if enc_rows is None or len(rows) * int(n_src[rows].max()) <= 0.75 * len(enc_rows) * s_len:
                enc_rows, s_len = rows, int(n_src[rows].max())
                xs = x_src[rows, :s_len].detach().requires_grad_(True)
                with lm.lock, _replaced(lm.source_embedding(), xs):
                    encoded = model.get_encoder()(
                        input_ids=src_ids[rows, :s_len], attention_mask=mask[rows, :s_len], return_dict=True
                    )
            inside = torch.searchsorted(enc_rows, rows)  # these rows' places in the encoder pass
            prefix = min(int(n_steps[rows].max()), g0 + STEP_GROUP)
            xd = x_dec[rows, :prefix].detach().requires_grad_(True)
            box: dict[str, torch.Tensor] = {}
            with lm.lock, _replaced(lm.target_embedding(), xd), _head_input(lm, box):
                logits = model(
                    encoder_outputs=(encoded.last_hidden_state[inside],),
                    attention_mask=mask[rows, :s_len],
                    decoder_input_ids=dec_ids[rows, :prefix],
                ).logits
            hidden = box["h"]  # [rows, prefix, d]
            logp = logits[:, g0:prefix].float().log_softmax(-1)
            scores = logp.gather(-1, tgt_ids[rows, g0:prefix, None])[..., 0]
            live = torch.arange(g0, prefix, device=dev)[None] < n_steps[rows, None]  # [rows, group]
            (g_hidden,) = torch.autograd.grad(scores.masked_fill(~live, 0).sum(), hidden, retain_graph=True)
            steps = range(g0, prefix)
            cotangent = torch.zeros(len(steps), *hidden.shape, dtype=hidden.dtype, device=dev)
            for i, t in enumerate(steps):
                cotangent[i, :, t] = g_hidden[:, t]
            # one backward pass per step, batched over the steps (vmap); the graph is kept: the encoder's part
            # serves the next groups too (freed when the encoder runs again)
            all_src, all_dec = torch.autograd.grad(
                hidden, (xs, xd), cotangent, retain_graph=True, is_grads_batched=True
            )
            for i, t in enumerate(steps):
                g_src, g_dec = all_src[i], all_dec[i]
                for r in live[:, t - g0].nonzero()[:, 0].tolist():
                    c = int(rows[r])
                    j, k = chunk[c]
                    o = members[c]
                    s, q = len(o.src_ids), min(len(o.dec_ids), prefix)  # the prefix this group reads
                    e = int(inside[r])
                    for sink in jobs[j].sinks:
                        sink(k, t, g_src[e, :s], g_dec[r, :q], m_src[c, :s], m_dec[c, :q])


def _sums(o: Objective, vector: bool) -> _Sums:
    t, s, p, d = len(o.tgt_ids), len(o.src_ids), len(o.dec_ids), o.src_embeds.shape[1]
    shape_src, shape_dec = ((t, s, d), (t, p, d)) if vector else ((t, s), (t, p))
    return _Sums(torch.zeros(shape_src), torch.zeros(shape_dec))


def _vector_sink(sums: _Sums, weights: torch.Tensor) -> Callable:
    def sink(k: int, t: int, gs: torch.Tensor, gd: torch.Tensor, xs: torch.Tensor, xd: torch.Tensor) -> None:
        sums.src[t] += weights[k] * gs
        sums.dec[t, : len(gd)] += weights[k] * gd  # later decoder inputs: 0 (causal decoding)

    return sink


def _product_sink(sums: _Sums, weights: torch.Tensor, base: tuple[torch.Tensor, torch.Tensor] | None) -> Callable:
    """Σ_d m · g with m the input (``base`` None: input × gradient) or the input minus the baseline (IG)."""

    def sink(k: int, t: int, gs: torch.Tensor, gd: torch.Tensor, xs: torch.Tensor, xd: torch.Tensor) -> None:
        q = len(gd)
        ms, md = (xs, xd) if base is None else (xs - base[0], xd - base[1][:q])
        sums.src[t] += ((gs * ms) * weights[k]).sum(-1)
        sums.dec[t, :q] += ((gd * md) * weights[k]).sum(-1)

    return sink


@under_policy
def gradient_scores(
    lm: LanternModel,
    objs: list[Objective],
    methods: list[str],
    n_steps: int = 32,
    n_samples: int = 25,
    noise_level: float = 0.15,
    seed: int = 0,
) -> list[dict[str, Explained]]:
    """Scores of the gradient ``methods`` (of ``GRADIENT_METHODS``) for every objective, all explained steps, with
    ``attribute``'s defaults otherwise (log-probability target, padding baseline, the prefix attributed)."""
    unknown = [m for m in methods if m not in GRADIENT_METHODS]
    if unknown:
        raise ValueError(f"no batched path for {', '.join(unknown)}")
    jobs: list[_Job] = []
    results: list[dict[str, tuple[str, _Sums]]] = [{} for _ in objs]
    for i, o in enumerate(objs):
        at_input = [m for m in methods if m in ("saliency", "input_x_gradient")]
        if at_input:  # one gradient at the input serves both
            sinks = []
            one = torch.ones(1)
            if "saliency" in methods:
                results[i]["saliency"] = ("l2", _sums(o, vector=True))
                sinks.append(_vector_sink(results[i]["saliency"][1], one))
            if "input_x_gradient" in methods:
                results[i]["input_x_gradient"] = ("sum", _sums(o, vector=False))
                sinks.append(_product_sink(results[i]["input_x_gradient"][1], one, None))
            jobs.append(_Job(i, torch.ones(1), one, None, sinks))
        if "integrated_gradients" in methods:
            path = ig_path(n_steps)
            results[i]["integrated_gradients"] = ("sum", _sums(o, vector=False))
            sink = _product_sink(results[i]["integrated_gradients"][1], path.weights.float(), (o.src_base, o.dec_base))
            jobs.append(_Job(i, path.alphas, path.weights, None, [sink]))
        if "smoothgrad" in methods:  # the generator as ``GradientMethod.run`` seeds it: the same noise
            path = smooth_path(n_samples, noise_level, o.src_embeds, o.dec_embeds, torch.Generator().manual_seed(seed))
            results[i]["smoothgrad"] = ("l2", _sums(o, vector=True))
            sink = _vector_sink(results[i]["smoothgrad"][1], path.weights.float())
            jobs.append(_Job(i, path.alphas, path.weights, path.noise, [sink]))
    _run_jobs(lm, objs, jobs)
    out: list[dict[str, Explained]] = []
    for o, by_method in zip(objs, results, strict=True):
        done: dict[str, Explained] = {}
        for method, (agg, sums) in by_method.items():
            src, dec = (sums.src.norm(dim=-1), sums.dec.norm(dim=-1)) if agg == "l2" else (sums.src, sums.dec)
            delta = _completeness_gap(o, src, dec) if method == "integrated_gradients" else None
            done[method] = Explained(
                src.numpy().astype(np.float32),
                torch.tril(dec, diagonal=0).numpy().astype(np.float32),
                None if delta is None else delta.numpy().astype(np.float32),
            )
        out.append(done)
    return out


@torch.no_grad()
def _completeness_gap(o: Objective, src: torch.Tensor, dec: torch.Tensor) -> torch.Tensor:
    """``explain.methods.completeness_gap`` from summed scores: Σ scores − (f(input) − f(baseline)) per step."""
    ends = o(torch.stack([o.src_embeds, o.src_base]), torch.stack([o.dec_embeds, o.dec_base]))
    return src.sum(1) + dec.sum(1) - (ends[0] - ends[1])


# --- forced outputs -----------------------------------------------------------------------------------------------


@under_policy
@torch.no_grad()
def force_translations(lm: LanternModel, pairs: list[tuple[str, str]], top_k: int = 5) -> list[Translation]:
    """``explain.generation.force_translation(lm, source, reference)`` for every pair, the teacher-forced passes
    batched (padded, up to ``MAX_COPIES`` sentences each). A pair the per-sentence function would refuse goes through
    it, so it raises the same error."""
    prepared: list[tuple[SourceEncoding, list[int]]] = []
    for text, output in pairs:
        cleaned = clean_text(check_length(output, "output to score"))
        tgt_ids = lm.output_ids(cleaned) if cleaned else []
        if not tgt_ids or len(tgt_ids) > MAX_OUTPUT_TOKENS:
            force_translation(lm, text, output)  # raises the per-sentence path's error
        prepared.append((lm.encode_source(text), tgt_ids))
    order = sorted(range(len(pairs)), key=lambda i: (len(prepared[i][1]), len(prepared[i][0].ids)))
    out: list[Translation | None] = [None] * len(pairs)
    pad, dec_pad = lm.src_tokenizer.pad_token_id or 0, lm.tgt_tokenizer.pad_token_id or 0
    dev = lm.device
    for start in range(0, len(order), MAX_COPIES):
        part = order[start : start + MAX_COPIES]
        decs = [lm.decoder_inputs(prepared[i][1]) for i in part]
        s_max, p_max = max(len(prepared[i][0].ids) for i in part), max(len(d) for d in decs)
        src = torch.full((len(part), s_max), pad, dtype=torch.long)
        mask = torch.zeros_like(src)
        dec = torch.full((len(part), p_max), dec_pad, dtype=torch.long)
        for r, (i, d) in enumerate(zip(part, decs, strict=True)):
            ids = prepared[i][0].ids
            src[r, : len(ids)], mask[r, : len(ids)], dec[r, : len(d)] = torch.tensor(ids), 1, torch.tensor(d)
        with lm.lock:
            logits = lm.model(input_ids=src.to(dev), attention_mask=mask.to(dev), decoder_input_ids=dec.to(dev)).logits
        for r, i in enumerate(part):
            enc, tgt_ids = prepared[i]
            out[i] = describe_logits(lm, enc, tgt_ids, logits[r, : len(tgt_ids)].float(), "forced", top_k)
    return out  # type: ignore[return-value]


# --- attention maps -----------------------------------------------------------------------------------------------


def _stack(layers: tuple[torch.Tensor, ...], row: int, q: int, k: int) -> np.ndarray:
    return torch.stack([a[row, :, :q, :k].float() for a in layers]).cpu().numpy()


@under_policy
@torch.no_grad()
def attention_maps(lm: LanternModel, translations: list[Translation]) -> list[AttentionMaps]:
    """``explain.attention.extract_attention`` for every translation, from padded passes of up to ``MAX_COPIES``."""
    order = sorted(range(len(translations)), key=lambda i: (len(translations[i].tgt_ids), len(translations[i].src_ids)))
    out: list[AttentionMaps | None] = [None] * len(translations)
    pad = lm.src_tokenizer.pad_token_id or 0
    dec_pad = lm.tgt_tokenizer.pad_token_id or 0
    for start in range(0, len(order), MAX_COPIES):
        part = [translations[i] for i in order[start : start + MAX_COPIES]]
        decs = [lm.decoder_inputs(list(tr.tgt_ids)) for tr in part]
        s_max, p_max = max(len(tr.src_ids) for tr in part), max(len(d) for d in decs)
        src = torch.full((len(part), s_max), pad, dtype=torch.long)
        mask = torch.zeros_like(src)
        dec = torch.full((len(part), p_max), dec_pad, dtype=torch.long)
        for r, (tr, d) in enumerate(zip(part, decs, strict=True)):
            src[r, : len(tr.src_ids)], mask[r, : len(tr.src_ids)] = torch.tensor(tr.src_ids), 1
            dec[r, : len(d)] = torch.tensor(d)
        dev = lm.device
        with lm.lock:
            res = lm.model(
                input_ids=src.to(dev),
                attention_mask=mask.to(dev),
                decoder_input_ids=dec.to(dev),
                output_attentions=True,
                return_dict=True,
            )
        for r, (tr, d) in enumerate(zip(part, decs, strict=True)):
            s, t = len(tr.src_ids), len(tr.tgt_ids)
            out[order[start + r]] = AttentionMaps(
                src_tokens=tr.src_tokens,
                tgt_tokens=tr.tgt_tokens,
                cross=_stack(res.cross_attentions, r, t, s),
                encoder_self=_stack(res.encoder_attentions, r, s, s),
                decoder_self=_stack(res.decoder_attentions, r, t, t),
                prefix_tokens=tuple(lm.target_tokens(d)),
                src_span=tr.src_span,
            )
    return out  # type: ignore[return-value]


@dataclass
class Block:
    """Everything the batched path computed for a block of sentences, by position in the block."""

    maps: list[AttentionMaps | None] = field(default_factory=list)
    scores: list[dict[str, Explained]] = field(default_factory=list)
