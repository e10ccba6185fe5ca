"""Slicing an explorer table: search, ranges, length buckets, aggregates. Pure pandas, shared by the page and
notebooks.

    from explore.table import filtered, by_group, length_bucket
    worst = filtered(frame, search="Tom", metric="chrF", low=0, high=30).sort_values("chrF")
    by_group(frame, "chrF", length_bucket(frame["source words"]))     # mean chrF per length bucket
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd

TEXT_COLUMNS = ("source", "output", "reference", "second output")
NOT_METRICS = ("id", "profession index")
BUCKETS = (0, 5, 10, 15, 20, 30, math.inf)  # source words: 1–5, 6–10, ...


def metrics(frame: pd.DataFrame) -> list[str]:
    """The numeric per-example columns (what can be sorted, ranged and aggregated)."""
    return [c for c in frame.columns if c not in NOT_METRICS and pd.api.types.is_numeric_dtype(frame[c])]


def slices(frame: pd.DataFrame) -> list[str]:
    """Columns to group by besides length: a dataset's categories (WinoMT's gold gender, stereotype...)."""
    return [
        c
        for c in frame.columns
        if c not in (*TEXT_COLUMNS, "note", "profession")
        and not pd.api.types.is_numeric_dtype(frame[c])
        and 1 < frame[c].nunique() <= 20
    ]


def length_bucket(words: pd.Series) -> pd.Series:
    """Source length in words as ordered buckets ("1–5", "6–10", ..., "31+")."""
    labels = [f"{lo + 1}–{hi}" if math.isfinite(hi) else f"{lo + 1}+" for lo, hi in itertools.pairwise(BUCKETS)]
    cut = pd.cut(words, bins=list(BUCKETS), labels=labels, right=True, include_lowest=True)
    return cut.astype(pd.CategoricalDtype(labels, ordered=True))


def filtered(
    frame: pd.DataFrame,
    search: str = "",
    words: tuple[float, float] | None = None,
    metric: str = "",
    low: float = -math.inf,
    high: float = math.inf,
) -> pd.DataFrame:
    """Rows whose text holds ``search`` (case-insensitive, any text column), whose source length in words is in
    ``words`` and whose ``metric`` is in [low, high] (rows without a value for it are left out)."""
    keep = pd.Series(True, index=frame.index)
    if search:
        needle = search.casefold()
        hit = pd.Series(False, index=frame.index)
        for col in TEXT_COLUMNS:
            if col in frame:
                hit |= frame[col].astype(str).str.casefold().str.contains(needle, regex=False)
        keep &= hit
    if words is not None and "source words" in frame:
        keep &= frame["source words"].between(words[0], words[1])
    if metric:
        if metric not in frame:
            raise KeyError(f"no column {metric!r}; the table has {', '.join(metrics(frame))}")
        keep &= frame[metric].between(low, high)
    return frame[keep]


def by_group(frame: pd.DataFrame, metric: str, groups: pd.Series) -> pd.DataFrame:
    """Mean, count and a 95 % interval (normal approximation) of ``metric`` per group, in the groups' order."""
    values = frame[metric]
    out = values.groupby(groups, observed=True).agg(["mean", "count", "std"])
    out["ci95"] = 1.96 * out["std"].fillna(0) / np.sqrt(out["count"].clip(lower=1))
    return out.drop(columns="std").reset_index().rename(columns={groups.name or "index": "group"})
