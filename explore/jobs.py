"""Explorer runs in the background: one process per (model, dataset), progress on disk, cancel, cached results.

The app starts ``python -m explore.run`` as its own process (like a training job), so a run survives the page
being left or the browser closed, other sessions stay responsive, and any session that asks for the same model and
dataset finds the run in progress or its finished table (``explore.run.run_folder``: model weights and dataset text
are in the key).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.files import process_alive, start_recording_exit, terminate_children
from common.paths import REPO_ROOT
from explore.run import PROGRESS, SUMMARY, TABLE, model_key, run_folder, runs_root
from explore.sets import Dataset
from models.registry import ModelSpec

MAX_RUNNING = 2  # explorer processes at once on this server; more would only share the same cores
UPLOAD = "upload.tsv"


class ExploreJobError(RuntimeError):
    """A run that cannot start; the message says why."""


@dataclass(frozen=True)
class ExploreJob:
    folder: Path
    status: str  # "absent", "running", "finished", "failed", "cancelled"
    done: int = 0
    total: int = 0
    message: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def status(folder: Path) -> ExploreJob:
    """What is known of the run kept in ``folder``."""
    meta = _read(folder / "job.json")
    progress = _read(folder / PROGRESS)
    done, total = int(progress.get("done", 0)), int(progress.get("total", meta.get("sentences", 0)))
    if (folder / TABLE).is_file() and (folder / SUMMARY).is_file():
        return ExploreJob(folder, "finished", total or done, total or done, meta=meta)
    if not meta:
        return ExploreJob(folder, "absent")
    code = (folder / "exitcode").read_text().strip() if (folder / "exitcode").is_file() else None
    if code is None and process_alive(int(meta["pid"])):
        return ExploreJob(folder, "running", done, total, meta=meta)
    if (folder / "cancel-requested").exists():
        return ExploreJob(folder, "cancelled", done, total, "cancelled", meta)
    log = (folder / "run.log").read_text(encoding="utf-8", errors="replace").strip().splitlines()
    message = next((line for line in reversed(log) if line.strip()), "the process ended without a message")
    return ExploreJob(folder, "failed", done, total, message.removeprefix("error: "), meta)


def running() -> list[ExploreJob]:
    root = runs_root()
    if not root.is_dir():
        return []
    jobs = (status(f) for f in root.iterdir() if (f / "job.json").is_file())
    return [j for j in jobs if j.status == "running"]


def folder_for(spec: ModelSpec, ds: Dataset, second: ModelSpec | None = None) -> Path:
    return run_folder(model_key(spec), ds, second.name if second else "")


def _model_arg(spec: ModelSpec) -> str:
    return spec.name if spec.kind in ("checkpoint", "packaged") else spec.source


def start(spec: ModelSpec, ds: Dataset, second: ModelSpec | None = None) -> ExploreJob:
    """Start a run unless it is running or finished already; returns its status."""
    folder = folder_for(spec, ds, second)
    now = status(folder)
    if now.status in ("running", "finished"):
        return now
    if len(running()) >= MAX_RUNNING:
        raise ExploreJobError(
            f"{MAX_RUNNING} dataset runs are in progress on this server; start this one when one of them ends"
        )
    for name in ("exitcode", "cancel-requested", PROGRESS):
        (folder / name).unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "explore.run", "--model", _model_arg(spec), "--out", str(folder), "--progress"]
    if ds.name.startswith("upload:"):
        refs = ds.references or ("",) * len(ds)
        (folder / UPLOAD).write_text("".join(f"{s}\t{r}\n" for s, r in zip(ds.sources, refs, strict=True)), "utf-8")
        cmd += ["--tsv", str(folder / UPLOAD), "--src-lang", ds.src_lang, "--tgt-lang", ds.tgt_lang or ""]
    else:
        cmd += ["--dataset", ds.name]
    if second is not None:
        cmd += ["--second", _model_arg(second)]
    pid = start_recording_exit(cmd, REPO_ROOT, folder / "run.log", folder / "exitcode")
    meta = {
        "pid": pid,
        "model": spec.name,
        "second": second.name if second else "",
        "dataset": ds.name,
        "title": ds.title,
        "sentences": len(ds),
        "started": time.time(),
    }
    (folder / "job.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return status(folder)


def cancel(folder: Path) -> None:
    """Stop a running run (SIGTERM to the explorer process; the shell lives on to record the exit code)."""
    meta = _read(folder / "job.json")
    if not meta:
        return
    (folder / "cancel-requested").touch()
    terminate_children(int(meta["pid"]))
