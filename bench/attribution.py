"""Attribution speed: Lantern vs Inseq vs a plain Captum loop, in one process, on the same work.

    make bench-attribution                       # builds venv-bench/ (Inseq) on first use
    venv-bench/bin/python -m bench.attribution --model lstm-zh-en --sentences 8

Same model, sentences (test-split sources of 15-20 tokens), fixed outputs (the model's greedy
translations), method and steps. All three explain the probability of each output token with
<unk> baselines (Inseq's conventions, so the numbers can be compared; Inseq's occlusion reports
absolute values, so those are compared in absolute value). Prints one table: seconds per sentence,
speed-ups, the largest differences from Inseq and from the Captum loop, and the model FLOPs of
Lantern's run (forward FLOPs of each pass it makes, × 3 with a backward pass) against the machine's
measured fp32 matmul peak.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import os
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch
from captum.attr import LayerFeatureAblation, LayerGradientXActivation, LayerIntegratedGradients
from torch.utils.flop_counter import FlopCounterMode

from explain.attribution import attribute, forward_passes
from explain.generation import translate
from explain.gradients import MIN_GROUP
from explain.types import Translation
from models.adapter import Decoding, LanternModel
from models.loading import load_model
from models.registry import get_spec
from training.corpora import load_multi30k, load_splits

INSEQ_METHODS = {
    "integrated_gradients": "integrated_gradients",
    "input_x_gradient": "input_x_gradient",
    "occlusion": "occlusion",
}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} with {torch.get_num_threads()} threads"


def matmul_peak(n: int = 2048, seconds: float = 2.0) -> float:
    """Measured fp32 matmul GFLOP/s on this machine (the practical peak)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        done += 1
    return 2 * n**3 * done / (time.perf_counter() - start) / 1e9


def pick_sentences(lm: LanternModel, n: int, lo: int = 15, hi: int = 20, max_new: int = 16) -> list[Translation]:
    """Test-split sources of lo..hi tokens and the model's greedy outputs.

    Decoder-only models get Multi30k test2016 English captions as plain prompts (no chat template,
    as Inseq takes them) and continue them for at most ``max_new`` tokens.
    """
    spec = get_spec(lm.name)
    if spec.task == "generate":
        texts = [p.src for p in load_multi30k("test")]
        decoding = Decoding(max_new_tokens=max_new)
    else:
        meta = json.loads((spec.path / "lantern.json").read_text())
        texts = [p.src for p in load_splits(meta["corpus"], spec.src_lang, spec.tgt_lang).test]
        decoding = Decoding()
    out = []
    for text in texts:
        if lo <= len(lm.encode_source(text).ids) <= hi:
            out.append(translate(lm, text, decoding))
        if len(out) == n:
            break
    return out


