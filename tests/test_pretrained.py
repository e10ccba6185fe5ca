"""Pretrained Hugging Face models through the real loading code: tiny random models built here."""

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    MarianConfig,
    MarianMTModel,
    T5Config,
    T5ForConditionalGeneration,
)

from explain.attention import extract_attention
from explain.attribution import attribute
from explain.generation import translate
from models.adapter import Decoding
from models.decoding import PretrainedModelError
from models.loading import load_model
from models.pretrained import load_pretrained
from models.registry import pretrained_spec
from tests.conftest import make_tiny_llama
from training.tokenization import train_tokenizer

TEXTS = ["I love you.", "He likes dogs.", "We go home.", "It is hot today.", "Where are you?", "The cat sleeps."]
CHAT = "{% for m in messages %}<s>{{ m['content'] }}</s>{% endfor %}{% if add_generation_prompt %}<s>{% endif %}"


def tiny(kind: str, vocab: int):
    torch.manual_seed(0)
    ids = {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}
    if kind == "gpt2":
        return GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_embd=16, n_layer=2, n_head=2, n_positions=64, **ids))
    if kind == "llama":
        return make_tiny_llama(vocab)
    if kind == "marian":
        return MarianMTModel(
            MarianConfig(
                vocab_size=vocab,
                d_model=16,
                encoder_layers=2,
                decoder_layers=2,
                encoder_attention_heads=2,
                decoder_attention_heads=2,
                encoder_ffn_dim=32,
                decoder_ffn_dim=32,
                decoder_start_token_id=0,
                **ids,
            )
        )
    return T5ForConditionalGeneration(
        T5Config(
            vocab_size=vocab, d_model=16, d_kv=8, d_ff=32, num_layers=2, num_heads=2, decoder_start_token_id=0, **ids
        )
    )


@pytest.fixture(scope="module")
def model_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    tok = train_tokenizer(TEXTS * 3, "bpe", vocab_size=120, add_eos=True)
    for kind in ("gpt2", "llama", "marian", "t5"):
        folder = root / f"tiny-{kind}"
        tiny(kind, len(tok)).save_pretrained(folder)
        if kind == "llama":
            tok.chat_template = CHAT
        tok.save_pretrained(folder)
        tok.chat_template = None
    return root


@pytest.fixture()
def roots(model_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LANTERN_MODEL_ROOTS", str(model_root))
    return model_root


@pytest.mark.parametrize("kind", ["gpt2", "llama", "marian", "t5"])
def test_tiny_pretrained_models_load_and_explain(roots, kind):
    spec = pretrained_spec(str(roots / f"tiny-{kind}"))
    assert spec.task == ("translate" if kind in ("marian", "t5") else "generate")
    lm = load_model(spec)
    assert lm.chat is (kind == "llama")
    assert lm.model.config._attn_implementation == "eager"
    assert not any(p.requires_grad for p in lm.model.parameters())
    tr = translate(lm, "I love you.", Decoding(max_new_tokens=5))
    assert 1 <= len(tr.tgt_ids) <= 5
    maps = extract_attention(lm, tr)
    if lm.is_seq2seq():
        assert maps.cross.shape[:2] == (2, 2) and maps.cross.shape[2:] == (len(tr.tgt_ids), len(tr.src_ids))
        np.testing.assert_allclose(maps.cross.sum(-1), 1.0, atol=1e-5)
    else:
        n = len(tr.src_ids) + len(tr.tgt_ids) - 1
        assert maps.decoder_self.shape == (2, 2, n, n)
        assert np.allclose(np.triu(maps.decoder_self, 1), 0.0)  # causal
    a = attribute(lm, tr, "integrated_gradients", n_steps=16, baseline="unk")
    assert a.scores.shape == (len(tr.tgt_ids), len(tr.src_ids))
    change = np.abs(a.scores.sum(1) + a.prefix_scores.sum(1))
    assert np.all(np.abs(a.delta) <= 0.02 * np.maximum(change, 1.0))


def test_chat_template_wraps_the_prompt(roots):
    lm = load_model(pretrained_spec(str(roots / "tiny-llama")))
    enc = lm.encode_source("I love you.")
    assert lm.source_tokens(enc.ids)[0] == "<s>" and lm.source_tokens(enc.ids)[-1] == "<s>"
    assert enc.kept_tokens == enc.n_tokens and not enc.truncated


def test_sampling_is_reproducible_with_a_seed(roots):
    lm = load_model(pretrained_spec(str(roots / "tiny-gpt2")))
    runs = [
        translate(lm, "I love", Decoding(max_new_tokens=8, do_sample=True, temperature=1.5, seed=s)).tgt_ids
        for s in (1, 1, 2)
    ]
    assert runs[0] == runs[1]


def test_folder_outside_the_model_roots_is_refused(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(PretrainedModelError, match="outside the folders"):
        load_pretrained(str(tmp_path))


def test_a_missing_hub_model_offline_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(PretrainedModelError, match="not in the local Hugging Face cache") as err:
        pretrained_spec("lantern-tests/no-such-model")
    assert "huggingface-cli download" in str(err.value)


def test_smollm2_loads_from_its_package_and_answers():
    from models.sources import PACKAGED, SMOLLM2

    lm = load_model(SMOLLM2)  # converts the GGUF once, then reads the safetensors cache
    assert PACKAGED[SMOLLM2].converted()
    tr = translate(lm, "What is the capital of Germany?", Decoding(max_new_tokens=16))
    assert "Berlin" in tr.text
    assert lm.source_tokens(list(tr.src_ids))[0] == "<|im_start|>"


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: (f / "model.safetensors").write_bytes(b"\x00garbage"), "could not load"),
        (lambda f: (f / "model.safetensors").unlink(), "model.safetensors is missing"),
        (lambda f: (f / "config.json").write_text('{"model_type": "no-such-architecture"}'), "could not load"),
        (lambda f: (f / "config.json").write_text("{not json"), "could not load"),
        (lambda f: (f / "config.json").unlink(), "config.json is missing"),
    ],
)
def test_a_broken_checkpoint_gives_a_clear_message(tmp_path, tokenizers, damage, message):
    from models.loading import CheckpointError, load_seq2seq_folder
    from tests.conftest import make_tiny_lstm
    from training.checkpoint import save_model_dir

    src, tgt = tokenizers
    folder = tmp_path / "ck"
    save_model_dir(folder, make_tiny_lstm(len(src), len(tgt)), src, tgt)
    load_seq2seq_folder(folder)  # intact: loads
    damage(folder)
    with pytest.raises(CheckpointError, match=message):
        load_seq2seq_folder(folder)


def test_pickled_weights_are_never_loaded(roots):
    import torch

    folder = roots / "tiny-gpt2"
    pickled = folder.parent / "tiny-gpt2-pickle"
    import shutil

    shutil.copytree(folder, pickled, dirs_exist_ok=True)
    (pickled / "model.safetensors").unlink()
    torch.save(tiny("gpt2", 120).state_dict(), pickled / "pytorch_model.bin")
    with pytest.raises(PretrainedModelError, match="safetensors"):
        load_pretrained(str(pickled))
