from pathlib import Path

import pytest
import streamlit as st

from tests.conftest import make_tiny_llama
from tests.test_train import TINY, TINY_TRANSFORMER
from training import train


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory: pytest.TempPathFactory, data_root: Path, tokenizers) -> Path:
    """A root with a tiny LSTM and a tiny Transformer trained by the real CLI, and a tiny decoder-only model."""
    root = tmp_path_factory.mktemp("checkpoints")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LANTERN_DATA", str(data_root))
        for name, extra in (("tiny-zh-en", []), ("tiny-tf-zh-en", TINY_TRANSFORMER)):
            code = train.main(
                [
                    "configs/lstm_zh_en.toml",
                    "--run-dir",
                    str(root.parent / f"run-{name}"),
                    "--export",
                    str(root / name),
                    *TINY,
                    *extra,
                    "--set",
                    "train.max_steps=4",
                    "--set",
                    "train.eval_every=2",
                ]
            )
            assert code == 0
    _, tgt = tokenizers
    llama = root.parent / "models" / "tiny-llama"
    make_tiny_llama(len(tgt)).save_pretrained(llama)
    tgt.save_pretrained(llama)
    return root


@pytest.fixture()
def app_env(tiny_checkpoints: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LANTERN_CHECKPOINTS", str(tiny_checkpoints))
    monkeypatch.setenv("LANTERN_MODEL_ROOTS", str(tiny_checkpoints.parent / "models"))
    monkeypatch.setenv("LANTERN_HUB_MODELS", str(tiny_checkpoints.parent / "models" / "tiny-llama"))
    # the repository's own evaluations/ would add charts to every Evaluate page; tests that want runs set it
    monkeypatch.setenv("LANTERN_EVALUATIONS", str(tiny_checkpoints.parent / "no-evaluations"))
    st.cache_data.clear()
    st.cache_resource.clear()
    yield tiny_checkpoints
    st.cache_data.clear()
    st.cache_resource.clear()
