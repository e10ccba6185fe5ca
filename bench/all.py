"""Every benchmark in one run, printed and written to bench/results.md with the date and the machine.

    make bench            # = venv-bench/bin/python -m bench.all (venv-bench has Inseq)

1. app cold start: `streamlit run` to the first rendered page in headless Chromium;
2. translate + attention latency per model;
3. attribution latency per method and model (Lantern);
4. corpus translation, the decoder re-reading its prefix vs incremental decoding (bench.translation); the Dataset
   explorer and the corpus alignment run, batched vs per sentence (bench.explorer, bench.alignment_corpus);
5. Lantern vs Inseq vs a plain Captum loop (bench.attribution), per model;
6. training throughput (tokens/s, model FLOPs/s against the measured matmul peak);
7. many users at once (bench.load: an isolated server, back to back and with reading time).
Numbers are medians over several sentences; seconds depend on the machine, ratios less so.
``--skip a,b`` leaves sections out of the run; each keeps its last measurement (from the results file, or the
benchmark's own file), marked with where and when it was made.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.attribution import lstm_flops, machine, matmul_peak
from bench.translation import table as translation_table
from explain.attention import extract_attention
from explain.attribution import attribute
from explain.generation import translate
from models.adapter import Decoding
from models.loading import load_model
from models.registry import list_models
from tools.browser import browser_page, running_app
from training.batching import bucket_batches, iterate
from training.config import load_config
from training.corpora import load_multi30k, load_splits
from training.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]
TEXTS = {
    "zh": lambda: [p.src for p in load_splits("tatoeba-en-zh", "zh", "en").test],
    "en": lambda: [p.src for p in load_multi30k("test")],
}
METHODS = [
    "attention",
    "saliency",
    "input_x_gradient",
    "integrated_gradients",
    "occlusion",
    "shapley_value_sampling",
    "lime",
]


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def cold_start(read_home: float = 8.0) -> list[str]:
    """Seconds from `streamlit run` (the browser already open) to Home rendered, then to a Translate page with
    the LSTM loaded and run: at once, and after ``read_home`` seconds on Home (the model code imports in the
    background meanwhile: ui/cache.py:warm_up)."""
    rows = []
    with browser_page() as page:
        for wait in (0.0, read_home):
            start = time.perf_counter()
            with running_app() as url:
                healthy = time.perf_counter() - start
                page.goto(url)
                page.get_by_role("heading", name="Lantern").wait_for()
                first = time.perf_counter() - start
                time.sleep(wait)
                t0 = time.perf_counter()
                page.goto(f"{url}/translate")
                page.locator("text=How often the model saw").first.wait_for()
                rows.append((healthy, first, wait, time.perf_counter() - t0))
    out = ["| step | seconds |", "|---|---|"]
    out += [f"| server healthy (`streamlit run` started) | {' / '.join(f'{r[0]:.1f}' for r in rows)} |"]
    out += [f"| first page rendered (Home) | {' / '.join(f'{r[1]:.1f}' for r in rows)} |"]
    out += [f"| then Translate at once, model code imported and the LSTM loaded and run | {rows[0][3]:.1f} |"]
    out += [f"| then Translate after {read_home:g} s on Home (imports done in the background) | {rows[1][3]:.1f} |"]
    return out


def model_latency(name: str, n: int) -> tuple[str, str]:
    """Table rows for one model: translate and attention; each attribution method."""
    lm = load_model(name)
    lang = "zh" if name.endswith("zh-en") else "en"

    def n_tokens(text: str) -> int:  # the sentence itself, without a decoder-only model's chat template
        if lm.is_seq2seq():
            return len(lm.encode_source(text).ids)
        return len(lm.src_tokenizer(text, add_special_tokens=False)["input_ids"])

    texts = [t for t in TEXTS[lang]() if 15 <= n_tokens(t) <= 20][:n]
    # a decoder-only model continues the prompt for 8 tokens (as in the Inseq comparison): 24 would take
    # minutes per sentence for IG and Shapley on 135 M parameters
    decoding = Decoding(max_new_tokens=24 if lm.is_seq2seq() else 8)
    translate(lm, texts[0], decoding)  # warm-up
    trs, t_tr = [], []
    for t in texts:
        start = time.perf_counter()
        trs.append(translate(lm, t, decoding))
        t_tr.append(time.perf_counter() - start)
    t_att = [timed(lambda tr=tr: extract_attention(lm, tr)) for tr in trs]
    kw = {} if lm.is_seq2seq() else {"baseline": "unk"}
    cells = [
        f"{statistics.median(timed(lambda tr=tr, m=m: attribute(lm, tr, m, **kw)) for tr in trs):.3f}" for m in METHODS
    ]
    row = f"| {name} | {statistics.median(t_tr):.3f} | {statistics.median(t_att):.3f} |"
    return row, f"| {name} | " + " | ".join(cells) + " |"


def latencies(models: list[str], n: int) -> tuple[list[str], list[str]]:
    rows = ["| model | translate s | attention s |", "|---|---|---|"]
    attr_rows = ["| model | " + " | ".join(METHODS) + " |", "|---" * (len(METHODS) + 1) + "|"]
    for name in models:
        row, attr_row = model_latency(name, n)
        rows.append(row)
        attr_rows.append(attr_row)
    return rows, attr_rows


def preset_throughput(preset: str, peak: float) -> str:
    """One training table row: 10 measured steps on real batches after a warm-up and a FLOP-counted step."""
    cfg = load_config(preset, ["data.limit_train=3000", "train.eval_every=100000", "train.save_every=100000"])
    trainer = Trainer(cfg, Path("/tmp/lantern-bench-train") / cfg.name)
    order = bucket_batches(trainer.train_examples, cfg.train.batch_size, 0)[:12]
    batches = list(iterate(trainer.train_examples, order, trainer.src_tok.pad_token_id))

    def step(batch: dict) -> int:
        loss, n_tok = trainer._loss(batch, cfg.train.label_smoothing)
        trainer.opt.zero_grad()
        loss.backward()
        trainer.opt.step()
        return n_tok

    step(batches[0])
    with lstm_flops(trainer.model, backward=True) as lstm, FlopCounterMode(display=False) as counter:
        step(batches[1])
    flops_per_token = (counter.get_total_flops() + lstm[0]) / max(1, int(batches[1]["labels"].ne(-100).sum()))
    start, tokens = time.perf_counter(), 0
    for b in batches[2:]:
        tokens += step(b)
    secs = time.perf_counter() - start
    gflops = flops_per_token * tokens / secs / 1e9
    n_params = sum(p.numel() for p in trainer.model.parameters())
    return (
        f"| {cfg.name} ({cfg.model.architecture}, amp {cfg.train.amp}) | {n_params / 1e6:.1f} M | "
        f"{tokens / secs:,.0f} | {gflops:.0f} | {100 * gflops / peak:.0f}% |"
    )


def training_throughput(peak: float) -> list[str]:
    rows = [
        "| preset | params | target tokens/s | model GFLOP/s | % of fp32 matmul peak |",
        "|---|---|---|---|---|",
    ]  # FLOPs: torch's FlopCounterMode, plus nn.LSTM counted by hand (its table has no entry for the fused kernel)
    return rows + [preset_throughput(p, peak) for p in ("configs/lstm_zh_en.toml", "configs/transformer_en_de.toml")]


def sub(args: list[str]) -> list[str]:
    """A benchmark script's tables and summary lines (tables that followed other text stay separate)."""
    out = subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True)
    if out.returncode:  # say so in the results rather than leave the section empty
        print(out.stderr[-3000:], file=sys.stderr)
        tail = out.stderr.strip().splitlines()[-1:] or ["(no message)"]
        return [f"`python -m {' '.join(args)}` failed (exit {out.returncode}): {tail[0]}"]
    lines: list[str] = []
    in_table = False
    for line in out.stdout.splitlines():
        if line.startswith(("|", "Inseq", "model", "app")):
            if line.startswith("|") and not in_table and lines:
                lines.append("")
            lines.append(line)
        in_table = line.startswith("|")
    return lines


