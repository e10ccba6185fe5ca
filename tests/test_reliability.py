"""Reliability through the API (issue 16): sizes, costs, locks and jobs a careless or hostile user can reach."""

import json
import threading
import time
from pathlib import Path

import pytest
import torch

from explain.attribution import attribute
from explain.generation import force_translation, translate
from models.adapter import Decoding, InputError, LanternModel
from models.decoding import PretrainedModelError
from tests.conftest import make_tiny_llama, make_tiny_lstm
from training.corpora import Pair


@pytest.fixture()
def lm(tokenizers) -> LanternModel:
    src, tgt = tokenizers
    return LanternModel("lstm", make_tiny_lstm(len(src), len(tgt), seed=1), src, tgt)


def test_f3_the_api_refuses_texts_over_the_input_limit(lm, monkeypatch):
    with pytest.raises(InputError, match="10,000 characters; Lantern reads up to 5,000"):
        translate(lm, "我" * 10_000)
    monkeypatch.setenv("LANTERN_MAX_INPUT_CHARS", "20000")  # a deployment may allow more
    assert translate(lm, "我" * 10_000, Decoding(max_new_tokens=2)).truncated


def test_f12_a_forced_output_has_the_same_limits(lm):
    with pytest.raises(InputError, match="characters"):
        force_translation(lm, "我爱你。", "love " * 2000)
    with pytest.raises(InputError, match="tokens"):
        force_translation(lm, "我爱你。", ids=tuple([5] * 600))


def test_f6_a_long_attribution_does_not_hold_up_a_short_request_on_the_same_model(lm, monkeypatch):
    """The model's lock is held for each batched forward pass, not the whole attribution: a translation asked for
    while integrated gradients runs finishes before it, between two of its chunks."""
    monkeypatch.setenv("LANTERN_ATTRIBUTION_MB", "1")  # many small chunks
    tr = translate(lm, "我爱你。他喜欢狗。", Decoding(max_new_tokens=12))
    started, finished = threading.Event(), threading.Event()

    def progress(fraction: float) -> None:
        started.set()

    def long_run() -> None:
        attribute(lm, tr, "integrated_gradients", n_steps=256, progress=progress)
        finished.set()

    worker = threading.Thread(target=long_run)
    worker.start()
    assert started.wait(60)
    short = translate(lm, "你好。", Decoding(max_new_tokens=4))
    done_first = not finished.is_set()
    worker.join()
    assert short.tgt_ids and done_first


