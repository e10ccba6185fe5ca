"""Time limits for long computations: a progress callback that also stops the work when its time is up.

The engines call ``progress(fraction)`` after every batched chunk; ``with_deadline`` wraps the caller's
callback (which may itself stop the work, e.g. when the app's session has ended) with a time limit, and lets
the thread policy (models/threads.py) adjust the computation's thread count between chunks.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from models import threads

Progress = Callable[[float], None]


class ComputationTimeout(RuntimeError):
    """A computation ran past its time limit (checked between batched chunks)."""


def with_deadline(progress: Progress | None, time_limit: float | None) -> Progress:
    """``progress`` that also raises ``ComputationTimeout`` once ``time_limit`` seconds have passed (never, for
    None) and re-applies the thread policy."""
    deadline = None if time_limit is None else time.monotonic() + time_limit

    def check(fraction: float) -> None:
        threads.refresh()
        if deadline is not None and time.monotonic() > deadline and fraction < 1.0:
            raise ComputationTimeout(
                f"stopped after {time_limit:g} s, {fraction:.0%} done: fewer steps or samples, or a shorter text"
            )
        if progress:
            progress(fraction)

    return check
