"""Many users at once: N concurrent browser sessions against one `streamlit run`.

    venv/bin/python -m bench.load --sessions 1,4,16
    venv/bin/python -m bench.load --isolate      # the server on its own cores, the browsers on the others
    venv/bin/python -m bench.load --isolate --client protocol --warm --think 10   # as make bench runs it, + reading

Each session opens the app on its own sentence and goes Translate -> Attention -> Attributions (input x
gradient), then downloads its attribution scores as CSV. Every CSV is compared with a lone run of the
same explanation in this process: sessions must not change each other's numbers. Prints, per N, the
requests per second, the median and 95th-percentile page latency, the largest difference from the lone
runs, and the server's resident memory (models and caches are capped, so it must level off). The row for one
session runs one session at a time over as many sentences as the largest wave, so that its p95 is taken over as
many pages as the others' (the ratio column divides by it). No two sessions share a sentence: the app caches
translations and explanations across sessions, and a repeated sentence would measure the cache.
``--isolate`` pins the server to the upper half of the cores and this process and its browsers to the lower
half (``sched_setaffinity``, as ``taskset`` does). ``--client protocol`` replaces the browsers with Streamlit's
own WebSocket protocol (bench/protocol.py): a page's time is then the app's (run, send, fetch the CSV), not
Chromium's drawing, which on a 2-core machine is most of the work. ``--warm`` runs one session first.
``--think S`` has each user read S seconds on average before each page (exponentially distributed, seeded by
its sentence): people using the app at the same time, rather than the default stress test, where every user
asks for the next page the moment the last one is drawn.

Without reading time the test is a closed loop that keeps the server saturated, and Little's law bounds it:
the mean page time at N sessions is N / (pages per second), so once one session alone keeps the server busy
(it does on one core), N sessions wait about N times as long per page, whatever the server does.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import os
import random
import statistics
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np

from bench.attribution import machine
from bench.protocol import fetch, run_page
from explain.attribution import attribute
from explain.generation import translate
from models.adapter import Decoding
from models.loading import load_model
from tools.browser import CHROMIUM_ARGS, chromium_path, running_app_process
from training.corpora import load_splits

MODEL = "lstm-zh-en"


def rss_mb(pid: int) -> float:
    """Resident memory of the server and its children (Streamlit runs in one process)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reading(text: str, think: float) -> Callable[[], Awaitable[None]]:
    """A user's pause before each page: exponentially distributed, ``think`` seconds on average (0: none)."""
    rng = random.Random(text)

    async def pause() -> None:
        if think > 0:
            await asyncio.sleep(rng.expovariate(1 / think))

    return pause


async def session(browser, url: str, text: str, think: float = 0.0) -> tuple[list[float], np.ndarray]:
    """One user: three pages, timed from navigation to a finished run; returns latencies and the CSV scores."""
    pause = reading(text, think)
    ctx = await browser.new_context(viewport={"width": 1300, "height": 1400}, accept_downloads=True)
    page = await ctx.new_page()
    page.set_default_timeout(180_000)
    query = urllib.parse.urlencode({"model": MODEL, "src": text, "attr.method": "input_x_gradient"})
    latencies = []
    for path, ready in (
        ("translate", "text=How often the model saw"),
        ("attention", ".js-plotly-plot"),
        ("attributions", "text=What produced"),
    ):
        await pause()
        start = time.perf_counter()
        await page.goto(f"{url}/{path}?{query}")
        await page.locator(ready).first.wait_for()
        await page.locator("[data-testid='stStatusWidget']").wait_for(state="hidden")
        latencies.append(time.perf_counter() - start)
    async with page.expect_download() as info:
        await page.get_by_role("button", name="Scores as CSV").click()
    download = await info.value
    scores = scores_from_csv(Path(await download.path()).read_text(encoding="utf-8"))
    await ctx.close()
    return latencies, scores


def scores_from_csv(text: str) -> np.ndarray:
    """The source-side scores [steps, positions] of an exported attribution CSV."""
    rows = list(csv.DictReader(io.StringIO(text)))
    n_t = 1 + max(int(r["step"]) for r in rows)
    n_s = 1 + max(int(r["position"]) for r in rows if r["side"] == "source")
    scores = np.zeros((n_t, n_s))
    for r in rows:
        if r["side"] == "source":
            scores[int(r["step"]), int(r["position"])] = float(r["score"])
    return scores


async def protocol_session(url: str, text: str, think: float = 0.0) -> tuple[list[float], np.ndarray]:
    """The same user through Streamlit's own protocol (bench/protocol.py): no browser drawing the pages."""
    pause = reading(text, think)
    query = {"model": MODEL, "src": text, "attr.method": "input_x_gradient"}
    latencies, csv_path = [], None
    for page in ("translate", "attention", "attributions"):
        await pause()
        run = await run_page(url, page, query)
        if run.exceptions:
            raise RuntimeError(f"{page}: {run.exceptions}")
        latencies.append(run.seconds)
        csv_path = run.downloads.get("Scores as CSV", csv_path)
    if csv_path is None:
        raise RuntimeError("the Attributions page offered no CSV")
    data = await asyncio.to_thread(fetch, url, csv_path)
    return latencies, scores_from_csv(data.decode("utf-8"))