def lantern(lm: LanternModel, tr: Translation, method: str, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    a = attribute(lm, tr, method, target="prob", n_steps=n_steps, baseline="unk")
    return a.scores, a.prefix_scores


def captum_loop(lm: LanternModel, tr: Translation, method: str, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """One Captum call per output token, as its documentation shows for encoder-decoders."""
    if not lm.is_seq2seq():
        return captum_loop_causal(lm, tr, method, n_steps)
    start = lm.model.config.decoder_start_token_id
    src = torch.tensor([tr.src_ids])
    dec = torch.tensor([[start, *tr.tgt_ids[:-1]]])
    unk_src = torch.full_like(src, lm.src_tokenizer.unk_token_id)
    unk_dec = torch.full_like(dec, lm.tgt_tokenizer.unk_token_id)
    unk_dec[0, 0] = start
    layers = [lm.source_embedding(), lm.target_embedding()]
    rows_src, rows_dec = [], []
    for t, token in enumerate(tr.tgt_ids):

        def fwd(s: torch.Tensor, d: torch.Tensor, t: int = t, token: int = token) -> torch.Tensor:
            logits = lm.model(input_ids=s, attention_mask=torch.ones_like(s), decoder_input_ids=d).logits
            return logits.softmax(-1)[:, t, token]

        if method == "integrated_gradients":
            a, b = LayerIntegratedGradients(fwd, layers).attribute(
                (src, dec), baselines=(unk_src, unk_dec), n_steps=n_steps
            )
            a, b = a[0].sum(-1), b[0].sum(-1)
        elif method == "input_x_gradient":
            a, b = LayerGradientXActivation(fwd, layers).attribute((src, dec))
            a, b = a[0].sum(-1), b[0].sum(-1)
        else:
            with torch.no_grad():
                emb_s, emb_d = layers[0](unk_src), layers[1](unk_dec)
            a = LayerFeatureAblation(fwd, layers[0]).attribute(
                (src, dec), layer_baselines=emb_s, layer_mask=torch.arange(src.shape[1])[None, :, None]
            )[0, :, 0]
            b = LayerFeatureAblation(fwd, layers[1]).attribute(
                (src, dec), layer_baselines=emb_d, layer_mask=torch.arange(dec.shape[1])[None, :, None]
            )[0, :, 0]
        rows_src.append(a.detach())
        rows_dec.append(b.detach())
    return torch.stack(rows_src).numpy(), torch.tril(torch.stack(rows_dec)).numpy()


def captum_loop_causal(lm: LanternModel, tr: Translation, method: str, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The same for a decoder-only model: one embedding layer over prompt + generated prefix."""
    s = len(tr.src_ids)
    ids = torch.tensor([[*tr.src_ids, *tr.tgt_ids[:-1]]])
    unk = torch.full_like(ids, lm.src_tokenizer.unk_token_id)
    layer = lm.source_embedding()
    rows = []
    for t, token in enumerate(tr.tgt_ids):

        def fwd(x: torch.Tensor, t: int = t, token: int = token) -> torch.Tensor:
            return lm.model(input_ids=x, attention_mask=torch.ones_like(x)).logits.softmax(-1)[:, s - 1 + t, token]

        if method == "integrated_gradients":
            a = LayerIntegratedGradients(fwd, layer).attribute(ids, baselines=unk, n_steps=n_steps)[0].sum(-1)
        elif method == "input_x_gradient":
            a = LayerGradientXActivation(fwd, layer).attribute(ids)[0].sum(-1)
        else:
            with torch.no_grad():
                emb = layer(unk)
            a = LayerFeatureAblation(fwd, layer).attribute(
                ids, layer_baselines=emb, layer_mask=torch.arange(ids.shape[1])[None, :, None]
            )[0, :, 0]
        rows.append(a.detach())
    full = torch.stack(rows)
    return full[:, :s].numpy(), torch.tril(full[:, s:], diagonal=-1).numpy()


def inseq_runner(lm: LanternModel, method: str) -> Callable[[Translation, int], tuple[np.ndarray, np.ndarray]]:
    import inseq

    model = inseq.load_model(lm.model, INSEQ_METHODS[method], tokenizer=lm.src_tokenizer)

    def run(tr: Translation, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
        kw = {"n_steps": n_steps} if method == "integrated_gradients" else {}
        common = {"show_progress": False, "include_eos_baseline": True, "skip_special_tokens": False, **kw}
        if lm.is_seq2seq():
            out = model.attribute(input_texts=tr.src_text, generated_texts=tr.text, attribute_target=True, **common)
            seq = out.sequence_attributions[0]
            src, tgt = seq.source_attributions, seq.target_attributions
            if src.ndim == 3:
                src, tgt = src.sum(-1), tgt.sum(-1)
            return src.T.numpy(), np.nan_to_num(tgt.T.numpy())[:, :-1]
        # decoder-only: Inseq wants the prompt inside the forced output, and attributes to all positions
        prompt = lm.src_tokenizer.decode(list(tr.src_ids))
        whole = lm.src_tokenizer.decode([*tr.src_ids, *tr.tgt_ids])
        out = model.attribute(input_texts=prompt, generated_texts=whole, **common)
        tgt = out.sequence_attributions[0].target_attributions  # [prompt + generated, generated(, d)]
        if tgt.ndim == 3:
            tgt = tgt.sum(-1)
        full = np.nan_to_num(tgt.T.numpy())  # [T, S + T]
        s = len(tr.src_ids)
        return full[:, :s], full[:, s : s + len(tr.tgt_ids) - 1]

    return run


@contextmanager
def lstm_flops(model: torch.nn.Module, backward: bool = False) -> Iterator[list[float]]:
    """Count nn.LSTM FLOPs, which FlopCounterMode's table lacks: 2·4·h·(input + h) per token, direction
    and layer forward, three times that with the backward pass. Yields a one-element accumulator."""
    total = [0.0]

    def on_lstm(module: torch.nn.LSTM, inputs: tuple, output: object) -> None:
        x = inputs[0]
        tokens = int(x.data.shape[0]) if isinstance(x, torch.nn.utils.rnn.PackedSequence) else x.shape[0] * x.shape[1]
        dirs, h = 1 + module.bidirectional, module.hidden_size
        per_token = sum(2 * 4 * h * ((module.input_size if i == 0 else h * dirs) + h) for i in range(module.num_layers))
        total[0] += per_token * dirs * tokens * (3 if backward else 1)

    hooks = [m.register_forward_hook(on_lstm) for m in model.modules() if isinstance(m, torch.nn.LSTM)]
    try:
        yield total
    finally:
        for h in hooks:
            h.remove()


def forward_gflop(lm: LanternModel, tr: Translation, steps: int | None = None, one_logit: bool = False) -> float:
    """FLOPs of one teacher-forced forward pass over the first ``steps`` output tokens; with ``one_logit``,
    the vocabulary projection at a single position (as the gradient engine asks for with logits_to_keep)."""
    n = steps or len(tr.tgt_ids)
    dec = lm.decoder_inputs(list(tr.tgt_ids[:n]))
    keep = (
        {"logits_to_keep": 1}
        if one_logit and "logits_to_keep" in inspect.signature(lm.model.forward).parameters
        else {}
    )
    with lstm_flops(lm.model) as lstm, torch.no_grad(), FlopCounterMode(display=False) as counter:
        if lm.is_seq2seq():
            lm.model(input_ids=torch.tensor([tr.src_ids]), decoder_input_ids=torch.tensor([dec]), **keep)
        else:
            lm.model(input_ids=torch.tensor([[*tr.src_ids, *dec]]), **keep)
    return (counter.get_total_flops() + lstm[0]) / 1e9


def method_gflop(lm: LanternModel, tr: Translation, method: str, n_steps: int) -> float:
    """Model FLOPs of one Lantern attribution, following what the engine runs.

    Gradient methods: for each group of steps (``explain.gradients``), copies × forward FLOPs at the
    group's prefix length, × 3 for the backward pass. Perturbation methods: full-length passes.
    """
    t = len(tr.tgt_ids)
    k = {"integrated_gradients": n_steps, "input_x_gradient": 1, "saliency": 1}.get(method)
    if k is None:
        return forward_passes(method, len(tr.src_ids), t, n_steps) * forward_gflop(lm, tr)
    per_group = max(1, -(-MIN_GROUP // k))
    total = 0.0
    for g in range(0, t, per_group):
        members = range(g, min(t, g + per_group))
        total += len(members) * k * forward_gflop(lm, tr, steps=max(members) + 1, one_logit=True) * 3
    return total


def timed(fn: Callable[[], tuple[np.ndarray, np.ndarray]]) -> tuple[float, tuple[np.ndarray, np.ndarray]]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="lstm-zh-en")
    ap.add_argument("--sentences", type=int, default=8)
    ap.add_argument("--n-steps", type=int, default=32)
    ap.add_argument("--methods", default="integrated_gradients,input_x_gradient,occlusion")
    ap.add_argument("--max-new", type=int, default=16, help="tokens a decoder-only model continues a prompt with")
    args = ap.parse_args()
    torch.manual_seed(0)
    lm = load_model(args.model)
    if lm.chat:  # Inseq attributes plain prompts; compare like with like
        lm = dataclasses.replace(lm, chat=False)
    sentences = pick_sentences(lm, args.sentences, max_new=args.max_new)
    peak = matmul_peak()
    print(
        f"model {args.model}, {len(sentences)} test sentences of 15-20 source tokens "
        f"(outputs {min(len(t.tgt_ids) for t in sentences)}-{max(len(t.tgt_ids) for t in sentences)} tokens), "
        f"IG steps {args.n_steps}"
    )
    print(f"machine: {machine()}; measured fp32 matmul peak {peak:.0f} GFLOP/s\n")
    print(
        "| method | Lantern s/sentence | Inseq s/sentence | vs Inseq | Captum loop s/sentence | vs Captum "
        "| max abs diff vs Inseq | vs Captum | Lantern GFLOP/sentence | % of peak |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    # Inseq embeds target ids with the input embedding matrix: separate vocabularies are out of its reach.
    shared_vocab = lm.src_tokenizer is lm.tgt_tokenizer
    if not shared_vocab:
        print(
            "Inseq: n/a. It embeds target tokens with the model's input (source) embeddings, so a model with "
            "separate source and target vocabularies cannot be attributed by it.\n"
        )
    for method in args.methods.split(","):
        tools = {
            "lantern": lambda tr, m=method: lantern(lm, tr, m, args.n_steps),
            "captum": lambda tr, m=method: captum_loop(lm, tr, m, args.n_steps),
        }
        if shared_vocab:
            run_inseq = inseq_runner(lm, method)
            tools["inseq"] = lambda tr, run=run_inseq: run(tr, args.n_steps)
        for fn in tools.values():  # warm-up: first-call overheads are not the steady state
            fn(sentences[0])
        seconds = dict.fromkeys(tools, 0.0)
        diff = diff_captum = 0.0
        for tr in sentences:
            outs = {}
            for name, fn in tools.items():
                s, outs[name] = timed(lambda fn=fn, tr=tr: fn(tr))
                seconds[name] += s
            if "inseq" in outs:
                ours = [np.abs(x) for x in outs["lantern"]] if method == "occlusion" else outs["lantern"]
                diff = max(diff, *(float(np.abs(a - b).max()) for a, b in zip(ours, outs["inseq"], strict=True)))
            diff_captum = max(
                diff_captum, *(float(np.abs(a - b).max()) for a, b in zip(outs["lantern"], outs["captum"], strict=True))
            )
        gflop = sum(method_gflop(lm, tr, method, args.n_steps) for tr in sentences)
        n = len(sentences)
        lan, cap = seconds["lantern"] / n, seconds["captum"] / n
        inseq = f"{seconds['inseq'] / n:.3f} | {seconds['inseq'] / n / lan:.1f}×" if "inseq" in seconds else "n/a | n/a"
        vs_inseq = f"{diff:.1e}" if "inseq" in seconds else "n/a"
        print(
            f"| {method} | {lan:.3f} | {inseq} | {cap:.3f} | {cap / lan:.1f}× | {vs_inseq} | {diff_captum:.1e} "
            f"| {gflop / n:.2f} | {100 * gflop / seconds['lantern'] / peak:.0f}% |"
        )


if __name__ == "__main__":
    main()
