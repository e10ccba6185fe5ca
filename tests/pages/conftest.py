from pathlib import Path

import pytest
import streamlit as st

from models import train
from tests.test_train import TINY


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Path:
    """A checkpoint root holding one tiny model trained by the real CLI on the tiny corpus."""
    root = tmp_path_factory.mktemp("checkpoints")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LANTERN_DATA", str(data_root))
        code = train.main(
            [
                "configs/lstm_zh_en.toml",
                "--run-dir",
                str(root.parent / "tiny-run"),
                "--export",
                str(root / "tiny-zh-en"),
                *TINY,
                "--set",
                "train.max_steps=4",
                "--set",
                "train.eval_every=2",
            ]
        )
    assert code == 0
    return root


@pytest.fixture()
def app_env(tiny_checkpoints: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LANTERN_CHECKPOINTS", str(tiny_checkpoints))
    st.cache_data.clear()
    st.cache_resource.clear()
    yield tiny_checkpoints
    st.cache_data.clear()
    st.cache_resource.clear()
