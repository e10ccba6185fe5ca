"""Intra-op threads on a shared machine: fixed 1 thread, fixed N (torch's default) and Lantern's policy.

    python -m bench.threads                  # transformer-en-de; writes bench/threads.md
    python -m bench.threads --quick          # fewer repeats, no 8-request wave

Table 1: one request of each kind (translation, attention, each attribution method, a training step) with
1 thread, N threads and the policy (models/threads.py), on the idle machine and with one and two competing
CPU-bound processes (``python -c "while True: pass"``). Table 2: k concurrent requests (k = 1, 2, 4, 8) in
threads of this process, as Streamlit runs sessions, sharing one model: seconds per request (median) and
the whole wave's wall time. Every number is measured in this one run, on this machine.

Requests run as ``streamlit run`` runs them: each in a fresh thread, with the main thread never running torch
(Streamlit's main thread serves HTTP; every page run gets a new thread). This matters: measured here, once the
main thread had its own OpenMP team, a second thread's 2-thread integrated gradients ran 1.7x slower than in the
main thread (and slower than one thread), so a benchmark of the app's policy must not use the main thread.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TypeVar

import torch

from bench.attribution import machine
from common.memory import bound_heap_growth
from explain.attention import extract_attention
from explain.attribution import attribute
from explain.generation import translate
from models import threads
from models.adapter import Decoding, LanternModel
from models.loading import load_model

# a Multi30k-style sentence of about the length of issue 17's measurement (18 words there)
TEXT = "A young man in a red jacket is riding his bicycle down a busy street next to a bus ."
COMPETITOR = [sys.executable, "-c", "while True: pass"]
T = TypeVar("T")


@contextmanager
def competitors(n: int) -> Iterator[None]:
    """``n`` CPU-bound processes for the duration (the policy's estimate needs a second to see them)."""
    procs = [subprocess.Popen(COMPETITOR) for _ in range(n)]
    try:
        if n:
            time.sleep(1.5)
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()
        if n:
            time.sleep(1.5)  # and a second to see them gone


def in_thread(fn: Callable[[], T]) -> T:
    """``fn()`` in a fresh thread, as Streamlit runs a page."""
    out: list = []
    worker = threading.Thread(target=lambda: out.append(fn()))
    worker.start()
    worker.join()
    if not out:
        raise RuntimeError("the request failed (its traceback is above)")
    return out[0]


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    def timed() -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    return statistics.median(in_thread(timed) for _ in range(repeats))


def training_step(lm: LanternModel, batch_size: int = 32) -> Callable[[], None]:
    """One optimiser step of a copy of the model on ``batch_size`` copies of the sentence and its translation."""
    model = copy.deepcopy(lm.model).train().requires_grad_(True)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    tr = translate(lm, TEXT, Decoding())
    src = torch.tensor([lm.encode_source(TEXT).ids] * batch_size)
    labels = torch.tensor([tr.tgt_ids] * batch_size)

    def step() -> None:
        with threads.computation():
            loss = model(input_ids=src, attention_mask=torch.ones_like(src), labels=labels).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
            threads.refresh()

    return step


def tasks(lm: LanternModel) -> dict[str, Callable[[], object]]:
    tr = translate(lm, TEXT, Decoding())
    out: dict[str, Callable[[], object]] = {
        "translate (greedy)": lambda: translate(lm, TEXT, Decoding()),
        "attention": lambda: extract_attention(lm, tr),
    }
    for method in ("saliency", "input_x_gradient", "integrated_gradients", "occlusion", "shapley_value_sampling"):
        out[method] = lambda m=method: attribute(lm, tr, m, n_steps=32, n_samples=25)
    out["training step (batch 32)"] = training_step(lm)
    return out


SETTINGS = {"1 thread": 1, "N threads": None, "policy": 0}  # None: torch's default count, fixed


def configure(setting: str, cores: int) -> None:
    n = SETTINGS[setting]
    threads.configure(fixed=cores if n is None else (n or None))


def single_requests(lm: LanternModel, repeats: int, loads: tuple[int, ...]) -> list[str]:
    cores = threads.usable_cores()
    work = in_thread(lambda: tasks(lm))
    cells: dict[tuple[str, str, int], float] = {}
    for load in loads:
        with competitors(load):
            for setting in SETTINGS:
                configure(setting, cores)
                for name, fn in work.items():
                    in_thread(fn)  # warm-up
                    quick = name.startswith(("translate", "attention", "saliency", "training"))
                    reps = repeats * 3 if quick else repeats
                    cells[name, setting, load] = median_seconds(fn, reps)
    head = "| request | " + " | ".join(f"{s}, {_load(load)}" for load in loads for s in SETTINGS)
    loaded = [load for load in loads if load]
    head += "".join(f" | policy, {_load(load)} ÷ 1 thread, idle" for load in loaded)
    head += " | policy ÷ N threads, idle |"
    rows = [head, "|---" * (len(loads) * len(SETTINGS) + len(loaded) + 2) + "|"]
    for name in work:
        vals = " | ".join(f"{1000 * cells[name, s, load]:.0f}" for load in loads for s in SETTINGS)
        ratios = "".join(f" | {cells[name, 'policy', load] / cells[name, '1 thread', 0]:.2f}" for load in loaded)
        rows.append(f"| {name} | {vals}{ratios} | {cells[name, 'policy', 0] / cells[name, 'N threads', 0]:.2f} |")
    return rows


def _load(n: int) -> str:
    return "idle" if n == 0 else f"{n} competing process" + ("es" if n > 1 else "")


def wave(fn: Callable[[], object], k: int) -> tuple[float, float]:
    """k concurrent calls of ``fn`` in threads: (median seconds per call, wall seconds of the wave)."""
    times: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(k)

    def one() -> None:
        barrier.wait()
        start = time.perf_counter()
        fn()
        with lock:
            times.append(time.perf_counter() - start)

    start = time.perf_counter()
    workers = [threading.Thread(target=one) for _ in range(k)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return statistics.median(times), time.perf_counter() - start


def concurrent_requests(lm: LanternModel, ks: tuple[int, ...]) -> list[str]:
    cores = threads.usable_cores()
    tr = in_thread(lambda: translate(lm, TEXT, Decoding()))
    work = {
        "integrated_gradients": lambda: attribute(lm, tr, "integrated_gradients", n_steps=32),
        "translate (greedy)": lambda: [translate(lm, TEXT, Decoding()) for _ in range(5)],
    }
    rows = [
        "| request | k | " + " | ".join(f"{s}: per request / wave" for s in SETTINGS) + " |",
        "|---|---|" + "---|" * len(SETTINGS),
    ]
    for name, fn in work.items():
        for k in ks:
            cells = []
            for setting in SETTINGS:
                configure(setting, cores)
                wave(fn, 1)  # warm-up
                per, wall = min((wave(fn, k) for _ in range(2)), key=lambda r: r[1])
                cells.append(f"{per:.2f} / {wall:.2f}")
            rows.append(f"| {name}{' ×5' if name.startswith('translate') else ''} | {k} | " + " | ".join(cells) + " |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="transformer-en-de")
    ap.add_argument("--quick", action="store_true", help="1 repeat, no 8-request wave, no two-competitor column")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("threads.md"))
    args = ap.parse_args()
    bound_heap_growth()  # as ui/cache.py does in the server
    lm = in_thread(lambda: load_model(args.model))
    repeats, ks, loads = (1, (1, 2, 4), (0, 1)) if args.quick else (3, (1, 2, 4, 8), (0, 1, 2))
    cores = threads.usable_cores()
    out = [
        f"# Threads on a shared machine, {date.today().isoformat()}",
        "",
        f"Machine: {machine()}; {cores} usable cores. Command: `python -m bench.threads"
        f"{' --quick' if args.quick else ''}`. Model {args.model}; sentence of {len(TEXT.split())} words: "
        f'"{TEXT}"',
        "",
        "## One request (ms, median; attributions over every output token, IG 32 steps, Shapley 25 samples)",
        "",
        "Competing processes are CPU-bound Python loops. *Policy*: models/threads.py (threads = free cores ÷ "
        "requests in flight). Targets (issue 17): with one competing process, policy ÷ 1 thread idle ≤ 1.3; "
        "idle, policy ÷ N threads ≈ 1. Each request in a fresh thread, malloc set as the server sets it.",
        "",
        *single_requests(lm, repeats, loads),
        "",
        f"## k concurrent requests on one shared model (seconds; threads of one process; {cores} cores)",
        "",
        *concurrent_requests(lm, ks),
        "",
    ]
    text = "\n".join(out)
    print(text)
    args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
