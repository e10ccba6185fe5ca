"""Several app replicas behind HAProxy, with sticky sessions: when one Streamlit process is not enough.

    python -m tools.replicas --replicas 2 --port 8500           # http://127.0.0.1:8500 serves the app
    python -m tools.replicas --replicas 2 --pin                 # each replica on its own share of the cores
    python -m tools.replicas --print-config                     # the HAProxy configuration it runs

Each replica is a plain ``streamlit run app.py`` on its own port. HAProxy (Debian's ``haproxy`` package)
sends a new visitor to the replica with the fewest connections and sets a ``LANTERN_REPLICA`` cookie, so a
browser's later requests, its WebSocket and its downloads (held in the memory of the replica that made them)
reach the same replica. A session's state lives in its URL and its saved files, so any replica opens a shared
link. The replicas share one cookie secret (a form posted to another replica after a failover still passes
XSRF checks), the checkpoints, the saved sessions and the training jobs folder (same machine, same disk).
``--pin`` gives each replica an equal share of the cores (its thread policy, models/threads.py, then sees only
those).
deploy/haproxy.cfg is this configuration for two replicas on ports 8501 and 8502 behind 8500.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from tools.browser import REPO, _healthy, free_port, streamlit_command

COOKIE = "LANTERN_REPLICA"


def haproxy_config(port: int, replica_ports: list[int], address: str = "127.0.0.1") -> str:
    servers = "\n".join(
        f"    server r{i} 127.0.0.1:{p} check cookie r{i}" for i, p in enumerate(replica_ports, start=1)
    )
    return f"""\
# Lantern behind HAProxy: {len(replica_ports)} replicas, sticky sessions. Written by `python -m tools.replicas`.
global
    maxconn 2000

defaults
    mode http
    option forwardfor
    timeout connect 5s
    timeout client 60s
    timeout server 600s      # a long attribution's page run
    timeout tunnel 1h        # each session's WebSocket (/_stcore/stream)
    timeout http-request 30s

frontend lantern
    bind {address}:{port}
    default_backend replicas

backend replicas
    balance leastconn        # each session holds a WebSocket: the replica with the fewest gets the next visitor
    # a new visitor gets a replica; the cookie keeps its requests, WebSocket and downloads there
    cookie {COOKIE} insert indirect nocache httponly
    option redispatch        # a visitor whose replica is down goes to another (its link restores the view)
    http-response set-header X-Lantern-Replica %s
    option httpchk GET /_stcore/health
    http-check expect string ok
{servers}
"""


def haproxy_path() -> str | None:
    return shutil.which("haproxy") or next(
        (p for p in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if os.access(p, os.X_OK)), None
    )


def core_shares(n: int) -> list[set[int]]:
    """This process's cores split into ``n`` near-equal sets (every replica gets at least one)."""
    cores = sorted(os.sched_getaffinity(0))
    return [set(cores[i * len(cores) // n : (i + 1) * len(cores) // n] or [cores[i % len(cores)]]) for i in range(n)]


def _start(cmd: list[str], env: dict[str, str], log, cores: set[int] | None) -> subprocess.Popen:
    def pin() -> None:
        if cores:
            os.sched_setaffinity(0, cores)

    return subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=pin
    )


def _stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextmanager
def running_replicas(
    n: int = 2,
    port: int | None = None,
    env: dict[str, str] | None = None,
    pin: bool = False,
    timeout: float = 120,
    address: str = "127.0.0.1",
    replica_ports: list[int] | None = None,
) -> Iterator[tuple[str, list[str]]]:
    """Yield (proxy URL, replica URLs) of ``n`` healthy replicas behind HAProxy; stop them all afterwards.
    Ports not given are free ones."""
    haproxy = haproxy_path()
    if haproxy is None:
        raise FileNotFoundError("haproxy is not installed (apt-get install haproxy)")
    port = port or free_port()
    ports = replica_ports or [free_port() for _ in range(n)]
    base = dict(env if env is not None else os.environ)
    base.setdefault("STREAMLIT_SERVER_COOKIE_SECRET", secrets.token_hex(32))  # shared by every replica
    shares = core_shares(n) if pin else [None] * n
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lantern-replicas-")))
        procs = []
        for i, (p, cores) in enumerate(zip(ports, shares, strict=True), start=1):
            log = stack.enter_context(open(workdir / f"r{i}.log", "w+"))
            procs.append(_start(streamlit_command(p), base, log, cores))
            stack.callback(_stop, procs[-1])
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        url = f"http://{address}:{port}"
        deadline = time.time() + timeout

        def wait_for(targets: list[str], running: list[subprocess.Popen], names: list[str]) -> None:
            while not all(_healthy(u) for u in targets):
                for proc, name in zip(running, names, strict=True):
                    if proc.poll() is not None:
                        raise RuntimeError(f"{name} exited:\n{(workdir / f'{name}.log').read_text()[-3000:]}")
                if time.time() > deadline:
                    raise RuntimeError(f"not healthy after {timeout:g} s: {', '.join(targets)}")
                time.sleep(0.3)

        # the proxy starts once every replica answers, so its first health checks find them all up
        wait_for(urls, procs, [f"r{i}" for i in range(1, n + 1)])
        config = workdir / "haproxy.cfg"
        config.write_text(haproxy_config(port, ports, address), encoding="utf-8")
        log = stack.enter_context(open(workdir / "haproxy.log", "w+"))
        proxy = _start([haproxy, "-db", "-f", str(config)], base, log, None)
        stack.callback(_stop, proxy)
        wait_for([url], [proxy], ["haproxy"])
        yield url, urls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicas", type=int, default=2, help="Streamlit processes (default 2)")
    ap.add_argument("--port", type=int, default=8500, help="the proxy's port (default 8500)")
    ap.add_argument("--address", default="127.0.0.1", help="the proxy's address (0.0.0.0 to serve the network)")
    ap.add_argument("--pin", action="store_true", help="give each replica its own share of the cores")
    ap.add_argument("--print-config", action="store_true", help="print the HAProxy configuration and exit")
    args = ap.parse_args()
    if args.replicas < 1:
        ap.error("--replicas must be at least 1")
    if args.print_config:
        print(haproxy_config(args.port, [args.port + i for i in range(1, args.replicas + 1)], args.address), end="")
        return
    try:
        ports = [args.port + i for i in range(1, args.replicas + 1)]
        with running_replicas(args.replicas, args.port, None, args.pin, 120, args.address, ports) as (url, urls):
            print(f"Lantern: {url} ({args.replicas} replicas: {', '.join(urls)}); Ctrl+C stops them all", flush=True)
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    except (FileNotFoundError, RuntimeError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