def latency_sections(models: list[str], args: argparse.Namespace) -> list[str]:
    rows, attr_rows = latencies(models, args.sentences)
    return [
        "## Translate and attention (median s per sentence of 15-20 source tokens; up to 24 output tokens, "
        "8 for the decoder-only model)",
        "",
        *rows,
        "",
        "## Attribution, every output token (median s; IG 32 steps, Shapley and LIME 25 samples)",
        "",
        *attr_rows,
        "",
    ]


def vs_sections() -> list[str]:
    out: list[str] = []
    for model, extra in (
        ("lstm-zh-en", []),
        ("transformer-en-de", []),
        ("smollm2-135m-instruct", ["--sentences", "3", "--max-new", "8"]),
    ):
        out += [f"### {model}", "", *sub(["bench.attribution", "--model", model, *extra]), ""]
    return out[:-1]


def load_sections() -> list[str]:
    """The server on its own cores, clients speaking Streamlit's protocol (browsers would measure Chromium): the
    stress test (pages back to back), then users who read each page for 10 s on average."""
    base = ["bench.load", "--isolate", "--client", "protocol", "--warm"]
    return [*sub(base), "", *sub([*base, "--think", "10", "--sessions", "1,16"])]


CARRIED = "_Not rerun by this run: carried over from "
OWN_FILES = {  # benchmarks that also write their own file
    "translation": "translation.md",
    "explorer": "explorer.md",
    "alignment": "alignment_corpus.md",
    "threads": "threads.md",
    "concurrency": "concurrency.md",
}


