"""The command-line tools: a user's mistake ends with one clear line and a non-zero exit, no traceback, before
any file is written; ``--help`` documents every flag."""

import subprocess
import sys
from pathlib import Path

import pytest

from explain import evaluate
from tests.test_train import TINY
from training import train

REPO = Path(__file__).resolve().parents[1]


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")) if folder.exists() else []


def one_line_error(capsys: pytest.CaptureFixture, prog: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"{prog}: error: ") and "\n" not in err and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["configs/no_such_preset.toml"], "no config file at configs/no_such_preset.toml"),
        (["configs/lstm_zh_en.toml", "--set", "train.learning_rate=1"], "unknown key 'train.learning_rate'"),
        (["configs/lstm_zh_en.toml", "--set", "trian.lr=1"], "no section [trian]"),
        (["configs/lstm_zh_en.toml", "--set", "train.lr"], "must look like train.lr=5e-4"),
        (["configs/lstm_zh_en.toml", "--set", "train.lr=fast"], "train.lr must be a float, not 'fast'"),
        (["configs/lstm_zh_en.toml", "--set", "train.batch_size=0"], "train.batch_size must be at least 1"),
        (["configs/lstm_zh_en.toml", "--set", "train.lr=inf"], "train.lr must be a finite number, not inf"),
        (["configs/lstm_zh_en.toml", "--set", "model.architecture=gru"], "model.architecture must be one of"),
        (["configs/lstm_zh_en.toml", "--set", "data.corpus=europarl"], "data.corpus 'europarl' is not a corpus"),
        (["configs/lstm_zh_en.toml", "--set", "data.src_lang=fr"], "tatoeba-en-zh holds en and zh, not fr->en"),
        (["configs/lstm_zh_en.toml", "--resume"], "no checkpoint under"),
    ],
)
def test_training_cli_mistakes_exit_2_with_one_line_and_write_nothing(use_data_root, tmp_path, capsys, argv, message):
    code = train.main([argv[0], "--run-dir", str(tmp_path / "run"), "--export", str(tmp_path / "ck"), *TINY, *argv[1:]])
    assert code == 2
    assert message in one_line_error(capsys, "python -m training.train")
    assert files_under(tmp_path) == []


def test_training_cli_missing_corpus_names_the_file_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LANTERN_DATA", str(tmp_path / "empty-data-root"))
    run = tmp_path / "run"
    assert train.main(["configs/lstm_zh_en.toml", "--run-dir", str(run), *TINY]) == 2
    err = one_line_error(capsys, "python -m training.train")
    assert "cmn.txt not found" in err and "LANTERN_DATA" in err
    assert not run.exists()


def test_training_cli_broken_toml_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nlr = 1\n")
    assert train.main([str(bad), "--run-dir", str(tmp_path / "run")]) == 2
    assert "is not valid TOML" in one_line_error(capsys, "python -m training.train")


@pytest.fixture()
def eval_files(tmp_path: Path) -> Path:
    (tmp_path / "src.txt").write_text("我爱你。\n你好。\n", encoding="utf-8")
    (tmp_path / "gold.txt").write_text("1-1\n", encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model", "no-such-model"], "Lantern could not find 'no-such-model'"),
        (["--model", "lstm-zh-en", "--methods", "attention,gradcam"], "unknown method(s) gradcam"),
        (["--model", "lstm-zh-en", "--gold", "{tmp}/gold.txt"], "--gold has 1 lines but --source has 2"),
        (["--model", "lstm-zh-en", "--reference", "{tmp}/missing.txt"], "--reference: no file at"),
        (["--model", "lstm-zh-en", "--n-steps", "0"], "--n-steps must be between 1 and 1024"),
    ],
)
def test_evaluate_cli_mistakes_exit_2_with_one_line_and_write_nothing(eval_files, capsys, extra, message):
    out = eval_files / "out" / "run.json"
    extra = [e.format(tmp=eval_files) for e in extra]
    before = files_under(eval_files)
    assert evaluate.main(["--source", str(eval_files / "src.txt"), "--out", str(out), *extra]) == 2
    assert message in one_line_error(capsys, "python -m explain.evaluate")
    assert files_under(eval_files) == before


@pytest.mark.parametrize(
    ("module", "parser"), [("training.train", train.parser), ("explain.evaluate", evaluate.parser)]
)
def test_help_documents_every_flag(module, parser):
    out = subprocess.run(
        [sys.executable, "-m", module, "--help"], cwd=REPO, capture_output=True, text=True, timeout=120, check=True
    ).stdout
    for action in parser()._actions:
        assert action.help, f"{module}: {action.option_strings or action.dest} has no help text"
        for flag in action.option_strings:
            assert flag in out


def test_a_mistake_through_the_real_entry_point_has_no_traceback(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "training.train", "configs/lstm_zh_en.toml", "--set", "train.nonsense=1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("python -m training.train: error: unknown key 'train.nonsense'")
