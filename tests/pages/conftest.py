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
        # the LSTM keeps a TracIn snapshot at the end of its first epoch (8 steps) for the Training data page
        lstm = ["--set", "train.tracin_snapshots=2", "--set", "train.max_steps=12", "--set", "train.eval_every=4"]
        for name, extra, after in (("tiny-zh-en", [], lstm), ("tiny-tf-zh-en", TINY_TRANSFORMER, [])):
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
                    *after,
                ]
            )
            assert code == 0
    _, tgt = tokenizers
    llama = root.parent / "models" / "tiny-llama"
    make_tiny_llama(len(tgt)).save_pretrained(llama)
    tgt.save_pretrained(llama)
    byte_level = byte_level_tokenizer()
    bytes_model = root.parent / "models" / "tiny-bytes"
    make_tiny_llama(len(byte_level)).save_pretrained(bytes_model)
    byte_level.save_pretrained(bytes_model)
    return root


def byte_level_tokenizer():
    """A GPT-2-style byte-level BPE learnt from Arabic and Chinese only: every token is stored as byte stand-ins
    (``Ø¨`` for ب) and shown differently, as SmolLM2's are."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    texts = ["مرحبا بالعالم", "أنا أحب القطط", "我爱你", "你好世界", "ب ت ث ج"] * 5
    trainer = trainers.BpeTrainer(vocab_size=120, special_tokens=["<pad>", "<s>", "</s>", "<unk>"])
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


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
