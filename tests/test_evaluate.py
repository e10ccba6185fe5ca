"""Measures of explanation quality: known answers on hand-made cases, and behaviour on tiny models."""

import dataclasses

import numpy as np
import pytest
import torch

from explain.alignment import (
    argmax_links,
    diagonal_links,
    parse_gold_line,
    score_alignments,
    to_words,
    word_index,
)
from explain.attribution import attribute
from explain.confidence import attention_confidence
from explain.faithfulness import kendall_tau, measure, oracle_ranking
from explain.generation import translate
from explain.sanity import cascading_randomisation, parameter_blocks
from models.adapter import Decoding, LanternModel
from tests.conftest import make_tiny_lstm, make_tiny_marian


@pytest.fixture(params=["lstm", "marian"])
def lm(request, tokenizers) -> LanternModel:
    src, tgt = tokenizers
    model = (
        make_tiny_lstm(len(src), len(tgt), seed=1) if request.param == "lstm" else make_tiny_marian(len(src), len(tgt))
    )
    for p in model.parameters():
        p.requires_grad_(False)
    return LanternModel(request.param, model, src, tgt)


# --- alignment error rate ---------------------------------------------------------------------


def test_gold_format_sure_and_possible_links():
    g = parse_gold_line("1-1 2p3 3-2")
    assert g.sure == {(0, 0), (2, 1)} and g.possible == {(0, 0), (1, 2), (2, 1)}


def test_aer_known_answers():
    gold = [parse_gold_line("1-1 2-2 3p3")]
    assert score_alignments([{(0, 0), (1, 1)}], gold).aer == pytest.approx(0.0, abs=1e-12)  # exactly the sure links
    assert score_alignments([{(0, 0), (1, 1), (2, 2)}], gold).aer == pytest.approx(
        0.0, abs=1e-12
    )  # + a possible link: still perfect
    disjoint = score_alignments([{(0, 2), (2, 0)}], gold)
    assert (disjoint.aer, disjoint.precision, disjoint.recall) == pytest.approx((1.0, 0.0, 0.0), abs=1e-12)
    half = score_alignments([{(0, 0), (2, 2)}], gold)  # one sure, one possible: full precision, half recall
    assert (half.precision, half.recall) == (1.0, 0.5)
    assert half.aer == pytest.approx(1 - (1 + 2) / (2 + 2))


def test_alignment_from_scores_and_word_mapping():
    assert argmax_links(np.array([[0.1, 0.9], [0.8, 0.2]])) == {(1, 0), (0, 1)}
    text = "the cat ."
    offsets = [(0, 3), (4, 6), (6, 7), (8, 9), (0, 0)]  # "the" "ca" "t" "." </s>
    assert word_index(offsets, text) == [0, 1, 1, 2, None]
    assert word_index([(0, 3), (3, 7), (7, 11), (12, 13)], "the cat sat .") == [0, 1, 2, 3]  # "▁cat" spans the space
    scores = np.ones((2, 5))
    words = to_words(scores, [0, 0], word_index(offsets, text), n_tgt=1, n_src=3)
    np.testing.assert_allclose(words, [[1.0, 2.0, 1.0]])  # pieces of "cat" sum; </s> dropped


def test_diagonal_baseline_links_each_target_word_by_relative_position():
    assert diagonal_links(3, 3) == {(0, 0), (1, 1), (2, 2)}
    assert diagonal_links(4, 2) == {(0, 0), (3, 1)}  # first to first, last to last
    assert diagonal_links(1, 3) == {(0, 0), (0, 1), (0, 2)} and diagonal_links(0, 2) == set()


# --- faithfulness -------------------------------------------------------------------------------


def test_kendall_tau_known_values():
    assert kendall_tau(np.array([1, 2, 3, 4]), np.array([10, 20, 30, 40])) == pytest.approx(1.0)
    assert kendall_tau(np.array([1, 2, 3, 4]), np.array([4, 3, 2, 1])) == pytest.approx(-1.0)
    assert np.isnan(kendall_tau(np.array([1, 1, 1]), np.array([1, 2, 3])))


def test_oracle_ranking_beats_a_random_one_at_one_token(lm):
    tr = translate(lm, "我爱你。", Decoding(max_new_tokens=5))
    base = attribute(lm, tr, "occlusion")
    oracle = dataclasses.replace(base, scores=oracle_ranking(lm, tr).astype(np.float32), method="oracle")
    rng = np.random.default_rng(0)
    random = dataclasses.replace(base, scores=rng.random(base.scores.shape).astype(np.float32), method="random")
    f_oracle, f_random = measure(lm, tr, oracle), measure(lm, tr, random)
    assert np.all(f_oracle.comprehensiveness[:, 0] >= f_random.comprehensiveness[:, 0] - 1e-7)
    assert f_oracle.comprehensiveness[:, 0].mean() > f_random.comprehensiveness[:, 0].mean()
    np.testing.assert_allclose(f_oracle.kendall_loo[np.isfinite(f_oracle.kendall_loo)], 1.0)  # τ with itself
    assert f_oracle.comprehensiveness.shape == (len(tr.tgt_tokens), 10)


def test_removing_everything_and_keeping_everything_are_the_endpoints(lm):
    tr = translate(lm, "我爱你。", Decoding(max_new_tokens=5))
    f = measure(lm, tr, attribute(lm, tr, "input_x_gradient"))
    np.testing.assert_allclose(f.sufficiency[:, -1], 0.0, atol=1e-6)  # keeping 100% changes nothing
    other = measure(lm, tr, attribute(lm, tr, "saliency"))  # removing 100%: the same input for every method
    np.testing.assert_allclose(f.comprehensiveness[:, -1], other.comprehensiveness[:, -1], atol=1e-6)


# --- sanity check -------------------------------------------------------------------------------


def test_randomising_the_model_changes_the_explanation_and_not_the_shared_model(lm):
    tr = translate(lm, "我爱你。", Decoding(max_new_tokens=5))
    before = {k: v.clone() for k, v in lm.model.state_dict().items()}
    original, steps = cascading_randomisation(lm, tr, "input_x_gradient")
    assert [s.block for s in steps] == [b for b, _ in parameter_blocks(lm.model)]
    assert steps[-1].similarity < 0.9  # fully random weights: a different explanation
    assert all(torch.equal(before[k], v) for k, v in lm.model.state_dict().items())
    again = attribute(lm, tr, "input_x_gradient").scores
    np.testing.assert_allclose(original.scores, again, rtol=1e-6, atol=1e-6 * np.abs(again).max())


def test_parameter_blocks_run_from_the_output_to_the_input(tokenizers):
    src, tgt = tokenizers
    names = [b for b, _ in parameter_blocks(make_tiny_lstm(len(src), len(tgt)))]
    assert names[0] == "decoder.output_bias" and names[-1] == "encoder.embed_tokens"
    marian = [b for b, _ in parameter_blocks(make_tiny_marian(len(src), len(tgt)))]
    assert marian.index("model.decoder.layers.1") < marian.index("model.decoder.layers.0")
    assert marian.index("model.decoder.layers.0") < marian.index("model.encoder.layers.1")


# --- attention-based confidence ---------------------------------------------------------------


def test_attention_confidence_known_values():
    sharp = attention_confidence(np.eye(3))
    assert sharp["CDP"] == pytest.approx(0.0) and np.allclose(sharp["token_entropy"], 0.0, atol=1e-9)
    flat = attention_confidence(np.full((2, 4), 0.25))
    np.testing.assert_allclose(flat["token_entropy"], np.log(4))
    assert flat["CDP"] < 0  # each source token got 0.5 in total, not 1
