"""Shared fixtures: a tiny corpus in the real file formats, tiny tokenizers and models. Offline, seeded."""

from __future__ import annotations

import os

os.environ.setdefault("LANTERN_THREADS", "1")  # before any import: tiny models run fastest on one thread

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, MarianConfig, MarianMTModel

from models.lstm_attention import LstmAttnConfig, LstmAttnForConditionalGeneration
from training.tokenization import train_tokenizer

torch.set_num_threads(1)  # and CI machines are small


def assert_near_zero(values, scale, rel: float = 1e-5) -> None:
    """``values`` are zero up to float rounding: within ``rel`` times the largest magnitude in ``scale`` (what they
    are compared with, e.g. the other scores of the same rows). Rounding differs between CPUs (Intel and AMD
    kernels, batch rows), so a computed zero is never compared with ``==``."""
    values, scale = np.asarray(values, dtype=np.float64), np.asarray(scale, dtype=np.float64)
    tol = rel * max(float(np.abs(scale).max(initial=0.0)), 1e-3)
    worst = float(np.abs(values).max(initial=0.0))
    assert worst <= tol, f"expected zeros, found {worst:.3g} (tolerance {tol:.3g})"


ZH_EN = [
    ("我爱你。", "I love you."),
    ("我爱他。", "I love him."),
    ("他爱我。", "He loves me."),
    ("你好。", "Hello."),
    ("我们走吧。", "Let's go."),
    ("他很高。", "He is tall."),
    ("我很累。", "I am tired."),
    ("你在哪里?", "Where are you?"),
    ("我喜欢猫。", "I like cats."),
    ("他喜欢狗。", "He likes dogs."),
    ("我想回家。", "I want to go home."),
    ("今天很热。", "It is hot today."),
]


def write_tatoeba(folder: Path, n_copies: int = 6) -> list[tuple[str, str]]:
    """A cmn.txt like the real one: BOM, English<TAB>Chinese<TAB>attribution, with dirt to clean."""
    rng = random.Random(0)
    lines, pairs = [], []
    for k in range(n_copies):
        for i, (zh, en) in enumerate(ZH_EN):
            # distinct sentences per copy so the split has many groups
            zh_k, en_k = f"{zh[:-1]}{'啊' * k}{zh[-1]}", f"{en[:-1]}{' really' * k}{en[-1]}"
            pairs.append((zh_k, en_k))
            attribution = (
                f"CC-BY 2.0 (France) Attribution: tatoeba.org #{k * 100 + i} (CK) & #{rng.randint(1, 9999)} (X)"
            )
            lines.append(f"{en_k}\t{zh_k}\t{attribution}")
    lines.insert(3, lines[2])  # an exact duplicate pair
    lines.insert(
        5, "Tom\u200b is here.\tTom\u00a0在这里。\tCC-BY 2.0 (France) Attribution: tatoeba.org #1 (CK) & #2 (X)"
    )
    lines.insert(7, "   \t\u200b\tCC-BY 2.0 (France) Attribution: empty")
    lines.insert(9, "x" * 300 + "\t长\tCC-BY 2.0 (France) Attribution: long")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cmn.txt").write_text("\ufeff" + "\n".join(lines) + "\n", encoding="utf-8")
    return pairs


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_tatoeba(root / "tatoeba-en-zh")
    raw = root / "multi30k-en-de" / "raw"
    raw.mkdir(parents=True)
    for stem in ("train", "val", "test_2016_flickr"):
        (raw / f"{stem}.en").write_text("A dog runs.\nTwo men talk.\n", encoding="utf-8")
        (raw / f"{stem}.de").write_text("Ein Hund rennt.\nZwei\u00a0Männer reden.\n", encoding="utf-8")
    return root


@pytest.fixture()
def use_data_root(data_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LANTERN_DATA", str(data_root))
    return data_root


@pytest.fixture(scope="session")
def tokenizers():
    src = train_tokenizer([zh for zh, _ in ZH_EN], "char")
    tgt = train_tokenizer([en for _, en in ZH_EN], "bpe", vocab_size=120, add_eos=True)
    return src, tgt


def make_tiny_lstm(
    src_vocab: int, tgt_vocab: int, seed: int = 0, dropout: float = 0.0
) -> LstmAttnForConditionalGeneration:
    torch.manual_seed(seed)
    config = LstmAttnConfig(
        src_vocab_size=src_vocab,
        tgt_vocab_size=tgt_vocab,
        embed_dim=16,
        hidden_size=32,
        attention_dim=16,
        dropout=dropout,
    )
    return LstmAttnForConditionalGeneration(config).eval()


def make_tiny_marian(src_vocab: int, tgt_vocab: int) -> MarianMTModel:
    """A 2+2-layer random Marian with separate source/target vocabularies and eager attention, frozen."""
    torch.manual_seed(0)
    config = MarianConfig(
        vocab_size=src_vocab, decoder_vocab_size=tgt_vocab, share_encoder_decoder_embeddings=False, d_model=16,
        encoder_layers=2, decoder_layers=2, encoder_attention_heads=2, decoder_attention_heads=2,
        encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=64, init_std=0.3, pad_token_id=0,
        eos_token_id=2, bos_token_id=1, decoder_start_token_id=1, forced_eos_token_id=2,
        attn_implementation="eager",
    )  # fmt: skip
    model = MarianMTModel(config).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def make_tiny_llama(vocab: int) -> LlamaForCausalLM:
    """A 2-layer random Llama with eager attention (attention weights are returned), frozen."""
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=64,
        initializer_range=0.3,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        attn_implementation="eager",
    )
    model = LlamaForCausalLM(config).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@pytest.fixture()
def tiny_lstm(tokenizers) -> LstmAttnForConditionalGeneration:
    src, tgt = tokenizers
    return make_tiny_lstm(len(src), len(tgt))