def test_f9_a_model_folder_too_large_for_the_server_is_refused_before_it_allocates(tmp_path, monkeypatch, tokenizers):
    from models.loading import load_model

    _, tgt = tokenizers
    folder = tmp_path / "roots" / "huge"
    make_tiny_llama(len(tgt)).save_pretrained(folder)
    tgt.save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(vocab_size=10**9, hidden_size=10**6)  # 10^15 parameters
    (folder / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv("LANTERN_MODEL_ROOTS", str(tmp_path / "roots"))
    with pytest.raises(PretrainedModelError, match="too large"):
        load_model(str(folder))
    monkeypatch.setenv("LANTERN_MAX_MODEL_MB", "0.01")  # and a real small model above a low limit
    small = tmp_path / "roots" / "small"
    make_tiny_llama(len(tgt)).save_pretrained(small)
    tgt.save_pretrained(small)
    with pytest.raises(PretrainedModelError, match="LANTERN_MAX_MODEL_MB"):
        load_model(str(small))


def job_pairs(n: int = 80) -> list[Pair]:
    return [Pair(f"I see {i} cats.", f"Je vois {i} chats.") for i in range(n)]


@pytest.fixture()
def jobs_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LANTERN_JOBS", str(tmp_path / "jobs"))
    monkeypatch.setenv("LANTERN_CHECKPOINTS", str(tmp_path / "checkpoints"))
    return tmp_path / "jobs"


def test_f10_three_starts_in_the_same_second_start_one_job(jobs_root):
    from training.jobs import JobError, cancel_job, list_jobs, start_job

    results: list[object] = []
    barrier = threading.Barrier(3)

    def click(i: int) -> None:
        barrier.wait()
        try:
            results.append(start_job(job_pairs(), f"race-{i}", "lstm", "tiny", 1.0, "en", "fr"))
        except JobError as err:
            results.append(err)

    threads = [threading.Thread(target=click, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    started = [r for r in results if not isinstance(r, JobError)]
    assert len(started) == 1, results
    assert all("one model at a time" in str(r) for r in results if isinstance(r, JobError))
    for job in list_jobs():
        cancel_job(job)
    _wait_until_ended(list_jobs)


def _wait_until_ended(list_jobs, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and any(j.status == "running" for j in list_jobs()):
        time.sleep(0.3)


def test_f11_pasted_corpora_have_the_upload_limit_and_old_jobs_go(jobs_root, monkeypatch):
    from training.jobs import JobError, check_corpus_size, delete_job, list_jobs, remove_old_jobs, start_job

    monkeypatch.setenv("LANTERN_MAX_UPLOAD_BYTES", "1000")
    with pytest.raises(JobError, match="1,000 bytes"):
        check_corpus_size(("I see cats.\tJe vois des chats.\n" * 100).encode())
    job = start_job(job_pairs(), "old-job", "lstm", "tiny", 1.0, "en", "fr")
    from training.jobs import cancel_job

    cancel_job(job)
    _wait_until_ended(list_jobs)
    assert list_jobs()[0].status in ("cancelled", "failed", "finished")
    assert remove_old_jobs(max_age_days=30) == []  # young: kept
    meta = json.loads((job.folder / "job.json").read_text())
    meta["started"] -= 40 * 86400
    (job.folder / "job.json").write_text(json.dumps(meta))
    assert remove_old_jobs(max_age_days=30) == [job.id] and not job.folder.exists()
    job = start_job(job_pairs(), "kept-job", "lstm", "tiny", 1.0, "en", "fr")
    with pytest.raises(JobError, match="running"):
        delete_job(job)  # a running job is cancelled first, never deleted under the trainer
    cancel_job(job)
    _wait_until_ended(list_jobs)
    delete_job(list_jobs()[0])
    assert list_jobs() == []


def test_f5_chunks_are_sized_by_measured_memory(tokenizers, monkeypatch):
    """The copies a backward chunk holds come from the bytes autograd keeps for one copy, measured on the model:
    more for longer sequences, and copies × measured bytes within the budget."""
    from explain.objective import BACKWARD_FACTOR, Objective

    _, tgt = tokenizers
    llama = LanternModel("llama", make_tiny_llama(len(tgt)), tgt, tgt)
    ids = torch.tensor(tgt("I love you " * 30).input_ids)
    obj = Objective(llama, ids[:20], ids[:60], ids[:60])
    monkeypatch.setenv("LANTERN_ATTRIBUTION_MB", "2")
    short, long = obj.copies_per_chunk(4, backward=True), obj.copies_per_chunk(60, backward=True)
    assert 1 <= long < short
    per_copy = obj._copy_bytes[60] * BACKWARD_FACTOR
    assert long * per_copy <= 2 * 2**20 < (long + 1) * per_copy
    assert obj.copies_per_chunk(60, backward=False) > long  # a pass without gradients keeps far less


def test_f6_replaced_embeddings_reach_only_the_thread_that_replaced_them(lm):
    """While one request's hooks are in place, another thread calling the shared embedding module gets its own
    embeddings (what a second session building its explanation does)."""
    from explain.objective import embeddings_replaced

    module = lm.source_embedding()
    ids = torch.tensor([[4, 5, 6]])
    expected = module(ids).detach()
    fake = torch.zeros(1, 3, expected.shape[-1])
    seen = {}
    with embeddings_replaced(module, None, fake, None):
        seen["here"] = module(ids)
        worker = threading.Thread(target=lambda: seen.setdefault("there", module(ids)))
        worker.start()
        worker.join()
    assert torch.equal(seen["here"], fake) and torch.equal(seen["there"].detach(), expected)
