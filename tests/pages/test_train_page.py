"""Training from the browser: a real background job end to end, malformed input, cancel."""

import time
from pathlib import Path

import pytest

from models.registry import list_models
from tests.pages.test_pages import open_page
from training.jobs import cancel_job, list_jobs

PAIRS = [(f"I see {n} cats.", f"Je vois {n} chats.") for n in range(40)] + [
    (f"You have {n} dogs.", f"Tu as {n} chiens.") for n in range(40)
]


@pytest.fixture()
def jobs_env(app_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LANTERN_JOBS", str(tmp_path / "jobs"))
    monkeypatch.setenv("LANTERN_CHECKPOINTS", str(tmp_path / "checkpoints"))
    return tmp_path


def submit(**state: object):
    at = open_page(
        "app_pages/train.py",
        **{"train.source": "paste TSV lines", "train.arch": "lstm", "train.preset": "tiny", **state},
    )
    at.button(key="FormSubmitter:train.form-Start training").click().run()
    return at


def wait_for(job_name: str, status: set[str], timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        jobs = [j for j in list_jobs() if j.name == job_name]
        if jobs and jobs[0].status in status:
            return
        time.sleep(0.5)
    raise AssertionError(f"{job_name} did not reach {status}: {[(j.name, j.status, j.message) for j in list_jobs()]}")


def test_malformed_paste_gives_the_message_and_leaves_nothing(jobs_env):
    at = submit(**{"train.pasted": "I love you.\tJe t'aime.\nno tab here\n", "train.name": "broken"})
    assert not at.exception
    assert any("line 2 has 1 tab-separated fields" in e.value.replace("\\", "") for e in at.error)  # escaped Markdown
    assert list_jobs() == [] and not (jobs_env / "checkpoints" / "broken").exists()


def test_a_pasted_corpus_has_the_upload_limit(jobs_env, monkeypatch):
    monkeypatch.setenv("LANTERN_MAX_UPLOAD_BYTES", "2000")
    text = "\n".join(f"{a}\t{b}" for a, b in PAIRS)  # ~3 kB
    at = submit(**{"train.pasted": text, "train.name": "too-big"})
    assert not at.exception
    assert any("2,000 bytes" in e.value.replace("\\", "") for e in at.error)
    assert list_jobs() == []


def test_a_tiny_job_trains_in_the_background_and_its_model_appears(jobs_env):
    text = "\n".join(f"{a}\t{b}" for a, b in PAIRS)
    at = submit(**{"train.pasted": text, "train.name": "web-tiny", "train.src_lang": "en", "train.tgt_lang": "fr"})
    assert not at.exception, at.exception
    assert any("in the background" in s.value for s in at.success)
    wait_for("web-tiny", {"finished", "failed"})
    job = next(j for j in list_jobs() if j.name == "web-tiny")
    assert job.status == "finished", job.message
    assert "web-tiny" in [s.name for s in list_models()]
    at = open_page("app_pages/train.py")
    assert not at.exception and len(at.get("plotly_chart")) == 1  # its training curves


def test_cancel_stops_the_job_and_exports_nothing(jobs_env):
    text = "\n".join(f"{a}\t{b}" for a, b in PAIRS * 20)
    submit(**{"train.pasted": text, "train.name": "web-cancel", "train.preset": "small", "train.minutes": 5})
    wait_for("web-cancel", {"running"})
    deadline = time.time() + 60
    while not list_jobs()[0].progress and time.time() < deadline:  # let it start training
        time.sleep(0.5)
    cancel_job(list_jobs()[0])
    wait_for("web-cancel", {"cancelled", "failed", "finished"})
    assert list_jobs()[0].status == "cancelled"
    assert not (jobs_env / "checkpoints" / "web-cancel").exists()
