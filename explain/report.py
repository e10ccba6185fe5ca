"""The AER table of several ``python -m explain.evaluate`` runs: model, method, the setting chosen on the development
part and its AER on the reporting part, beside the no-model diagonal and the published word aligners.

    python -m explain.report evaluations/transformer-en-fr-*.json

Pure JSON in, Markdown out: the README's alignment table is this command's output, so it says what the runs say.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from explain.alignment import PUBLISHED_AER_EN_FR

BOTH = " (both models)"  # the suffix explain.evaluate gives settings that combine two models (--reverse)


def _best(reported: dict[str, Any], both: bool) -> tuple[str, dict[str, Any]] | None:
    """The setting with the lowest development AER among the one-model settings, or among the two-model ones."""
    pool = {s: r for s, r in reported.items() if s.endswith(BOTH) == both}
    if not pool:
        return None
    setting = min(pool, key=lambda s: (pool[s]["aer_dev"], s))
    return setting, pool[setting]


def aer_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per method (and, for a run with ``--reverse``, one more for the best two-model setting): the
    setting and layer chosen on the development part, its AER there and on the reporting part, and the plain row
    argmax over every sentence."""
    rows = []
    for method, entry in summary.get("methods", {}).items():
        if "aer" not in entry:
            continue
        reported = entry.get("aer_by_extraction_reported") or {}
        for both in (False, True):
            best = _best(reported, both)
            if best is None and both:
                continue
            row = {
                "model": Path(str(summary.get("model", "?"))).name,
                "method": method,
                "row_argmax_all": entry["aer"],
                "seconds": summary.get("seconds", {}).get("total"),
                "reverse": str(summary.get("reverse_model") or Path(str(summary["reverse"])).name)
                if both and summary.get("reverse")
                else "",
            }
            if best is not None:
                setting, r = best
                row.update(setting=setting, layer=r["layer"], aer_dev=r["aer_dev"], aer=r["aer"])
                row.update(precision=r["precision"], recall=r["recall"])
            rows.append(row)
    return rows


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.1f}"


def markdown(summaries: list[dict[str, Any]]) -> str:
    """The table, the diagonal of each reporting part and the published aligners, as Markdown."""
    lines = [
        "| model | method | setting chosen on dev (layer) | AER dev | **AER reported** | precision | recall "
        "| row argmax, all sentences | run (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    diagonals: dict[tuple[str, bool], float] = {}  # (reporting part, scored with --swap-gold) -> AER
    for summary in summaries:
        dev = summary.get("dev") or {}
        part = dev.get("reported_on", "all sentences")
        base = summary.get("baselines", {})
        diagonal = base.get("diagonal_reported", base.get("diagonal"))
        if diagonal:
            diagonals.setdefault((part, bool(summary.get("swap_gold"))), diagonal["aer"])
        for r in aer_rows(summary):
            model = r["model"] + (f" + {r['reverse']}" if r["reverse"] else "")
            setting = f"{r['setting']} ({r['layer']})" if "setting" in r else "(no dev split)"
            lines.append(
                f"| {model} | {r['method']} | {setting} | {_pct(r.get('aer_dev'))} | **{_pct(r.get('aer'))}** | "
                f"{_pct(r.get('precision'))} | {_pct(r.get('recall'))} | {_pct(r['row_argmax_all'])} | "
                f"{'' if r['seconds'] is None else round(r['seconds'])} |"
            )
    for (part, swapped), aer in diagonals.items():
        which = "diagonal, reverse-direction runs" if swapped else "diagonal"
        lines.append(f"| *no model: {which}* | | *{part}* | | *{_pct(aer)}* | | | | |")
    published = ", ".join(f"{name} {aer}" for name, aer in PUBLISHED_AER_EN_FR.items())
    lines.append(f"| *published aligners, all 447 sentences* | | *{published}* | | | | | | |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m explain.report",
        description="Print the AER table of explain.evaluate runs (their summary JSON files) as Markdown.",
    )
    ap.add_argument("runs", nargs="+", help="summary JSON files written by python -m explain.evaluate --out")
    args = ap.parse_args(argv)
    summaries = []
    for path in args.runs:
        try:
            summaries.append(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError) as err:
            print(f"python -m explain.report: error: {path}: {err}", file=sys.stderr)
            return 2
    sys.stdout.write(markdown(summaries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
