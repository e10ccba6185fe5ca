"""Word alignments of prompted decoder-only models (explain.alignment): the source is the user's sentence inside the
few-shot (or chat) prompt. Checked on tiny random models against computations made here from the raw model."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from transformers import Gemma3ForCausalLM, Gemma3TextConfig

from explain.alignment import (
    align,
    alignment_maps,
    alignment_methods,
    column_argmax,
    grow_diag,
    row_argmax,
    token_words,
)
from explain.attribution import attribute
from explain.generation import force_translation
from explain.mixing import attention_norms, value_zeroing
from models.adapter import LanternModel
from models.loading import _line_ends
from models.prompting import FEW_SHOT
from tests.conftest import make_tiny_llama
from tests.test_gemma import TEXTS
from training.tokenization import train_tokenizer

SRC, REF = "Two dogs play in the snow.", "Deux chiens jouent dans la neige."
CHAT = (
    "{% for m in messages %}<|user|>\n{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer([*TEXTS, REF, "<|user|>\n<|assistant|>\n"] * 3, "bpe", vocab_size=300, add_eos=True)


@pytest.fixture(scope="module")
def prompted(tok) -> LanternModel:
    return LanternModel("tiny-prompted", make_tiny_llama(len(tok)), tok, tok, template=FEW_SHOT["en-fr"],
                        stop_ids=_line_ends(tok))  # fmt: skip


def make_tiny_gemma3(vocab: int) -> Gemma3ForCausalLM:
    """A 2-layer random Gemma 3 (its attention output is normalised before the residual add: no ALTI+)."""
    torch.manual_seed(0)
    config = Gemma3TextConfig(
        vocab_size=vocab, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, head_dim=8, max_position_embeddings=512, pad_token_id=0, bos_token_id=1,
        eos_token_id=2, attn_implementation="eager",
    )  # fmt: skip
    model = Gemma3ForCausalLM(config).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def words_by_decoding(tok, ids: list[int]) -> list[int | None]:
    """Independently of character offsets: token k is in the word its text so far ends in (the decoded prefix,
    stripped, split at spaces); None while nothing of the text has been read."""
    out = []
    for k in range(len(ids)):
        text = tok.decode(ids[: k + 1], skip_special_tokens=True).strip()
        out.append(len(text.split(" ")) - 1 if text else None)
    return out


def test_the_source_columns_are_exactly_the_sentence_tokens(prompted, tok):
    tr = force_translation(prompted, SRC, REF)
    columns, src_index, tgt_index = token_words(prompted, tr)
    a, b = columns.start, columns.stop
    assert (a, b) == tr.src_span and 0 < a < b < len(tr.src_ids)
    ids = list(tr.src_ids)
    assert tok.decode(ids[a:b]).strip() == SRC
    assert tok.decode(ids[a + 1 : b]).strip() != SRC and tok.decode(ids[a : b - 1]).strip() != SRC  # no more
    assert src_index == words_by_decoding(tok, ids[a:b])
    words = SRC.split(" ")
    for w, word in enumerate(words):  # each word's tokens spell it
        assert tok.decode([i for i, k in zip(ids[a:b], src_index, strict=True) if k == w]).strip() == word
    assert sorted(set(src_index)) == list(range(len(words)))
    # the output: each token's word (the line end that closes it: none)
    assert tgt_index[-1] is None and tr.tgt_ids[-1] in prompted.stops()
    assert tgt_index[:-1] == words_by_decoding(tok, list(tr.tgt_ids[:-1]))
    maps = alignment_maps(prompted, tr, "attention")
    assert maps.src_words == tuple(words) and maps.tgt_words == tuple(REF.split(" "))
    assert maps.maps["mean"].shape == (len(tr.tgt_ids), b - a)
    assert maps.words().shape == (len(REF.split(" ")) + 1, len(words) + 1)


def word_matrix(scores: np.ndarray, tgt_words: list, src_words: list, n_t: int, n_s: int) -> np.ndarray:
    """Token scores -> word scores by loops: |score| summed over a source word's pieces, averaged over an output
    word's pieces; the last row holds the tokens of no output word, the last column those of no source word."""
    out = np.zeros((n_t + 1, n_s + 1))
    for w in range(n_t + 1):
        rows = [t for t, k in enumerate(tgt_words) if (k if k is not None else n_t) == w]
        for v in range(n_s + 1):
            cols = [s for s, k in enumerate(src_words) if (k if k is not None else n_s) == v]
            if rows:
                out[w, v] = sum(abs(scores[t, s]) for t in rows for s in cols) / len(rows)
    return out


