"""Read arrays back out of a plotly JSON spec (plotly 6+ encodes them as base64 typed arrays)."""

import base64
import json

import numpy as np


def decode(value: object) -> np.ndarray:
    if isinstance(value, dict) and "bdata" in value:
        arr = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        if "shape" in value:
            arr = arr.reshape(tuple(int(n) for n in str(value["shape"]).split(",")))
        return arr
    return np.asarray(value)


def trace_array(spec: str, key: str, trace: int = 0) -> np.ndarray:
    """``key`` ("z", "x", ...) of trace ``trace`` in a figure's JSON spec."""
    return decode(json.loads(spec)["data"][trace][key])
