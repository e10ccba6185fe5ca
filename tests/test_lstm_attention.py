import pytest
import torch
from transformers import AutoModelForSeq2SeqLM

from tests.conftest import ZH_EN, make_tiny_lstm
from training.batching import collate, encode_pairs
from training.corpora import Pair


def batch(tokenizers, pairs=ZH_EN[:4]):
    src, tgt = tokenizers
    examples, _ = encode_pairs([Pair(z, e) for z, e in pairs], src, tgt, max_tokens=64)
    return collate(examples, src.pad_token_id)


def test_output_shapes_and_attention_layout(tiny_lstm, tokenizers):
    b = batch(tokenizers)
    out = tiny_lstm(**b, output_attentions=True)
    n, s = b["input_ids"].shape
    t = b["labels"].shape[1]
    assert out.logits.shape == (n, t, tiny_lstm.config.tgt_vocab_size)
    assert len(out.cross_attentions) == 1  # one layer
    assert out.cross_attentions[0].shape == (n, 1, t, s)  # one head
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)


def test_attention_rows_sum_to_one_and_padding_gets_zero(tiny_lstm, tokenizers):
    b = batch(tokenizers, [("我爱你。", "I love you."), ("你好。", "Hello.")])
    assert b["attention_mask"][1].tolist() == [1, 1, 1, 0]  # the second source is padded
    alphas = tiny_lstm(**b, output_attentions=True).cross_attentions[0][:, 0]
    torch.testing.assert_close(alphas.sum(-1), torch.ones(alphas.shape[:2]), atol=1e-5, rtol=0)
    assert torch.count_nonzero(alphas[1, :, 3]) == 0  # exp(-inf) is exactly 0 on every CPU


def test_padding_does_not_change_a_sentence_result(tiny_lstm, tokenizers):
    alone = batch(tokenizers, [("你好。", "Hello.")])
    padded = batch(tokenizers, [("我爱你。", "I love you."), ("你好。", "Hello.")])
    a = tiny_lstm(**alone).logits[0]
    b = tiny_lstm(**padded).logits[1, : a.shape[0]]
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_left_padding_is_refused(tiny_lstm):
    ids = torch.tensor([[0, 5, 6]])
    with pytest.raises(ValueError, match="right-padded"):
        tiny_lstm(input_ids=ids, attention_mask=ids.ne(0).long(), decoder_input_ids=torch.tensor([[1]]))


def test_overfitting_a_tiny_batch_drives_the_loss_down(tokenizers):
    src, tgt = tokenizers
    model = make_tiny_lstm(len(src), len(tgt)).train()
    b = batch(tokenizers)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    first = model(**b).loss.item()
    for _ in range(200):
        opt.zero_grad()
        loss = model(**b).loss
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first


def test_save_and_load_give_identical_logits(tiny_lstm, tokenizers, tmp_path):
    import models.lstm_attention  # noqa: F401  (registration is what makes Auto* work)

    tiny_lstm.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    again = AutoModelForSeq2SeqLM.from_pretrained(tmp_path).eval()
    assert type(again) is type(tiny_lstm)
    b = batch(tokenizers)
    assert torch.equal(again(**b).logits, tiny_lstm(**b).logits)


def test_generate_greedy_equals_a_hand_written_greedy_loop(tokenizers):
    src, _ = tokenizers
    model = make_tiny_lstm(len(src), 50, seed=3)
    x = torch.tensor([src("我爱你。").input_ids])
    mask = torch.ones_like(x)
    generated = model.generate(input_ids=x, attention_mask=mask, max_new_tokens=8, num_beams=1, do_sample=False)
    ids = [model.config.decoder_start_token_id]
    with torch.no_grad():
        for _ in range(8):
            nxt = int(
                model(input_ids=x, attention_mask=mask, decoder_input_ids=torch.tensor([ids])).logits[0, -1].argmax()
            )
            ids.append(nxt)
            if nxt == model.config.eos_token_id:
                break
    assert generated[0].tolist()[: len(ids)] == ids


