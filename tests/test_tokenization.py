import pytest

from training.tokenization import load_tokenizer, save_tokenizer, tokenizer_stats, train_tokenizer


def test_char_tokenizer_round_trips_and_keeps_each_character(tokenizers):
    src, _ = tokenizers
    ids = src("我爱你。").input_ids
    assert src.convert_ids_to_tokens(ids) == ["我", "爱", "你", "。"]  # no special tokens on the source
    assert src.decode(ids) == "我爱你。"


def test_bpe_target_tokenizer_round_trips_and_ends_with_eos(tokenizers):
    _, tgt = tokenizers
    ids = tgt("I love you.").input_ids
    assert ids[-1] == tgt.eos_token_id
    assert tgt.decode(ids, skip_special_tokens=True) == "I love you."


def test_unseen_characters_become_unknown(tokenizers):
    src, _ = tokenizers
    ids = src("我爱丼").input_ids
    assert ids[-1] == src.unk_token_id
    stats = tokenizer_stats(src, ["我爱丼", "我爱你"])
    assert stats["sentences_with_unk_pct"] == pytest.approx(50.0)


def test_tokenizer_save_load_round_trip(tokenizers, tmp_path):
    _, tgt = tokenizers
    save_tokenizer(tgt, tmp_path)
    again = load_tokenizer(tmp_path)
    assert again("I like cats.").input_ids == tgt("I like cats.").input_ids
    assert (again.pad_token_id, again.bos_token_id, again.eos_token_id, again.unk_token_id) == (0, 1, 2, 3)


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown tokenizer kind"):
        train_tokenizer(["a"], "morpheme")