def test_links_from_align_equal_a_computation_from_the_raw_attention(prompted, tok):
    tr = force_translation(prompted, SRC, REF)
    maps = alignment_maps(prompted, tr, "attention")
    src, tgt = list(tr.src_ids), list(tr.tgt_ids)
    with torch.no_grad():
        out = prompted.model(input_ids=torch.tensor([src + tgt[:-1]]), output_attentions=True, use_cache=False)
    a, b = tr.src_span
    n_s, n_t = len(SRC.split(" ")), len(REF.split(" "))
    src_words = words_by_decoding(tok, src[a:b])
    tgt_words = [*words_by_decoding(tok, tgt[:-1]), None]
    layers = [att[0].mean(0).numpy() for att in out.attentions]  # heads averaged: [N, N] per layer
    settings = {str(i): m for i, m in enumerate(layers)} | {"mean": np.mean(layers, 0)}
    checked = 0
    for layer, full in settings.items():
        token = np.array([[full[len(src) - 1 + t, s] for s in range(a, b)] for t in range(len(tgt))])
        np.testing.assert_allclose(maps.maps[layer], token, rtol=1e-5, atol=1e-7)
        words = word_matrix(token, tgt_words, src_words, n_t, n_s)
        np.testing.assert_allclose(maps.words(layer), words, rtol=1e-5, atol=1e-7)
        rows = {(int(np.argmax(r)), t) for t, r in enumerate(words[:-1, :-1]) if r.max() > 0}
        cols = {(s, int(np.argmax(c))) for s, c in enumerate(words[:-1, :-1].T) if c.max() > 0}
        assert rows == row_argmax(words[:-1, :-1]) and cols == column_argmax(words[:-1, :-1])
        assert set(align(maps, layer, "row").links) == rows
        assert set(align(maps, layer, "column").links) == cols
        assert set(align(maps, layer, "intersection").links) == rows & cols
        assert set(align(maps, layer, "grow-diag").links) == grow_diag(rows, cols)
        checked += 1
    assert checked == 3


def test_mixing_and_gradient_maps_are_the_sentence_columns_of_the_prompt_maps(prompted):
    tr = force_translation(prompted, SRC, REF)
    a, b = tr.src_span
    src, tgt = list(tr.src_ids), list(tr.tgt_ids)
    for method, fn in (("attention_norms", attention_norms), ("value_zeroing", value_zeroing)):
        whole = fn(prompted, src, tgt).numpy()  # [L, T, prompt + prefix]
        maps = alignment_maps(prompted, tr, method)
        assert maps.layers == [str(i) for i in range(len(whole))]
        for i, m in enumerate(whole):
            np.testing.assert_allclose(maps.maps[str(i)], m[:, a:b], rtol=1e-5, atol=1e-8)
        np.testing.assert_allclose(maps.maps["mean"], whole.mean(0)[:, a:b], rtol=1e-5, atol=1e-8)
    saliency = attribute(prompted, tr, "saliency")
    assert saliency.scores.shape == (len(tgt), len(src))  # over the whole prompt
    np.testing.assert_allclose(alignment_maps(prompted, tr, "saliency").maps["mean"], saliency.scores[:, a:b],
                               rtol=1e-5, atol=1e-8)  # fmt: skip


def test_the_methods_offered_are_those_that_run(prompted, tok):
    offered = alignment_methods(prompted)
    assert "deeplift" not in offered and {"attention", "attention_norms", "alti_plus"} <= set(offered)
    gemma = LanternModel("tiny-gemma3", make_tiny_gemma3(len(tok)), tok, tok, template=FEW_SHOT["en-fr"],
                         stop_ids=_line_ends(tok))  # fmt: skip
    offered = alignment_methods(gemma)
    assert "alti_plus" not in offered and {"attention", "attention_norms", "value_zeroing"} <= set(offered)
    tr = force_translation(gemma, SRC, REF)
    with pytest.raises(ValueError, match="ALTI"):
        attribute(gemma, tr, "alti_plus")
    maps = alignment_maps(gemma, tr, "attention")
    assert maps.maps["mean"].shape == (len(tr.tgt_ids), tr.src_span[1] - tr.src_span[0])
    assert np.isfinite(maps.words()).all()


def test_a_chat_model_s_sentence_is_found_in_its_template_or_refused(tok):
    with_chat = copy.deepcopy(tok)  # a copy with a chat template: the fixture's is left as it is
    with_chat.chat_template = CHAT
    lm = LanternModel("tiny-chat", make_tiny_llama(len(tok)), with_chat, with_chat, chat=True)
    tr = force_translation(lm, SRC, REF)
    assert tr.src_span is None  # the adapter does not mark it: alignment finds it
    columns, src_index, _ = token_words(lm, tr)
    ids = list(tr.src_ids)
    assert columns.start > 0 and columns.stop < len(ids)
    assert with_chat.decode(ids[columns]).strip() == SRC
    assert src_index == words_by_decoding(with_chat, ids[columns])
    maps = alignment_maps(lm, tr, "attention")
    assert maps.maps["mean"].shape == (len(tr.tgt_ids), columns.stop - columns.start)

    shouting = copy.deepcopy(tok)
    shouting.chat_template = CHAT.replace("m['content']", "m['content'] | upper")
    lm = LanternModel("tiny-shouting", make_tiny_llama(len(tok)), shouting, shouting, chat=True)
    tr = force_translation(lm, SRC, REF)
    with pytest.raises(ValueError, match="cannot be located"):
        alignment_maps(lm, tr, "attention")


def test_the_corpus_run_keeps_the_matrices_the_alignments_page_shows(prompted):
    """``python -m explain.evaluate`` on a prompted model: each method's word matrices (scaled to a largest score of
    1) and row links are those of ``alignment_maps``, i.e. of the sentence inside the prompt."""
    from explain.evaluate import explain_sentence

    methods = ["attention", "attention_norms", "saliency"]
    record = explain_sentence(prompted, SRC, REF, methods, faithfulness=False, n_steps=4)
    tr = force_translation(prompted, SRC, REF)
    for method in methods:
        maps = alignment_maps(prompted, tr, method)
        kept = record["methods"][method]["word_scores"]
        assert set(kept) == set(maps.maps)
        for layer, matrix in kept.items():
            expected = maps.words(layer)
            np.testing.assert_allclose(np.array(matrix), expected / np.abs(expected).max(), atol=2e-6)
        assert {tuple(link) for link in record["methods"][method]["links"]} == set(align(maps, "mean", "row").links)
