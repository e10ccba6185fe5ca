"""The replica launcher's pieces that need no server: its HAProxy configuration and its core shares."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tools.browser import REPO
from tools.replicas import COOKIE, core_shares, haproxy_config, haproxy_path


def test_the_documented_configuration_is_the_one_the_launcher_runs():
    committed = (REPO / "deploy" / "haproxy.cfg").read_text(encoding="utf-8")
    assert committed == haproxy_config(8500, [8501, 8502])
    cli = subprocess.run(
        [sys.executable, "-m", "tools.replicas", "--print-config"], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert cli.stdout == committed


def test_every_replica_is_a_sticky_health_checked_server():
    config = haproxy_config(9000, [9001, 9002, 9003])
    servers = [line.split() for line in config.splitlines() if line.strip().startswith("server ")]
    assert [s[2] for s in servers] == ["127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003"]
    assert all("check" in s and s[s.index("cookie") + 1] == s[1] for s in servers)
    assert f"cookie {COOKIE} insert" in config and "bind 127.0.0.1:9000" in config
    assert "timeout tunnel" in config  # WebSockets outlive the default HTTP timeouts


@pytest.mark.skipif(haproxy_path() is None, reason="haproxy is not installed")
def test_haproxy_accepts_the_configuration(tmp_path):
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(haproxy_config(8500, [8501, 8502]), encoding="utf-8")
    out = subprocess.run([haproxy_path(), "-c", "-f", str(cfg)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_core_shares_split_the_cores(n):
    cores = os.sched_getaffinity(0)
    shares = core_shares(n)
    assert len(shares) == n and all(shares) and set().union(*shares) == cores
    if n <= len(cores):  # enough cores: no two replicas share one
        assert sum(len(s) for s in shares) == len(cores)
