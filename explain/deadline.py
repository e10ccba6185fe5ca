"""Time limits for long computations: a progress callback that also stops the work when its time is up.

The engines call ``progress(fraction)`` after every batched chunk; ``with_deadline`` wraps the caller's
callback (which may itself stop the work, e.g. when the app's session has ended) with a time limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable

Progress = Callable[[float], None]


class ComputationTimeout(RuntimeError):
    """A computation ran past its time limit (checked between batched chunks)."""


def with_deadline(progress: Progress | None, time_limit: float | None) -> Progress | None:
    """``progress`` that also raises ``ComputationTimeout`` once ``time_limit`` seconds have passed."""
    if time_limit is None:
        return progress
    deadline = time.monotonic() + time_limit

    def check(fraction: float) -> None:
        if time.monotonic() > deadline and fraction < 1.0:
            raise ComputationTimeout(
                f"stopped after {time_limit:g} s, {fraction:.0%} done: fewer steps or samples, or a shorter text"
            )
        if progress:
            progress(fraction)

    return check
