"""``python -m explain.evaluate`` batched, per sentence and sharded over processes under ``torchrun``: the same
summary, and a run interrupted in any of these modes continues where it stopped."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from explain import corpus as batched
from explain import evaluate
from tests.test_evaluate_cli import corpus  # noqa: F401  (the fixture: a tiny trained Transformer and 4 sentences)
from tests.test_train import REPO

METHODS = "attention,rollout,saliency,input_x_gradient,integrated_gradients,smoothgrad"
TIMES = ("seconds", "seconds_this_run")


def args(corpus: Path, out: Path, *extra: str) -> list[str]:  # noqa: F811
    return ["--model", "tiny", "--source", str(corpus / "src.txt"), "--reference", str(corpus / "ref.txt"),
            "--gold", str(corpus / "gold.txt"), "--out", str(out), "--methods", METHODS, "--n-steps", "4",
            "--n-samples", "2", *extra]  # fmt: skip


def same(a, b) -> None:
    """Equal summaries: the same keys and strings, numbers to float rounding, times left out."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            if k not in TIMES:
                same(a[k], b[k])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            same(x, y)
    elif isinstance(a, float):
        assert a == pytest.approx(b, abs=1e-6)
    else:
        assert a == b


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in out.with_suffix(".jsonl").read_text().splitlines()]


@pytest.fixture()
def single(corpus, tmp_path, monkeypatch) -> dict:  # noqa: F811
    monkeypatch.setenv("LANTERN_CHECKPOINTS", str(corpus / "ck"))
    out = tmp_path / "single.json"
    assert evaluate.main(args(corpus, out, "--batch-sentences", "3")) == 0
    return json.loads(out.read_text())


def test_batched_and_per_sentence_runs_give_the_same_summary(corpus, single, tmp_path):  # noqa: F811
    from models.loading import load_model

    assert batched.supported(load_model("tiny"))  # the tiny Transformer takes the batched path
    out = tmp_path / "old.json"
    assert evaluate.main(args(corpus, out, "--per-sentence")) == 0
    same(json.loads(out.read_text()), single)
    assert [r["index"] for r in records(out)] == [0, 1, 2, 3]
    assert evaluate.main(args(corpus, out, "--batch-sentences", "0")) == 2


def test_a_run_continues_from_the_parts_an_interrupted_sharded_run_left(corpus, single, tmp_path):  # noqa: F811
    done = records(tmp_path / "single.json")
    out = tmp_path / "resumed.json"
    lines = out.with_suffix(".jsonl")
    for rank, kept in ((0, [done[0], done[2]]), (1, [done[1]])):  # sentence 4 was never written
        Path(f"{lines}.rank{rank}").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept))
    assert evaluate.main(args(corpus, out)) == 0
    same(json.loads(out.read_text()), single)
    after = records(out)
    assert [r["index"] for r in after] == [0, 1, 2, 3]
    assert after[:3] == done[:3]  # kept as written, not explained again
    assert not list(tmp_path.glob("resumed.jsonl.rank*"))  # merged into the run's lines


def torchrun(corpus: Path, out: Path, *extra: str) -> str:  # noqa: F811
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
           "explain.evaluate", *args(corpus, out, *extra)]  # fmt: skip
    log = out.with_suffix(".log")
    env = {**os.environ, "LANTERN_CHECKPOINTS": str(corpus / "ck"), "LANTERN_THREADS": "1", "OMP_NUM_THREADS": "1"}
    with open(log, "w") as f:  # own process group: on a timeout the workers go too, not only torchrun
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)  # fmt: skip
        try:
            code = proc.wait(timeout=180)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    output = log.read_text()
    assert code == 0, output[-3000:]
    return output


def test_torchrun_shards_the_sentences_and_rank_0_writes_the_same_summary(corpus, single, tmp_path):  # noqa: F811
    out = tmp_path / "sharded.json"
    output = torchrun(corpus, out, "--limit", "3")  # then continued: sentence 4 alone is left
    assert "rank 0 of 2: 2 of the 3 sentences left" in output and "rank 1 of 2: 1 of the 3" in output
    first = records(out)
    assert [r["index"] for r in first] == [0, 1, 2]
    output = torchrun(corpus, out)
    assert "rank 0 of 2: 1 of the 1 sentences left" in output and "rank 1 of 2: 0 of the 1" in output
    same(json.loads(out.read_text()), single)
    after = records(out)
    assert [r["index"] for r in after] == [0, 1, 2, 3] and after[:3] == first
    assert not list(tmp_path.glob("sharded.jsonl.rank*"))
