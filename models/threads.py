"""How many intra-op threads torch uses: the cores nobody else wants, shared by the computations in flight.

torch's default (one thread per core) is the fastest choice on an idle machine and a bad one on a shared
machine: intra-op threads wait at every barrier for a thread whose core another process holds. Measured on a
2-core AMD EPYC with one competing CPU-bound process (bench/threads.md), two threads made integrated gradients
2.2x and greedy translation 4.8x slower than one thread. The policy:

    threads = max(1, floor((cores - others) / in_flight + 0.2)), at most ``cores``

``cores``: the CPUs this process may run on (its affinity, capped by a cgroup CPU quota). ``others``: runnable
threads of *other* processes (``/proc/stat`` procs_running less this process's own running threads), averaged
over the last second by a sampling thread. ``in_flight``: Lantern computations running in this process (app
sessions run in threads of one process).

torch's count is per thread (OpenMP keeps it per calling thread once that thread has run a parallel op), so each
computation applies the policy's current count itself: when it starts, and between its chunks (``refresh()``,
called by the explanation engines' progress callbacks and by the trainer after every step). A competitor that
appears in the middle of a long attribution is thus seen within a second and the next chunk runs with fewer
threads; a request that ends gives its cores back to the others at their next chunk.

``LANTERN_THREADS=n`` fixes n threads and turns the policy off (``0`` or unset: the policy).
"""

from __future__ import annotations

import functools
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

ENV = "LANTERN_THREADS"
SAMPLE_SECONDS = 0.1  # a sample reads /proc/stat and each thread's stat: ~1 % of a core in the server
WINDOW = 10  # samples averaged: the last second
IDLE_SECONDS = 5.0  # the sampler stops this long after the last computation ended


def usable_cores() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup v2 CPU quota when one is set."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def _own_running() -> int:
    """Threads of this process in state R (running or waiting for a core)."""
    n = 0
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return 0
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/stat", "rb") as f:
                stat = f.read()
        except OSError:  # the thread ended meanwhile
            continue
        end = stat.rfind(b")")
        n += stat[end + 2 : end + 3] == b"R"
    return n


def others_running() -> float:
    """Runnable threads of other processes right now (0 where /proc is not available)."""
    try:
        with open("/proc/stat", "rb") as f:
            for line in f:
                if line.startswith(b"procs_running"):
                    return max(0.0, float(int(line.split()[1]) - _own_running()))
    except OSError:
        pass
    return 0.0


def fixed_threads() -> int | None:
    """The thread count ``LANTERN_THREADS`` fixes, or None for the policy."""
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return None
    try:
        n = int(raw)
    except ValueError:
        raise ValueError(f"{ENV} must be a whole number of threads (0 for the adaptive policy), not {raw!r}") from None
    if n < 0:
        raise ValueError(f"{ENV} must be 0 (the adaptive policy) or a positive number of threads, not {n}")
    return n or None


def choose(cores: int, others: float, in_flight: int) -> int:
    """The policy itself: the free cores shared by the computations in flight, at least one thread each."""
    free = cores - others
    return max(1, min(cores, math.floor(free / max(in_flight, 1) + 0.2)))


def _set_torch_threads(n: int) -> None:
    import torch

    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


class ThreadPolicy:
    """Intra-op thread counts from the machine's load; ``slot()`` wraps each computation, ``refresh()`` re-applies."""

    def __init__(
        self,
        cores: int | None = None,
        fixed: int | None = None,
        sampler: Callable[[], float] = others_running,
        apply: Callable[[int], None] = _set_torch_threads,
    ) -> None:
        self.cores = cores or usable_cores()
        self.fixed = fixed
        self.sampler, self.apply_threads = sampler, apply
        self.in_flight = 0
        self.samples: deque[float] = deque(maxlen=WINDOW)
        self._lock = threading.Lock()
        self._local = threading.local()  # per thread: slot depth, the count applied in this thread
        self._monitor: threading.Thread | None = None
        self._busy = threading.Event()  # set while computations run (and IDLE_SECONDS after): the sampler runs
        self._last_end = 0.0

    @property
    def others(self) -> float:
        with self._lock:
            return sum(self.samples) / len(self.samples) if self.samples else 0.0

    def threads(self) -> int:
        """The thread count the policy chooses now."""
        if self.fixed:
            return self.fixed
        return choose(self.cores, self.others, self.in_flight)

    def _apply_here(self) -> int:
        """Apply the current count in the calling thread (torch's setting is per thread); returns it."""
        n = self.threads()
        if getattr(self._local, "applied", None) != n:
            self._local.applied = n
            self.apply_threads(n)
        return n

    def refresh(self) -> None:
        """Between chunks of a computation: follow the load and the requests in flight (no-op outside a slot)."""
        if getattr(self._local, "depth", 0):
            self._apply_here()

    def _sample_forever(self) -> None:
        """Sample while computations run and for a few seconds after; sleep while the process is idle."""
        while True:
            self._busy.wait()
            time.sleep(SAMPLE_SECONDS)
            value = self.sampler()
            with self._lock:
                self.samples.append(value)
                if not self.in_flight and time.monotonic() - self._last_end > IDLE_SECONDS:
                    self._busy.clear()
                    self.samples.clear()  # stale by the next computation, which starts a new window

    def _start_monitor(self) -> None:
        """(Under the lock.) A computation starts: sample now when there is no recent history, keep sampling."""
        if self.fixed:
            return
        if not self.samples:
            self.samples.append(self.sampler())  # the first computation need not wait for a second of history
        self._busy.set()
        if self._monitor is None:
            self._monitor = threading.Thread(target=self._sample_forever, name="lantern-threads", daemon=True)
            self._monitor.start()

    @contextmanager
    def slot(self) -> Iterator[int]:
        """One computation in flight (nested slots in the same thread count once); yields the thread count."""
        depth = getattr(self._local, "depth", 0)
        self._local.depth = depth + 1
        try:
            if not depth:
                with self._lock:
                    self._start_monitor()
                    self.in_flight += 1
            try:
                yield self._apply_here()
            finally:
                if not depth:
                    with self._lock:
                        self.in_flight -= 1
                        self._last_end = time.monotonic()
        finally:
            self._local.depth = depth


_policy: ThreadPolicy | None = None
_policy_lock = threading.Lock()


def policy() -> ThreadPolicy:
    """This process's policy (``LANTERN_THREADS`` read on first use)."""
    global _policy
    with _policy_lock:
        if _policy is None:
            _policy = ThreadPolicy(fixed=fixed_threads())
        return _policy


@contextmanager
def computation() -> Iterator[int]:
    """Run a model computation under the thread policy: ``with computation(): ...``."""
    with policy().slot() as n:
        yield n


def refresh() -> None:
    """Call between chunks of a long computation: its thread count follows the load (cheap; no-op outside one)."""
    policy().refresh()


def configure(fixed: int | None = None) -> ThreadPolicy:
    """Replace this process's policy (benchmarks and tests): ``fixed`` threads, or None for the adaptive policy."""
    global _policy
    with _policy_lock:
        _policy = ThreadPolicy(fixed=fixed)
        return _policy


def under_policy(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorator: ``fn`` runs as one computation under the thread policy."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with computation():
            return fn(*args, **kwargs)

    return wrapper
