"""Peak memory of the worst attribution a user can ask for, per model: the measurement behind the budget.

    python -m bench.memory                     # every shipped model and SmolLM2; writes bench/memory.md
    python -m bench.memory --models transformer-en-de --seconds 30

Each (model, method) runs in a fresh process, as a server would hold it: the model loaded, then one attribution
of a long input and a 64-token output with the largest settings the pages allow (integrated gradients with 128
steps, Shapley value sampling with 200 samples), under the request time limit. Reported: the process's memory
with the model loaded, its peak during the attribution (``VmHWM``), the peak's growth over the loaded model
against the attribution budget (``LANTERN_ATTRIBUTION_MB``), and the memory left after ``release_memory``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import date
from pathlib import Path

from bench.attribution import machine

REPO = Path(__file__).resolve().parents[1]
WORST = {"integrated_gradients": {"n_steps": 128}, "shapley_value_sampling": {"n_samples": 200}}
SOURCES = {  # long inputs (~60 source tokens) in each model's source language
    "zh": "我们昨天晚上在北京的一家小饭馆里吃了饭，然后走了很长的路回家，因为地铁已经关门了，天气也很冷，"
    "可是我们一路上聊得很开心，一直到半夜才到家。",
    "en": "A man in a bright orange hat and a blue jacket is standing next to a large crowd of people who are "
    "watching two young musicians play guitars on a busy street corner in the middle of the city.",
}


def child(model: str, method: str, seconds: float, heap: str = "bounded") -> dict[str, float]:
    """Run in the measured process: load, then the worst attribution; returns its memory figures (MB)."""
    from common.limits import limit
    from common.memory import bound_heap_growth, peak_rss_mb, release_memory, rss_mb
    from explain.attribution import attribute
    from explain.deadline import ComputationTimeout
    from explain.generation import force_translation
    from models.loading import load_model
    from models.registry import get_spec

    if heap == "bounded":  # as the app's server process does (ui/cache.py)
        bound_heap_growth()
    lm = load_model(model)
    spec = get_spec(model)
    text = SOURCES["zh" if spec.src_lang == "zh" else "en"]
    output = " ".join(["the"] * 63)  # a 64-token output (with EOS), whatever the vocabulary
    tr = force_translation(lm, text, output)
    tr = force_translation(lm, text, ids=tr.tgt_ids[:64])
    release_memory()
    loaded = rss_mb()
    finished = True
    try:
        attribute(lm, tr, method, baseline="unk" if not lm.is_seq2seq() else "pad", time_limit=seconds, **WORST[method])
    except ComputationTimeout:
        finished = False
    peak = peak_rss_mb()
    release_memory()
    return {
        "loaded_mb": loaded,
        "peak_mb": peak,
        "growth_mb": peak - loaded,
        "after_mb": rss_mb(),
        "budget_mb": limit("attribution_mb"),
        "src_tokens": len(tr.src_ids),
        "tgt_tokens": len(tr.tgt_ids),
        "finished": finished,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", help="comma-separated model names (default: every shipped model and SmolLM2)")
    ap.add_argument("--seconds", type=float, default=60, help="time limit of each attribution (default: %(default)s)")
    ap.add_argument("--child", nargs=2, metavar=("MODEL", "METHOD"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child, args.seconds)))
        return 0
    from models.registry import list_models

    models = args.models.split(",") if args.models else [s.name for s in list_models() if s.kind != "pretrained"]
    rows = [
        f"# Peak memory of the worst attribution, {date.today().isoformat()}",
        "",
        f"Machine: {machine()}. Command: `python -m bench.memory` (each run a fresh process, time limit "
        f"{args.seconds:g} s). Settings: {', '.join(f'{m} {v}' for m, v in WORST.items())}; a 64-token output.",
        "",
        "| model | method | tokens (src/out) | model loaded (MB) | peak (MB) | growth (MB) | budget (MB) | "
        "after release (MB) | finished in time |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    print("\n".join(rows), flush=True)
    for model in models:
        for method in WORST:
            cmd = [sys.executable, "-m", "bench.memory", "--child", model, method, "--seconds", str(args.seconds)]
            done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
            if done.returncode:
                rows.append(f"| {model} | {method} | failed: {done.stderr.strip().splitlines()[-1]} |")
            else:
                r = json.loads(done.stdout.strip().splitlines()[-1])
                rows.append(
                    f"| {model} | {method} | {r['src_tokens']}/{r['tgt_tokens']} | {r['loaded_mb']:.0f} | "
                    f"{r['peak_mb']:.0f} | {r['growth_mb']:.0f} | {r['budget_mb']:.0f} | {r['after_mb']:.0f} | "
                    f"{'yes' if r['finished'] else 'no (stopped at the limit)'} |"
                )
            print(rows[-1], flush=True)
    (Path(__file__).parent / "memory.md").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