def previous_sections(path: Path) -> dict[str, list[str]]:
    """The sections ("## " headings) of an earlier results file, each marked with the run it came from."""
    if not path.exists():
        return {}
    lines = path.read_text(encoding="utf-8").splitlines()
    when = lines[0].removeprefix("# Lantern benchmarks, ") if lines else "?"
    where = next((x.removeprefix("Machine: ").split(";")[0] for x in lines if x.startswith("Machine: ")), "?")
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines:
        if line.startswith("## "):
            current = sections.setdefault(line, [line, ""])
            continue
        if current is not None:
            if len(current) == 2 and not line.startswith(CARRIED) and line.strip():
                current.append(f"{CARRIED}the run of {when}, {where}._")
                current.append("")
            if len(current) > 2 or line.strip():
                current.append(line)
    return {head: body[:-1] if body[-1] == "" else body for head, body in sections.items()}


def carried(previous: dict[str, list[str]], heading: str) -> list[str]:
    """An earlier run's section whose heading starts with ``heading`` (nothing when there is none)."""
    return next(([*body, ""] for head, body in previous.items() if head.startswith(heading)), [])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sentences", type=int, default=5)
    ap.add_argument(
        "--skip",
        default="",
        help="comma-separated sections to skip: start,latency,translation,explorer,alignment,vs,train,threads,"
        "concurrency,load",
    )
    ap.add_argument(
        "--out", type=Path, default=REPO / "bench" / "results.md", help="where to write (default bench/results.md)"
    )
    args = ap.parse_args()
    skip = set(args.skip.split(","))
    peak = matmul_peak()
    own = [s.name for s in list_models() if s.kind == "checkpoint"]
    out = [
        f"# Lantern benchmarks, {date.today().isoformat()}",
        "",
        f"Machine: {machine()}; measured fp32 matmul peak {peak:.0f} GFLOP/s. Produced by `make bench` (bench/all.py).",
        "",
    ]
    previous = previous_sections(args.out)  # a skipped section keeps its last measurement, marked as such
    sections: list[tuple[str, str, Callable[[], list[str]]]] = [
        ("start", "## App cold start", lambda: cold_start()),
        ("latency", "## Translate and attention", lambda: latency_sections([*own, "smollm2-135m-instruct"], args)),
        (  # the whole test splits: bench/translation.md (python -m bench.translation)
            "translation",
            "## Corpus translation: re-reading the prefix vs incremental decoding (first 200 test sentences, beam 5)",
            lambda: translation_table(own, 200, 5),
        ),
        (  # also written to bench/explorer.md
            "explorer",
            "## Dataset explorer: whole test splits vs the per-sentence API (s)",
            lambda: sub(["bench.explorer"]),
        ),
        (  # also written to bench/alignment_corpus.md
            "alignment",
            "## Corpus alignment run: batched vs per-sentence path (s)",
            lambda: sub(["bench.alignment_corpus"]),
        ),
        ("vs", "## Lantern vs Inseq vs a plain Captum loop", vs_sections),
        (
            "train",
            "## Training throughput (CPU, batches from the real corpora)",
            lambda: training_throughput(peak),
        ),
        (  # also written to bench/threads.md
            "threads",
            "## Threads on a shared machine (ms; then k concurrent requests, s)",
            lambda: sub(["bench.threads"]),
        ),
        (  # also written to bench/concurrency.md
            "concurrency",
            "## A short request during a long attribution (s)",
            lambda: sub(["bench.concurrency"]),
        ),
        ("load", "## Many users at once", load_sections),
    ]
    for key, heading, run in sections:
        if key in skip:
            kept = carried(previous, heading)
            own_file = REPO / "bench" / OWN_FILES.get(key, "-")
            if not kept and own_file.is_file():  # the benchmark's own file, written by its last run
                text = own_file.read_text(encoding="utf-8").splitlines()
                title = text[0].lstrip("# ") if text and text[0].startswith("# ") else own_file.name
                body = "\n".join(text[1:]).strip().splitlines()
                kept = [heading, "", f"{CARRIED}{own_file.relative_to(REPO)}: {title}._", "", *body, ""]
            out += kept
            if key == "latency":
                out += carried(previous, "## Attribution, every output token")
        elif key == "latency":  # two sections from one measurement
            out += run()
        else:
            out += [heading, "", *run(), ""]
    text = "\n".join(out)
    print(text)
    args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
