"""Gemma 3 270M as a built-in model: a base model prompted to translate (models.prompting), and the prompt's
machinery on a tiny model (the sentence's span inside the prompt, stopping at the end of the line, showing the
sentence's tokens only)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from explain import export
from explain.aggregate import merge_subwords
from explain.attention import extract_attention
from explain.attention_views import attention_view
from explain.attribution import attribute
from explain.focus import focus_attribution, hidden_share
from explain.generation import force_translation, translate
from models.adapter import Decoding, LanternModel
from models.loading import _line_ends
from models.prompting import FEW_SHOT
from tests.conftest import make_tiny_llama
from training.tokenization import train_tokenizer
from viz.tokens import prettify_tokens

TEXTS = [a for few in FEW_SHOT.values() for pair in few.examples for a in pair] + [
    "English: I love you.\nFrench: Je t'aime.\n\n",
    "Two dogs play in the snow.",
]


@pytest.fixture(scope="module")
def prompted() -> LanternModel:
    tok = train_tokenizer(TEXTS * 3, "bpe", vocab_size=300, add_eos=True)
    model = make_tiny_llama(len(tok))
    return LanternModel("tiny-prompted", model, tok, tok, template=FEW_SHOT["en-fr"], stop_ids=_line_ends(tok))


def test_the_sentence_is_a_span_of_its_prompt(prompted):
    src = prompted.encode_source("Two dogs play in the snow.")
    a, b = src.span
    assert 0 < a < b < len(src.ids)
    assert prompted.src_tokenizer.decode(src.ids[a:b]).strip() == "Two dogs play in the snow."
    prompt, first, end = FEW_SHOT["en-fr"].render("Two dogs play in the snow.")
    assert prompt[first:end] == "Two dogs play in the snow." and prompt.endswith("\nFrench:")
    assert prompt.count("English: ") == 4  # three examples, then the sentence


def test_an_output_ends_at_the_end_of_its_line(prompted):
    end = prompted.end_id
    assert end in prompted.stops()
    assert prompted.cut([5, 6, end, 7, 8]) == [5, 6, end]
    src = prompted.encode_source("I love you.")
    assert prompted.generate_ids(src.ids, Decoding(max_new_tokens=8), prefix=[5, end, 9]) == [5, end]
    tr = force_translation(prompted, "I love you.", "Je t'aime.")
    assert tr.tgt_ids[-1] == end and "\n" not in tr.text  # the line end is scored, not shown in the text
    assert tr.src_span == src.span


def test_explanations_show_the_sentence_and_say_what_the_prompt_holds(prompted):
    tr = translate(prompted, "I love you.", Decoding(max_new_tokens=4))
    a, b = tr.src_span
    maps = extract_attention(prompted, tr)
    assert maps.src_span == tr.src_span
    whole, whole_cols, _ = attention_view(maps, "causal", 0, 0)
    np.testing.assert_allclose(whole.sum(1), 1, atol=1e-5)
    focused, cols, rows = attention_view(maps, "causal", 0, 0, whole_prompt=False)
    n_prefix = len(whole_cols) - len(tr.src_tokens)
    assert cols == (*tr.src_tokens[a:b], *whole_cols[len(tr.src_tokens) :])
    assert focused.shape == (len(rows), (b - a) + n_prefix)
    assert (focused.sum(1) < 1 + 1e-5).all() and (focused.sum(1) > 0).all()

    attr = attribute(prompted, tr, "integrated_gradients", n_steps=512)  # a rough random model
    assert attr.src_span == tr.src_span and len(attr.src_tokens) == len(tr.src_tokens)
    shown = focus_attribution(attr)
    assert shown.src_tokens == tr.src_tokens[a:b] and shown.src_span is None
    np.testing.assert_allclose(shown.scores, attr.scores[:, a:b])
    share = hidden_share(attr)
    inside = np.abs(attr.scores[:, a:b]).sum(1) / np.abs(attr.scores).sum(1)
    np.testing.assert_allclose(share, 1 - inside, atol=1e-5)

    outside = np.ones(len(tr.src_tokens), bool)
    outside[a:b] = False
    assert np.abs(attr.scores[:, outside]).max() == pytest.approx(0, abs=1e-7)  # the prompt is the baseline there
    change = attr.scores.sum(1) + attr.prefix_scores.sum(1) - attr.delta  # completeness over the sentence alone
    assert np.abs(attr.delta).max() <= 0.05 * np.abs(change).max() + 1e-4

    words = merge_subwords(attr)  # the span follows the tokens into words
    wa, wb = words.src_span
    assert "".join(words.src_tokens[wa:wb]).replace(" ", "") == "Iloveyou."
    for back in (export.from_json(export.to_json(attr)), export.from_csv(export.to_csv(attr))):
        assert back.src_span == attr.src_span
    with pytest.raises(ValueError, match="src_span"):
        export.from_json(json.dumps({**json.loads(export.to_json(attr)), "src_span": "all"}))


def test_few_shot_examples_come_from_the_training_split_not_the_test_split():
    from training.corpora import load_splits

    for few in FEW_SHOT.values():
        splits = load_splits(few.corpus, few.src_lang, few.tgt_lang)
        train = {(p.src, p.tgt) for p in splits.train}
        test = {p.src for p in splits.test} | {p.tgt for p in splits.test}
        for src, tgt in few.examples:
            assert (src, tgt) in train, f"{src!r} is not a training pair of {few.corpus}"
            assert src not in test and tgt not in test


# The real model: installed by `make install` (requirements-models.txt), converted once to the cache (~70 s).


@pytest.fixture(scope="module")
def gemma_zh_en() -> LanternModel:
    from models.loading import load_model

    return load_model("gemma-3-270m-zh-en")


def test_gemma_translates_the_seed_sentence(gemma_zh_en):
    tr = translate(gemma_zh_en, "我爱北京天安门")
    assert "Beijing" in tr.text and "Tiananmen" in tr.text
    a, b = tr.src_span
    assert prettify_tokens(tr.src_tokens[a:b]) == ["我", "爱", "北京", "天", "安", "门"]
    assert tr.tgt_ids[-1] == gemma_zh_en.end_id
    maps = extract_attention(gemma_zh_en, tr)
    rows = maps.decoder_self[:, :, len(tr.src_tokens) - 1 :]  # the positions that predict the output
    np.testing.assert_allclose(rows.sum(-1), 1, atol=1e-4)


def test_gemma_prompts_share_one_copy_of_the_weights(gemma_zh_en):
    from models.loading import load_model
    from models.registry import get_spec
    from models.sources import GEMMA3, PACKAGED

    en_fr = load_model("gemma-3-270m-en-fr")
    assert en_fr.model is gemma_zh_en.model and en_fr.lock is gemma_zh_en.lock
    assert "aime" in translate(en_fr, "I love you.").text
    base = get_spec(GEMMA3)
    assert base.task == "generate" and base.decoder_only and "Gemma Terms of Use" in base.licence
    assert get_spec("gemma-3-270m-en-de").prompt == "en-de"
    assert not load_model(GEMMA3).chat  # a base model: the text is the prompt, as typed
    terms = PACKAGED[GEMMA3].folder / "GEMMA_TERMS.html"
    assert terms.exists() and "Gemma" in terms.read_text(encoding="utf-8")


def test_perturbations_touch_the_sentence_only(prompted, monkeypatch):
    import explain.perturbation as perturbation
    from explain.faithfulness import measure

    tr = translate(prompted, "I love you.", Decoding(max_new_tokens=3))
    a, b = tr.src_span
    seen = []
    real = perturbation.evaluate_masks

    def spy(obj, masks, *args, **kwargs):
        seen.append(masks.clone())
        return real(obj, masks, *args, **kwargs)

    monkeypatch.setattr(perturbation, "evaluate_masks", spy)
    occ = attribute(prompted, tr, "occlusion", with_prefix=False)
    outside = np.ones(len(tr.src_tokens), bool)
    outside[a:b] = False
    assert np.abs(occ.scores[:, outside]).max() < 1e-9  # the prompt is never perturbed
    assert np.abs(occ.scores[:, a:b]).max() > 0
    lime = attribute(prompted, tr, "lime", with_prefix=False, n_samples=16)
    assert np.abs(lime.scores[:, outside]).max() < 1e-9

    faith = measure(prompted, tr, attribute(prompted, tr, "input_x_gradient"))
    assert faith.kendall_loo.shape == (len(tr.tgt_tokens),)
    assert np.isfinite(faith.comprehensiveness).all()


def test_batched_scoring_gives_the_outputs_of_one_by_one_translation(prompted):
    from training.score_pretrained import main, translate_batch

    texts = ["I love you.", "Two dogs play in the snow.", "He did it."]
    alone = [translate(prompted, t, Decoding(max_new_tokens=6)).text for t in texts]
    assert translate_batch(prompted, texts, 6) == alone  # left padding changes nothing
    assert main(["--model", "no-such-model"]) == 2
    assert main(["--model", "lstm-zh-en", "--n", "0"]) == 2
