"""Every limit a Lantern server applies to one request, in one table, each overridable by an environment variable.

The app and the API read them through ``limit(key)`` at the moment they apply them, so a deployment (or a test)
can change one without touching code; a value that is not a positive number is ignored with a warning. The
README's "Limits" table lists the same rows (a test keeps the two in step).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    env: str  # the environment variable that overrides it
    default: float
    unit: str
    what: str

    def value(self) -> float:
        raw = os.environ.get(self.env)
        if raw is None:
            return self.default
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value > 0):
            log.warning("$%s=%r is not a positive number; using %g", self.env, raw, self.default)
            return self.default
        return value


LIMITS: dict[str, Limit] = {
    "input_chars": Limit(
        "LANTERN_MAX_INPUT_CHARS", 5000, "characters", "a source text or prompt (longer texts are refused)"
    ),
    "confirm_token_passes": Limit(
        "LANTERN_CONFIRM_TOKEN_PASSES",
        150_000,
        "token passes",
        "an attribution above this waits for the user to confirm it",
    ),
    "max_token_passes": Limit(
        "LANTERN_MAX_TOKEN_PASSES", 2_000_000, "token passes", "an attribution above this is refused"
    ),
    "confirm_eval_token_passes": Limit(
        "LANTERN_CONFIRM_EVAL_TOKEN_PASSES",
        3_000_000,
        "token passes",
        "faithfulness measures above this wait for the user to confirm them",
    ),
    "request_seconds": Limit(
        "LANTERN_REQUEST_SECONDS", 120, "seconds", "one generation, attribution or check stops after this long"
    ),
    "attribution_mb": Limit("LANTERN_ATTRIBUTION_MB", 1500, "MB", "activations one batched attribution chunk may hold"),
    "max_model_mb": Limit(
        "LANTERN_MAX_MODEL_MB", 3000, "MB", "a model's weights in fp32 (larger models are refused before loading)"
    ),
    "url_value_chars": Limit(
        "LANTERN_MAX_URL_VALUE", 2000, "characters", "a value written into the page's link (longer: left out)"
    ),
    "session_bytes": Limit("LANTERN_MAX_SESSION_BYTES", 5 * 2**20, "bytes", "a saved session file that is loaded"),
    "upload_bytes": Limit("LANTERN_MAX_UPLOAD_BYTES", 5 * 2**20, "bytes", "a corpus uploaded or pasted to train on"),
    "job_minutes": Limit("LANTERN_MAX_JOB_MINUTES", 30, "minutes", "one training job started from the app"),
    "job_days": Limit("LANTERN_JOB_DAYS", 7, "days", "an ended training job is kept this long, then deleted"),
    "jobs_disk_mb": Limit("LANTERN_JOBS_MB", 2000, "MB", "the jobs folder; over it, no new job starts"),
}


def markdown_table() -> str:
    """The README's table of limits (``python -c "from common.limits import markdown_table as t; print(t())"``)."""
    rows = ["| what | default | environment variable |", "|---|---|---|"]
    for item in LIMITS.values():
        rows.append(f"| {item.what[0].upper()}{item.what[1:]} | {item.default:,.0f} {item.unit} | `{item.env}` |")
    return "\n".join(rows)


def limit(key: str) -> float:
    """The current value of a limit (its environment variable, else its default)."""
    return LIMITS[key].value()
