"""Attribution results to and from JSON (lossless) and CSV (one row per score, for pandas or R)."""

from __future__ import annotations

import csv
import io
import json

import numpy as np

from explain.types import Attribution

FORMAT_VERSION = 1
CSV_COLUMNS = [
    "model",
    "method",
    "target",
    "contrast",
    "step",
    "output_token",
    "step_logprob",
    "step_entropy",
    "delta",
    "side",
    "position",
    "input_token",
    "score",
    "params",
]


def _array(values: object) -> np.ndarray | None:
    return None if values is None else np.asarray(values, dtype=np.float32)


def _span(value: object) -> tuple[int, int] | None:
    if value is None:
        return None
    if not (isinstance(value, list | tuple) and len(value) == 2 and all(isinstance(v, int) for v in value)):
        raise ValueError(f"src_span must be two token positions, not {value!r}")
    return int(value[0]), int(value[1])


def to_json(attr: Attribution) -> str:
    data = {
        "format": "lantern-attribution",
        "version": FORMAT_VERSION,
        "model": attr.model,
        "method": attr.method,
        "target": attr.target,
        "contrast": attr.contrast,
        "src_tokens": list(attr.src_tokens),
        "tgt_tokens": list(attr.tgt_tokens),
        "prefix_tokens": list(attr.prefix_tokens),
        "scores": attr.scores.tolist(),
        "prefix_scores": None if attr.prefix_scores is None else attr.prefix_scores.tolist(),
        "step_logprobs": attr.step_logprobs.tolist(),
        "step_entropy": attr.step_entropy.tolist(),
        "delta": None if attr.delta is None else attr.delta.tolist(),
        "steps": list(attr.steps),
        "params": dict(attr.params),
        "signed": attr.signed,
        "src_span": None if attr.src_span is None else list(attr.src_span),
    }
    return json.dumps(data, ensure_ascii=False)


def from_json(text: str) -> Attribution:
    """Load what ``to_json`` wrote; anything else raises ``ValueError`` saying what is wrong."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"not JSON: {err}") from err
    if not isinstance(data, dict) or data.get("format") != "lantern-attribution":
        raise ValueError("not a Lantern attribution file (no 'format': 'lantern-attribution')")
    if data.get("version") != FORMAT_VERSION:
        raise ValueError(f"attribution file version {data.get('version')}; this Lantern reads {FORMAT_VERSION}")
    return Attribution(
        model=data["model"],
        method=data["method"],
        target=data["target"],
        contrast=data.get("contrast", ""),
        src_tokens=tuple(data["src_tokens"]),
        tgt_tokens=tuple(data["tgt_tokens"]),
        prefix_tokens=tuple(data["prefix_tokens"]),
        scores=_array(data["scores"]).reshape(len(data["tgt_tokens"]), -1),
        prefix_scores=_array(data["prefix_scores"]),
        step_logprobs=_array(data["step_logprobs"]),
        step_entropy=_array(data["step_entropy"]),
        delta=_array(data["delta"]),
        steps=tuple(data["steps"]),
        params=tuple(data["params"].items()),
        signed=bool(data.get("signed", True)),
        src_span=_span(data.get("src_span")),
    )


def to_csv(attr: Attribution) -> str:
    """Long format (``Attribution.to_pandas``): one row per (step, input token) score, source then prefix."""
    frame = attr.to_pandas()
    frame["delta"] = frame["delta"].map(lambda v: "" if np.isnan(v) else f"{v:.9g}")
    frame["params"] = json.dumps(
        {**dict(attr.params), "_steps": list(attr.steps), "_signed": attr.signed, "_src_span": attr.src_span},
        ensure_ascii=False,
    )
    return frame[CSV_COLUMNS].to_csv(index=False, float_format="%.9g", lineterminator="\r\n")


def from_csv(text: str) -> Attribution:
    """Rebuild an attribution from ``to_csv`` output (explained steps are taken from the params)."""
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows or set(CSV_COLUMNS) - set(rows[0]):
        raise ValueError(f"not a Lantern attribution CSV (expected columns {', '.join(CSV_COLUMNS)})")
    n_tgt = max(int(r["step"]) for r in rows) + 1
    tokens: dict[str, dict[int, str]] = {"source": {}, "prefix": {}}
    tgt, logp, ent, delta = [""] * n_tgt, np.zeros(n_tgt), np.zeros(n_tgt), np.zeros(n_tgt)
    for r in rows:
        t = int(r["step"])
        tokens[r["side"]][int(r["position"])] = r["input_token"]
        tgt[t], logp[t], ent[t] = r["output_token"], float(r["step_logprob"]), float(r["step_entropy"])
        delta[t] = float(r["delta"] or "nan")
    mats = {side: np.zeros((n_tgt, len(tokens[side])), dtype=np.float32) for side in tokens}
    for r in rows:
        mats[r["side"]][int(r["step"]), int(r["position"])] = float(r["score"])
    first, params = rows[0], json.loads(rows[0]["params"])
    return Attribution(
        model=first["model"],
        method=first["method"],
        target=first["target"],
        contrast=first["contrast"],
        src_tokens=tuple(tokens["source"][j] for j in range(len(tokens["source"]))),
        tgt_tokens=tuple(tgt),
        prefix_tokens=tuple(tokens["prefix"][j] for j in range(len(tokens["prefix"]))),
        scores=mats["source"],
        prefix_scores=mats["prefix"] if tokens["prefix"] else None,
        step_logprobs=logp.astype(np.float32),
        step_entropy=ent.astype(np.float32),
        delta=None if np.isnan(delta).all() else delta.astype(np.float32),
        steps=tuple(params.pop("_steps", ())),
        signed=bool(params.pop("_signed", True)),
        src_span=_span(params.pop("_src_span", None)),
        params=tuple(params.items()),
    )
