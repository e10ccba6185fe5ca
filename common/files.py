"""Files written so that a reader (or a crash) never sees half of them."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield a temporary folder that replaces ``path`` only once the block completes.

    A crash inside the block leaves ``path`` as it was; a crash between the two renames leaves
    ``path.old``, which ``existing_dir`` still finds.
    """
    path = Path(path)
    tmp, old = path.with_name(path.name + ".tmp"), path.with_name(path.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    yield tmp
    if path.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def existing_dir(path: Path) -> Path | None:
    """``path`` if complete, else the ``.old`` copy an interrupted ``atomic_dir`` left, else None."""
    path = Path(path)
    for candidate in (path, path.with_name(path.name + ".old")):
        if (candidate / "config.json").exists():
            return candidate
    return None


def write_json(path: Path, data: Any) -> None:
    """Write JSON via a temporary file and a rename, so readers never see half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (ended, not yet reaped by its parent) is not running
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (OSError, IndexError):
        return True


def start_recording_exit(cmd: list[str], cwd: Path, log: Path, exitcode: Path) -> int:
    """Start ``cmd`` in its own session, output to ``log``; a shell around it writes its exit code to ``exitcode``,
    so any later process can tell finished from failed from cancelled. Returns the shell's pid."""
    script = " ".join(shlex.quote(c) for c in cmd) + f"; echo $? > {shlex.quote(str(exitcode))}"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            ["sh", "-c", script],
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return proc.pid


def terminate_children(pid: int) -> None:
    """SIGTERM to the children of the shell ``pid`` (started by ``start_recording_exit``), so the shell lives on to
    record the exit code; to the shell itself when it has no children."""
    try:
        children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        children = []
    for child in children or [pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGTERM)
