"""The batched corpus path (``explain.corpus``, ``explain.evaluate.explain_block``) against the per-sentence API on
tiny random models: the same scores, deltas, attention maps and records, to float tolerance."""

import numpy as np
import pytest
import torch
from transformers import T5Config, T5ForConditionalGeneration

from explain import corpus
from explain.attention import extract_attention
from explain.attribution import attribute
from explain.evaluate import explain_block, explain_sentence
from explain.generation import force_translation
from models.adapter import LanternModel
from tests.conftest import ZH_EN, make_tiny_llama, make_tiny_lstm, make_tiny_marian

PAIRS = [ZH_EN[10], ZH_EN[0], ZH_EN[7], ZH_EN[3], ZH_EN[11]]  # lengths differ: padding and masks are exercised


def make_tiny_t5(vocab: int) -> T5ForConditionalGeneration:
    torch.manual_seed(0)
    config = T5Config(
        vocab_size=vocab, d_model=16, d_kv=8, d_ff=32, num_layers=2, num_heads=2, pad_token_id=0, eos_token_id=2,
        decoder_start_token_id=0, attn_implementation="eager",
    )  # fmt: skip
    model = T5ForConditionalGeneration(config).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@pytest.fixture(scope="module")
def models(tokenizers) -> dict[str, LanternModel]:
    src, tgt = tokenizers
    return {
        "marian": LanternModel("marian", make_tiny_marian(len(src), len(tgt)), src, tgt),
        "t5": LanternModel("t5", make_tiny_t5(len(tgt)), tgt, tgt),
    }


def translations(lm: LanternModel):
    return [force_translation(lm, zh if lm.name == "marian" else en, en) for zh, en in PAIRS]


def close(a, b, scale=None) -> None:
    """Equal to float rounding, relative to the largest magnitude of the reference."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    tol = 1e-5 * max(float(np.abs(b if scale is None else scale).max(initial=0.0)), 1e-3)
    np.testing.assert_allclose(a, b, rtol=0, atol=tol)


@pytest.mark.parametrize("name", ["marian", "t5"])
def test_batched_gradients_are_the_per_sentence_attributions(models, name, monkeypatch):
    """Saliency, input × gradient, integrated gradients (delta too) and SmoothGrad; small passes and step groups so
    that copies of several sentences share a pass and every sentence spans several decoder groups."""
    lm = models[name]
    monkeypatch.setattr(corpus, "MAX_COPIES", 7)
    monkeypatch.setattr(corpus, "STEP_GROUP", 2)
    trs = translations(lm)
    kwargs = {"n_steps": 4, "n_samples": 3, "noise_level": 0.1}
    batched = corpus.gradient_scores(lm, [corpus.objective(lm, tr) for tr in trs], list(corpus.GRADIENT_METHODS),
                                     **kwargs)  # fmt: skip
    for tr, got in zip(trs, batched, strict=True):
        for method in corpus.GRADIENT_METHODS:
            want = attribute(lm, tr, method, **kwargs)
            close(got[method].scores, want.scores)
            close(got[method].prefix_scores, want.prefix_scores)
            if method == "integrated_gradients":
                close(got[method].delta, want.delta, scale=want.scores)
            else:
                assert got[method].delta is None and want.delta is None


@pytest.mark.parametrize("name", ["marian", "t5"])
def test_batched_attention_maps_are_extract_attention(models, name, monkeypatch):
    lm = models[name]
    monkeypatch.setattr(corpus, "MAX_COPIES", 3)
    trs = translations(lm)
    for tr, got in zip(trs, corpus.attention_maps(lm, trs), strict=True):
        want = extract_attention(lm, tr)
        for part in ("cross", "encoder_self", "decoder_self"):
            close(getattr(got, part), getattr(want, part))
        assert got.prefix_tokens == want.prefix_tokens and got.src_tokens == want.src_tokens


@pytest.mark.parametrize("name", ["marian", "t5"])
def test_batched_forced_outputs_are_force_translation(models, name, monkeypatch):
    lm = models[name]
    monkeypatch.setattr(corpus, "MAX_COPIES", 2)
    pairs = [(zh if name == "marian" else en, en) for zh, en in PAIRS]
    for got, want in zip(corpus.force_translations(lm, pairs), translations(lm), strict=True):
        for field in ("src_text", "src_tokens", "src_ids", "tgt_tokens", "tgt_ids", "text", "decoding", "unknown",
                      "n_src_tokens", "n_kept_tokens", "src_span"):  # fmt: skip
            assert getattr(got, field) == getattr(want, field), field
        close(got.logprobs, want.logprobs)
        close(got.entropy, want.entropy)
        close(got.alt_probs, want.alt_probs)
        assert [row[0] for row in got.alt_ids] == [row[0] for row in want.alt_ids]  # the top token (no near-ties)
    with pytest.raises(ValueError, match="empty"):
        corpus.force_translations(lm, [(PAIRS[0][1], "  ")])


def test_a_block_gives_the_records_of_sentence_by_sentence(models):
    lm = models["marian"]
    methods = ["attention", "rollout", "saliency", "input_x_gradient", "integrated_gradients", "attention_norms"]
    block = explain_block(lm, [(zh, en) for zh, en in PAIRS], methods, n_steps=4)
    for (zh, en), got in zip(PAIRS, block, strict=True):
        want = explain_sentence(lm, zh, en, methods, faithfulness=False, n_steps=4)
        assert got["seconds"] >= 0
        assert {k: v for k, v in got.items() if k != "seconds"}.keys() == want.keys()
        assert (got["src"], got["output"]) == (want["src"], want["output"])
        for method in methods:
            g, w = got["methods"][method], want["methods"][method]
            assert g.keys() == w.keys()
            assert g["links"] == w["links"]
            for kind in ("word_scores", "word_scores_signed"):
                for variant, matrix in w.get(kind, {}).items():
                    np.testing.assert_allclose(g[kind][variant], matrix, rtol=0, atol=2e-5)
            if "max_abs_delta" in w:
                assert g["max_abs_delta"] == pytest.approx(w["max_abs_delta"], abs=1e-5)


def test_models_without_the_batched_path_are_named(tokenizers):
    src, tgt = tokenizers
    lstm = LanternModel("lstm", make_tiny_lstm(len(src), len(tgt)), src, tgt)
    llama = LanternModel("llama", make_tiny_llama(len(tgt)), tgt, tgt)
    assert not corpus.supported(lstm) and not corpus.supported(llama)
    assert corpus.batched_methods(llama, ["attention", "saliency"]) == []
    with pytest.raises(ValueError, match="no batched path"):
        corpus.gradient_scores(llama, [], ["occlusion"])
