"""Token embeddings: PCA maps of the vocabulary and nearest neighbours by cosine similarity."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from explain.embeddings import embedding_projection, nearest_neighbours
from models.adapter import LanternModel
from models.decoding import InputError
from models.folder import TRAINING_COUNTS
from tests.conftest import make_tiny_llama, make_tiny_lstm


@pytest.fixture()
def lm(tokenizers, tmp_path) -> LanternModel:
    """A tiny LSTM whose folder has training counts, with three planted source embeddings: 我 ∥ 你 and 他 = −我."""
    src, tgt = tokenizers
    model = make_tiny_lstm(len(src), len(tgt), seed=4)
    vocab = src.get_vocab()
    with torch.no_grad():
        w = model.encoder.embed_tokens.weight
        w[vocab["你"]] = 2.5 * w[vocab["我"]]
        w[vocab["他"]] = -w[vocab["我"]]
    counts = {"source": {"我": 50, "你": 40, "他": 30, "爱": 20, "。": 60, "<unk>": 99}, "target": {}}
    (tmp_path / TRAINING_COUNTS).write_text(json.dumps(counts), encoding="utf-8")
    model.config.name_or_path = str(tmp_path)  # as from_pretrained(folder) sets it
    return LanternModel("tiny", model, src, tgt)


def test_nearest_neighbours_are_ranked_by_cosine_similarity(lm):
    near = nearest_neighbours(lm, "我", "source", k=5)
    assert near.tokens[0] == "你" and near.similarity[0] == pytest.approx(1.0, abs=1e-6)
    w = lm.model.encoder.embed_tokens.weight.detach().numpy().astype(np.float64)
    unit = w / np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-12)
    sims = unit @ unit[near.token_id]
    sims[[near.token_id, lm.src_tokenizer.pad_token_id]] = -np.inf
    assert near.ids.tolist() == np.argsort(-sims, kind="stable")[:5].tolist()
    np.testing.assert_allclose(near.similarity, sims[near.ids], atol=1e-5)
    everything = nearest_neighbours(lm, "我", "source", k=len(lm.src_tokenizer) - 2)
    assert everything.tokens[-1] == "他" and everything.similarity[-1] == pytest.approx(-1.0, abs=1e-6)
    assert near.to_pandas()["rank"].tolist() == [1, 2, 3, 4, 5]


def test_a_token_that_is_not_in_the_vocabulary_is_named(lm):
    with pytest.raises(InputError, match="splits into 我, 爱"):
        nearest_neighbours(lm, "我爱", "source")
    with pytest.raises(InputError, match="side must be"):
        nearest_neighbours(lm, "我", "middle")


def test_projection_is_pca_of_the_most_frequent_tokens_with_the_sentence_added(lm):
    proj = embedding_projection(lm, "source", tokens=["我", "猫"], n=4)
    assert proj.tokens[:4] == ("。", "我", "你", "他")  # by training count; special tokens left out
    assert proj.tokens[4:] == ("猫",)  # asked for, not in the sample: added
    assert proj.highlighted.tolist() == [False, True, False, False, True]
    assert proj.counts.tolist() == [60, 50, 40, 30, -1]
    w = lm.model.encoder.embed_tokens.weight.detach().numpy().astype(np.float64)[proj.ids]
    centred = w[:4] - w[:4].mean(0)
    _, s, axes = np.linalg.svd(centred, full_matrices=False)
    expected = (w - w[:4].mean(0)) @ axes[:2].T
    np.testing.assert_allclose(np.abs(proj.coords), np.abs(expected), atol=1e-5)  # up to each axis's sign
    np.testing.assert_allclose(proj.explained, s[:2] ** 2 / (s**2).sum(), atol=1e-6)
    assert set(proj.to_pandas().columns) >= {"token", "pc1", "pc2", "count", "highlighted"}


def test_projection_without_counts_samples_the_first_ids_of_one_shared_vocabulary(tokenizers):
    _, tgt = tokenizers
    lm = LanternModel("llama", make_tiny_llama(len(tgt)), tgt, tgt)
    proj = embedding_projection(lm, "target", n=10)
    assert proj.side == "source" and "first 10 token ids" in proj.sample  # decoder-only: one embedding matrix
    special = set(tgt.all_special_ids)
    assert not special & set(proj.ids.tolist()) and len(proj.ids) == 10
    with pytest.raises(InputError, match="between 2 and"):
        embedding_projection(lm, "source", n=1)
