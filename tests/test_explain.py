import numpy as np
import pytest
import torch

from explain.attention import extract_attention
from explain.generation import translate
from models.adapter import Decoding, InputError, LanternModel
from tests.conftest import make_tiny_lstm


@pytest.fixture()
def lm(tokenizers) -> LanternModel:
    src, tgt = tokenizers
    return LanternModel("tiny", make_tiny_lstm(len(src), len(tgt), seed=1), src, tgt, max_source_tokens=6)


def test_translation_probabilities_match_the_model(lm):
    tr = translate(lm, "我爱你。", Decoding(max_new_tokens=5))
    assert len(tr.tgt_tokens) == len(tr.tgt_ids) == len(tr.logprobs) == len(tr.entropy) <= 5
    start = lm.model.config.decoder_start_token_id
    with torch.no_grad():
        for t, tok in enumerate(tr.tgt_ids):  # recompute each step's probability from scratch
            prefix = torch.tensor([[start, *tr.tgt_ids[:t]]])
            logits = lm.model(input_ids=torch.tensor([tr.src_ids]), decoder_input_ids=prefix).logits[0, -1]
            assert abs(float(logits.log_softmax(-1)[tok]) - tr.logprobs[t]) < 1e-5
    assert np.all(tr.entropy >= 0) and np.all(tr.alt_probs[:, :-1] >= tr.alt_probs[:, 1:])
    assert tr.alt_tokens[0][0] == tr.tgt_tokens[0]  # greedy picks the most probable token


def test_unknown_characters_are_flagged_not_dropped(lm):
    tr = translate(lm, "我爱丼。", Decoding(max_new_tokens=3))
    assert tr.unknown == ("丼",)
    assert tr.src_tokens == ("我", "爱", "<unk>", "。")


def test_long_input_is_truncated_and_says_so(lm):
    tr = translate(lm, "我爱你我爱你我爱你", Decoding(max_new_tokens=3))
    assert tr.truncated and tr.n_src_tokens == 9 and len(tr.src_ids) == 6


@pytest.mark.parametrize("text", ["", "   ", "\u200b\u200b", "\t\n"])
def test_empty_input_raises_a_clear_error(lm, text):
    with pytest.raises(InputError, match="empty"):
        translate(lm, text)


def test_bad_decoding_settings_raise_a_clear_error():
    with pytest.raises(InputError, match="num_beams"):
        Decoding(num_beams=0)


def test_attention_maps_match_the_translation(lm):
    tr = translate(lm, "我爱你。", Decoding(num_beams=3, max_new_tokens=6))
    maps = extract_attention(lm, tr)
    assert maps.cross.shape == (1, 1, len(tr.tgt_tokens), len(tr.src_tokens))
    np.testing.assert_allclose(maps.cross.sum(-1), 1.0, atol=1e-5)
    assert maps.encoder_self is None and maps.decoder_self is None  # an LSTM has no self-attention


def test_attention_from_the_teacher_forced_pass_equals_generate_steps(lm):
    tr = translate(lm, "他喜欢狗。", Decoding(max_new_tokens=6))
    maps = extract_attention(lm, tr)
    x = torch.tensor([tr.src_ids])
    out = lm.model.generate(
        input_ids=x,
        attention_mask=torch.ones_like(x),
        max_new_tokens=6,
        do_sample=False,
        output_attentions=True,
        return_dict_in_generate=True,
    )
    steps = np.stack([step[0][0, 0, -1].numpy() for step in out.cross_attentions])  # last row of each step
    np.testing.assert_allclose(steps[: len(tr.tgt_ids)], maps.cross[0, 0], atol=1e-5)


def test_shared_model_is_not_mutated(lm):
    before = {k: v.clone() for k, v in lm.model.state_dict().items()}
    tr = translate(lm, "我爱你。", Decoding(num_beams=2))
    extract_attention(lm, tr)
    assert not lm.model.training
    assert all(torch.equal(before[k], v) for k, v in lm.model.state_dict().items())


def test_forced_decoding_scores_any_output(lm):
    from explain.generation import force_translation

    forced = force_translation(lm, "我爱你。", "I like cats.")
    assert forced.tgt_tokens[-1] == "</s>" and forced.text == "I like cats."
    assert np.all(forced.logprobs <= 0)
    with pytest.raises(InputError, match="empty"):
        force_translation(lm, "我爱你。", "  ")


def test_forcing_an_alternative_changes_the_continuation_and_keeps_the_models_probability(lm):
    own = translate(lm, "我爱你。", Decoding(max_new_tokens=6))
    step = 1
    alternative = lm.tgt_tokenizer.convert_tokens_to_ids(own.alt_tokens[step][1])  # the runner-up at step 1
    forced = translate(lm, "我爱你。", Decoding(max_new_tokens=6), prefix=(*own.tgt_ids[:step], alternative))
    assert forced.tgt_ids[: step + 1] == (*own.tgt_ids[:step], alternative)
    assert forced.tgt_ids != own.tgt_ids and "forced" in forced.decoding
    # the forced token's probability is what the model gave it at that step
    assert forced.probs[step] == pytest.approx(float(own.alt_probs[step][1]), abs=1e-6)
    np.testing.assert_allclose(forced.logprobs[:step], own.logprobs[:step], atol=1e-6)


def test_forcing_the_models_own_tokens_reproduces_its_output(lm):
    own = translate(lm, "他喜欢狗。", Decoding(max_new_tokens=6))
    again = translate(lm, "他喜欢狗。", Decoding(max_new_tokens=6), prefix=own.tgt_ids[:2])
    assert again.tgt_ids == own.tgt_ids


def test_beam_tree_merges_shared_prefixes_and_scores_each_hypothesis(lm):
    from explain.beam import beam_search, prefix_tree

    beam = beam_search(lm, "我爱你。", num_beams=4, n_best=3, max_new_tokens=5)
    assert len(beam.hypotheses) == 3 and len(set(h.tgt_ids for h in beam.hypotheses)) == 3
    assert list(beam.beam_scores) == sorted(beam.beam_scores, reverse=True)
    best = translate(lm, "我爱你。", Decoding(num_beams=4, max_new_tokens=5))
    assert beam.hypotheses[0].tgt_ids == best.tgt_ids  # the top of the n-best list is beam search's output
    nodes = prefix_tree(beam)
    assert len(nodes) == len({h.tgt_ids[: i + 1] for h in beam.hypotheses for i in range(len(h.tgt_ids))})
    roots = [n for n in nodes if n.parent == -1]
    assert all(n.step == 0 for n in roots) and sorted(r for n in roots for r in n.ranks) == [0, 1, 2]
    for n in nodes:  # a node's probability is the hypothesis' own step probability
        h = beam.hypotheses[n.ranks[0]]
        assert n.prob == pytest.approx(float(h.probs[n.step]), abs=1e-6)