def test_beam_search_finds_a_sequence_at_least_as_likely_as_greedy(tokenizers):
    src, _ = tokenizers
    model = make_tiny_lstm(len(src), 50, seed=5)
    x = torch.tensor([src("他喜欢狗。").input_ids])
    mask = torch.ones_like(x)

    def score(seq: list[int]) -> float:
        with torch.no_grad():
            logp = model(
                input_ids=x, attention_mask=mask, decoder_input_ids=torch.tensor([seq[:-1]])
            ).logits.log_softmax(-1)
        return float(logp[0].gather(-1, torch.tensor(seq[1:])[:, None]).sum())

    kw = {"input_ids": x, "attention_mask": mask, "max_new_tokens": 6, "do_sample": False, "length_penalty": 0.0}
    greedy = model.generate(num_beams=1, **kw)[0].tolist()
    beam = model.generate(num_beams=4, early_stopping=True, **kw)[0].tolist()
    strip = lambda s: s[: s.index(2) + 1] if 2 in s else s  # noqa: E731
    assert score(strip(beam)) >= score(strip(greedy)) - 1e-4


def test_inputs_embeds_give_the_same_logits_as_ids(tiny_lstm, tokenizers):
    b = batch(tokenizers)
    by_ids = tiny_lstm(**b).logits
    by_embeds = tiny_lstm(
        inputs_embeds=tiny_lstm.get_encoder().embed_tokens(b["input_ids"]),
        attention_mask=b["attention_mask"],
        decoder_inputs_embeds=tiny_lstm.get_decoder().embed_tokens(b["decoder_input_ids"]),
    ).logits
    assert torch.equal(by_ids, by_embeds)


def test_logits_to_keep_projects_only_the_positions_asked_for(tiny_lstm, tokenizers):
    b = {k: v for k, v in batch(tokenizers).items() if k != "labels"}
    full = tiny_lstm(**b).logits
    keep = torch.tensor([[2], [0], [1], [3]])[: len(full)]
    kept = tiny_lstm(**b, logits_to_keep=keep).logits
    assert kept.shape == (len(full), 1, full.shape[-1])
    torch.testing.assert_close(kept[:, 0], full[torch.arange(len(full)), keep[:, 0]])


def test_incremental_decoding_equals_rereading_the_prefix_in_every_mode(tokenizers):
    """The decoder state carried by ``generate`` (greedy, beam with reordering, sampling, a forced prefix, a padded
    batch) gives the tokens and scores of the decoder re-reading the whole prefix at every step."""
    src, _ = tokenizers
    model = make_tiny_lstm(len(src), 60, seed=7)
    texts = ["我爱你。", "他喜欢狗。", "我很累。"]
    x = torch.nn.utils.rnn.pad_sequence(
        [torch.tensor(src(t).input_ids) for t in texts], batch_first=True, padding_value=0
    )
    mask = x.ne(0).long()
    runs = [
        {"num_beams": 1},
        {"num_beams": 4, "num_return_sequences": 2, "output_scores": True, "return_dict_in_generate": True},
        {"do_sample": True, "top_k": 0, "temperature": 1.5},
        {"num_beams": 3, "decoder_input_ids": torch.tensor([[1, 5, 9]] * 3)},
    ]
    for kwargs in runs:
        outs = []
        for use_cache in (True, False):
            torch.manual_seed(0)
            outs.append(
                model.generate(input_ids=x, attention_mask=mask, max_new_tokens=9, use_cache=use_cache, **kwargs)
            )
        cached, uncached = outs
        if isinstance(cached, torch.Tensor):
            assert torch.equal(cached, uncached), kwargs
        else:
            assert torch.equal(cached.sequences, uncached.sequences), kwargs
            torch.testing.assert_close(cached.sequences_scores, uncached.sequences_scores, rtol=1e-5, atol=1e-6)


@torch.no_grad()
def test_the_cache_continues_a_prefix_with_the_logits_of_a_full_pass(tiny_lstm, tokenizers):
    b = batch(tokenizers)
    full = tiny_lstm(**b).logits
    dec = b["decoder_input_ids"]
    first = tiny_lstm(
        input_ids=b["input_ids"], attention_mask=b["attention_mask"], decoder_input_ids=dec[:, :2], use_cache=True
    )
    assert first.cache.get_seq_length() == 2
    rest = tiny_lstm(
        input_ids=b["input_ids"], attention_mask=b["attention_mask"], decoder_input_ids=dec[:, 2:], cache=first.cache
    ).logits
    scale = float(full.abs().max())
    torch.testing.assert_close(torch.cat([first.logits, rest], 1), full, rtol=1e-5, atol=1e-5 * scale)