async def protocol_wave(url: str, texts: list[str], think: float = 0.0) -> tuple[float, list[float], list[np.ndarray]]:
    start = time.perf_counter()
    results = await asyncio.gather(*(protocol_session(url, t, think) for t in texts))
    wall = time.perf_counter() - start
    return wall, [x for lat, _ in results for x in lat], [s for _, s in results]


async def wave(url: str, texts: list[str], think: float = 0.0) -> tuple[float, list[float], list[np.ndarray]]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        start = time.perf_counter()
        results = await asyncio.gather(*(session(browser, url, t, think) for t in texts))
        wall = time.perf_counter() - start
        await browser.close()
    return wall, [x for lat, _ in results for x in lat], [s for _, s in results]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", default="1,4,16")
    ap.add_argument("--isolate", action="store_true", help="server and clients on separate cores")
    ap.add_argument(
        "--client",
        choices=("browser", "protocol"),
        default="browser",
        help="headless Chromium (default), or Streamlit's WebSocket protocol without a browser (bench/protocol.py)",
    )
    ap.add_argument("--warm", action="store_true", help="one untimed session first (imports, model loading)")
    ap.add_argument(
        "--think",
        type=float,
        default=0.0,
        help="seconds a user reads before each page, on average (exponential; default 0: pages back to back)",
    )
    args = ap.parse_args()
    server_cores = None
    if args.isolate:
        cores = sorted(os.sched_getaffinity(0))
        if len(cores) < 2:
            ap.error("--isolate needs at least 2 cores")
        server_cores = set(cores[len(cores) // 2 :])
        os.sched_setaffinity(0, set(cores[: len(cores) // 2]))  # this process, its browsers

    waves = [int(n) for n in args.sessions.split(",")]
    # Every session its own sentence, never one an earlier wave ran: the app caches results across sessions.
    pool = iter(dict.fromkeys(p.src for p in load_splits("tatoeba-en-zh", "zh", "en").test if 8 <= len(p.src) <= 20))
    warm_texts = [next(pool)] if args.warm else []
    wave_texts = [[next(pool) for _ in range(max(waves) if n == 1 else n)] for n in waves]
    texts = [t for ts in [warm_texts, *wave_texts] for t in ts]
    lm = load_model(MODEL)
    lone = {t: attribute(lm, translate(lm, t, Decoding()), "input_x_gradient").scores for t in texts}
    clients = "headless Chromium" if args.client == "browser" else "protocol clients (no browser)"
    placement = (
        f"server on cores {sorted(server_cores)}, {clients} on {sorted(os.sched_getaffinity(0))}"
        if server_cores
        else f"server and {clients} share every core"
    )
    warm = "; one untimed session first" if args.warm else "; the first session also pays the cold start"
    think = (
        f"users read {args.think:g} s on average before each page (exponential; none in the one-at-a-time row)"
        if args.think
        else "pages back to back, no reading time"
    )
    print(
        f"app: `streamlit run app.py`, model {MODEL}, sessions Translate -> Attention -> Attributions "
        f"(input x gradient) on different Tatoeba test sentences; {think}; {placement}{warm}; {machine()}\n"
    )
    print(
        "| sessions | pages | wall s | pages/s | median page s | p95 page s | p95 ÷ one session "
        "| max abs diff vs lone run | server RSS MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    run_wave = protocol_wave if args.client == "protocol" else wave
    with running_app_process(cores=server_cores) as (url, pid):
        if args.warm:
            asyncio.run(run_wave(url, warm_texts))
        alone_p95 = None
        for n, used in zip(waves, wave_texts, strict=True):
            if n == 1:  # one session at a time over every sentence: a p95 of as many pages as the largest wave
                runs = [asyncio.run(run_wave(url, [t])) for t in used]
                wall = sum(r[0] for r in runs)
                latencies, scores = [x for r in runs for x in r[1]], [s for r in runs for s in r[2]]
            else:
                wall, latencies, scores = asyncio.run(run_wave(url, used, args.think))
            diff = max(float(np.abs(s - lone[t]).max()) for s, t in zip(scores, used, strict=True))
            q = statistics.quantiles(latencies, n=20, method="inclusive")[-1] if len(latencies) > 1 else latencies[0]
            alone_p95 = q if n == 1 else alone_p95
            ratio = f"{q / alone_p95:.1f}" if alone_p95 else "n/a"
            label = f"1 (×{len(used)}, one after another)" if n == 1 else str(n)
            print(
                f"| {label} | {len(latencies)} | {wall:.1f} | {len(latencies) / wall:.2f} | "
                f"{statistics.median(latencies):.2f} | {q:.2f} | {ratio} | {diff:.1e} | {rss_mb(pid):.0f} |"
            )


if __name__ == "__main__":
    main()
