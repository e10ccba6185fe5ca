"""The thread policy (models/threads.py): the count it chooses, its bookkeeping of computations in flight, its
reading of the machine's load, and that Lantern's computations run under it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
import torch

from models import threads
from models.threads import ThreadPolicy, choose


@pytest.mark.parametrize(
    ("cores", "others", "in_flight", "expected"),
    [
        (2, 0.0, 1, 2),  # idle: every core
        (2, 1.0, 1, 1),  # one competing process: the core left
        (2, 0.0, 2, 1),  # two requests share two cores
        (2, 0.0, 8, 1),  # never below one
        (8, 0.0, 2, 4),
        (8, 2.0, 3, 2),
        (2, 5.0, 1, 1),  # an overloaded machine
        (4, 0.9, 1, 3),  # a competitor that is nearly always running counts as one
        (4, 0.5, 1, 3),  # one running half the time: 3.5 cores free, 3 threads
    ],
)
def test_policy_shares_the_free_cores(cores, others, in_flight, expected):
    assert choose(cores, others, in_flight) == expected


class Recorder:
    """Stands in for torch.set_num_threads: records (thread, count) for every call."""

    def __init__(self):
        self.calls: list[tuple[str, int]] = []

    def __call__(self, n: int) -> None:
        self.calls.append((threading.current_thread().name, n))

    def last(self, thread: str) -> int | None:
        return next((n for t, n in reversed(self.calls) if t == thread), None)


def test_slots_count_computations_in_flight_and_nested_slots_once():
    rec = Recorder()
    policy = ThreadPolicy(cores=4, sampler=lambda: 0.0, apply=rec)
    me = threading.current_thread().name
    with policy.slot() as n:
        assert n == 4 and policy.in_flight == 1 and rec.last(me) == 4
        with policy.slot():  # a translation inside an attribution is the same computation
            assert policy.in_flight == 1
        inside, release = threading.Event(), threading.Event()

        def second() -> None:
            with policy.slot():
                inside.set()
                release.wait(5)

        t = threading.Thread(target=second, name="second")
        t.start()
        assert inside.wait(5)
        assert policy.in_flight == 2 and rec.last("second") == 2  # two requests: two threads each
        policy.refresh()  # the first request's next chunk
        assert rec.last(me) == 2
        release.set()
        t.join()
        assert policy.in_flight == 1
        policy.refresh()  # the remaining request gets every core back at its next chunk
        assert rec.last(me) == 4
    assert policy.in_flight == 0
    calls = len(rec.calls)
    policy.refresh()  # outside a computation: nothing to apply
    assert len(rec.calls) == calls


def test_the_count_is_applied_in_the_computing_thread_only_when_it_changes():
    rec = Recorder()
    policy = ThreadPolicy(cores=2, sampler=lambda: 0.0, apply=rec)
    with policy.slot():
        for _ in range(5):
            policy.refresh()
    assert rec.calls == [(threading.current_thread().name, 2)]


def test_a_competitor_that_appears_mid_computation_lowers_the_count():
    load = {"others": 0.0}
    rec = Recorder()
    me = threading.current_thread().name
    policy = ThreadPolicy(cores=2, sampler=lambda: load["others"], apply=rec)

    def wait_for(n: int) -> None:
        deadline = time.monotonic() + 5
        while rec.last(me) != n and time.monotonic() < deadline:
            time.sleep(0.02)
            policy.refresh()  # a chunk boundary
        assert rec.last(me) == n

    with policy.slot() as n:
        assert n == 2
        load["others"] = 1.0
        wait_for(1)  # within the sampling window, not at the next request
        load["others"] = 0.0
        wait_for(2)


def test_a_fixed_count_ignores_the_load():
    rec = Recorder()
    policy = ThreadPolicy(cores=8, fixed=3, sampler=lambda: 7.0, apply=rec)
    with policy.slot() as n, policy.slot():
        assert n == 3
        policy.refresh()
    assert [n for _, n in rec.calls] == [3]


@pytest.mark.parametrize(("raw", "expected"), [("", None), ("0", None), ("3", 3), (" 2 ", 2)])
def test_the_environment_variable(monkeypatch, raw, expected):
    monkeypatch.setenv(threads.ENV, raw)
    assert threads.fixed_threads() == expected


@pytest.mark.parametrize("raw", ["two", "-1", "1.5"])
def test_a_bad_environment_variable_says_what_it_takes(monkeypatch, raw):
    monkeypatch.setenv(threads.ENV, raw)
    with pytest.raises(ValueError, match=threads.ENV):
        threads.fixed_threads()


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs Linux affinity")
def test_usable_cores_follow_the_affinity_mask():
    code = (
        "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
        "from models.threads import usable_cores; print(usable_cores())"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.strip() == "1"


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="needs /proc")
def test_other_processes_are_counted_and_own_threads_are_not():
    def samples(fn, seconds: float = 0.5) -> list[float]:
        values, end = [], time.monotonic() + seconds
        while time.monotonic() < end:
            values.append(fn())
            time.sleep(0.01)
        return values

    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        # a CPU-bound process is runnable at every instant, whatever else the machine runs (a sample may still
        # miss it: /proc/stat and this process's threads are read one after the other)
        seen = samples(threads.others_running)
        assert sum(v >= 1 for v in seen) >= 0.8 * len(seen), seen
    finally:
        busy.kill()
        busy.wait()
    stop = threading.Event()
    a = torch.randn(256, 256)

    def spin() -> None:  # this process's own work (torch releases the GIL)
        while not stop.is_set():
            a @ a

    worker = threading.Thread(target=spin)
    worker.start()
    try:  # the spinning thread and the reading one are this process's: counted as its own, not as others
        own = sorted(samples(threads._own_running))
        assert own[len(own) // 2] >= 2, own
    finally:
        stop.set()
        worker.join()


def test_lantern_computations_run_under_the_policy(tokenizers):
    from explain.attribution import attribute
    from explain.generation import translate
    from models.adapter import LanternModel
    from tests.conftest import make_tiny_marian

    src, tgt = tokenizers
    lm = LanternModel("marian", make_tiny_marian(len(src), len(tgt)), src, tgt)

    seen: list[int] = []
    policy = ThreadPolicy(cores=2, sampler=lambda: 0.0, apply=lambda n: seen.append(policy.in_flight))
    saved = threads._policy
    threads._policy = policy
    try:
        tr = translate(lm, "我爱你。")
        attribute(lm, tr, "integrated_gradients", n_steps=4)
    finally:
        threads._policy = saved
    assert seen and set(seen) == {1}  # applied while exactly one computation was in flight
    assert policy.in_flight == 0


def test_the_sampler_sleeps_while_nothing_runs(monkeypatch):
    monkeypatch.setattr(threads, "IDLE_SECONDS", 0.2)
    calls = []
    policy = ThreadPolicy(cores=2, sampler=lambda: calls.append(1) or 0.0, apply=lambda n: None)
    with policy.slot():
        deadline = time.monotonic() + 5
        while len(calls) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert len(calls) >= 3  # sampling while the computation runs
    deadline = time.monotonic() + 5
    while policy._busy.is_set() and time.monotonic() < deadline:  # idle: the sampler stops after IDLE_SECONDS
        time.sleep(0.05)
    assert not policy._busy.is_set() and not policy.samples
    time.sleep(0.3)  # let a sample in flight finish
    settled = len(calls)
    time.sleep(0.5)
    assert len(calls) == settled
    with policy.slot():  # the next computation starts a fresh window at once
        assert len(policy.samples) == 1
