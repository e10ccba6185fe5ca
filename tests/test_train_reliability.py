"""Training survives what goes wrong: NaN losses, kill -9, crashes while saving."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from common.files import atomic_dir, existing_dir
from tests.test_train import REPO, TINY
from training import train


def test_diverging_training_stops_with_a_message_and_keeps_the_last_good_checkpoint(
    use_data_root, tmp_path, caplog, monkeypatch
):
    from safetensors.torch import load_file

    base = [
        "configs/lstm_zh_en.toml",
        "--run-dir",
        str(tmp_path / "run"),
        "--export",
        "none",
        *TINY,
        "--set",
        "train.save_every=1",
        "--set",
        "train.eval_every=100000",
    ]
    assert train.main([*base, "--set", "train.max_steps=3"]) == 0  # three healthy steps, saved
    good = load_file(tmp_path / "run" / "last" / "model.safetensors")
    # then the run diverges: the next update leaves non-finite weights (what a far too high learning rate does)
    adam_step = torch.optim.Adam.step

    def exploding_step(self, *args, **kwargs):
        result = adam_step(self, *args, **kwargs)
        with torch.no_grad():
            self.param_groups[0]["params"][0].fill_(float("inf"))
        return result

    monkeypatch.setattr(torch.optim.Adam, "step", exploding_step)
    assert train.main([*base, "--resume", "--set", "train.max_steps=10"]) == 1
    assert "training stopped:" in caplog.text and "last good checkpoint" in caplog.text
    kept = load_file(tmp_path / "run" / "last" / "model.safetensors")
    assert all(torch.equal(kept[k], good[k]) for k in good)  # the healthy checkpoint, untouched
    assert torch.load(tmp_path / "run" / "last" / "trainer_state.pt", weights_only=True)["state"]["step"] == 3


def test_a_killed_run_resumes_and_loses_at_most_the_steps_since_its_last_checkpoint(use_data_root, tmp_path):
    run = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "training.train",
        "configs/lstm_zh_en.toml",
        "--run-dir",
        str(run),
        "--export",
        "none",
        *TINY,
        "--set",
        "train.save_every=3",
        "--set",
        "train.max_steps=100000",
        "--set",
        "train.max_epochs=100000",
        "--set",
        "train.eval_every=100000",
    ]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    deadline = time.time() + 120
    while time.time() < deadline:
        progress = run / "progress.json"
        if progress.exists() and json.loads(progress.read_text())["step"] >= 12:
            break
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)  # no chance to save anything
    proc.wait()
    killed_at = json.loads((run / "progress.json").read_text())["step"]
    saved_state = torch.load(existing_dir(run / "last") / "trainer_state.pt", weights_only=True)["state"]
    saved = saved_state["step"]
    # saved every save_every (3) steps and at each epoch's end (batch_in_epoch back at 0); progress.json is written
    # every log_every (2) steps, so the kill lost at most 3 + 2 steps
    assert (saved % 3 == 0 or saved_state["batch_in_epoch"] == 0) and killed_at - saved <= 3 + 2
    # the training time spent before the kill is kept: max_minutes and the model card count it on resume
    assert saved_state["elapsed_s"] > 0
    resumed = train.main(
        [
            "configs/lstm_zh_en.toml",
            "--run-dir",
            str(run),
            "--export",
            "none",
            "--resume",
            *TINY,
            "--set",
            f"train.max_steps={saved + 4}",
            "--set",
            "train.eval_every=100000",
        ]
    )
    assert resumed == 0
    state = torch.load(run / "last" / "trainer_state.pt", weights_only=True)["state"]
    assert state["step"] == saved + 4


def test_a_crash_while_saving_leaves_the_previous_checkpoint(tmp_path):
    folder = tmp_path / "last"
    with atomic_dir(folder) as tmp:
        (tmp / "config.json").write_text("{}")
        (tmp / "model.safetensors").write_text("good")
    with pytest.raises(RuntimeError), atomic_dir(folder) as tmp:
        (tmp / "model.safetensors").write_text("half")
        raise RuntimeError("disk full")
    assert (folder / "model.safetensors").read_text() == "good"
    assert existing_dir(folder) == folder
    os.replace(folder, folder.with_name("last.old"))  # interrupted between the two renames of a save
    assert existing_dir(folder) == folder.with_name("last.old")
