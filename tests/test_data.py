from pathlib import Path

import pytest

from training.corpora import (
    CleaningReport,
    DataNotFoundError,
    Pair,
    clean_pairs,
    clean_text,
    load_multi30k,
    load_splits,
    read_tatoeba,
    split_pairs,
)


def test_clean_text_normalises_and_removes_invisible_characters():
    assert clean_text("\ufeffTom\u200b\u00a0is\u3000here\u202f!\x07") == "Tom is here !"
    assert clean_text("ＡＢＣ１２３？") == "ABC123?"  # NFKC folds full-width forms
    assert clean_text("  a \t\n b  ") == "a b"
    assert clean_text("\u202eevil\u202c") == "evil"  # bidi overrides are dropped


def test_read_tatoeba_strips_bom_and_keeps_attribution(use_data_root: Path):
    pairs = read_tatoeba(use_data_root / "tatoeba-en-zh" / "cmn.txt", src_lang="zh")
    assert pairs[0].src == "我爱你。"  # not "\ufeff..." on the English side either
    assert pairs[0].tgt == "I love you."
    assert pairs[0].attribution.startswith("CC-BY 2.0 (France) Attribution: tatoeba.org #0")
    assert not any("\ufeff" in p.src + p.tgt for p in pairs)
    en_first = read_tatoeba(use_data_root / "tatoeba-en-zh" / "cmn.txt", src_lang="en")
    assert en_first[0] == Pair("I love you.", "我爱你。", pairs[0].attribution)


def test_clean_pairs_drops_empty_long_and_duplicates():
    report = CleaningReport()
    pairs = [Pair("a", "b"), Pair(" a ", "b\u200b"), Pair("\u200b", "x"), Pair("y" * 50, "z"), Pair("c", "d")]
    kept = clean_pairs(pairs, max_chars=20, report=report)
    assert kept == [Pair("a", "b"), Pair("c", "d")]
    assert (report.read, report.duplicate, report.empty, report.too_long, report.kept) == (5, 1, 1, 1, 2)


def test_split_has_no_sentence_in_two_splits():
    # sentence "s1" has two translations; "t2" is the translation of two sources
    pairs = [Pair(f"s{i}", f"t{i}") for i in range(200)]
    pairs += [Pair("s1", "t1-bis"), Pair("s2-bis", "t2"), Pair("s3", "t3-bis")]
    splits = split_pairs(pairs, val_size=20, test_size=20, seed=7)
    seen_src: dict[str, str] = {}
    seen_tgt: dict[str, str] = {}
    for name in ("train", "val", "test"):
        for p in getattr(splits, name):
            assert seen_src.setdefault(p.src, name) == name
            assert seen_tgt.setdefault(p.tgt, name) == name
    assert sum(splits.sizes().values()) == len(pairs)
    assert splits.sizes()["test"] >= 20 and splits.sizes()["val"] >= 20
    again = split_pairs(pairs, val_size=20, test_size=20, seed=7)
    assert again.test == splits.test  # a fixed seed gives the same split
    assert split_pairs(pairs, 20, 20, seed=8).test != splits.test


def test_load_splits_on_a_corpus_file(use_data_root: Path):
    splits = load_splits("tatoeba-en-zh", "zh", "en", val_size=5, test_size=5, seed=1)
    assert splits.report["duplicate"] == 1 and splits.report["empty"] == 1 and splits.report["too_long"] == 1
    everything = splits.train + splits.val + splits.test
    assert Pair("Tom 在这里。", "Tom is here.") in [Pair(p.src, p.tgt) for p in everything]
    assert {p.src for p in splits.train}.isdisjoint({p.src for p in splits.test})


def test_multi30k_official_split_is_read_and_cleaned(use_data_root: Path):
    raw = load_multi30k("val")
    assert raw[1] == Pair("Two men talk.", "Zwei\u00a0Männer reden.")
    splits = load_splits("multi30k-en-de", "en", "de")
    assert splits.val[1].tgt == "Zwei Männer reden."


def test_missing_corpus_says_what_to_put_where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LANTERN_DATA", str(tmp_path))
    with pytest.raises(DataNotFoundError) as err:
        load_splits("tatoeba-en-zh", "zh", "en")
    message = str(err.value)
    assert str(tmp_path / "tatoeba-en-zh" / "cmn.txt") in message
    assert "LANTERN_DATA" in message and "manythings" in message


@pytest.mark.skipif(not (Path(__file__).parents[2] / "shared" / "data").exists(), reason="no shared corpora here")
def test_real_tatoeba_split_has_no_leakage(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("LANTERN_DATA", raising=False)
    splits = load_splits("tatoeba-en-zh", "zh", "en")
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        for side in ("src", "tgt"):
            left = {getattr(p, side) for p in getattr(splits, a)}
            assert left.isdisjoint(getattr(p, side) for p in getattr(splits, b))
    assert splits.sizes()["test"] >= 1000 and splits.report["duplicate"] > 0


def test_tokenized_bleu_reproduces_the_official_multi30k_preprocessing():
    from training.scoring import moses_tokenized_bleu

    refs = ["ein mann mit einem orangefarbenen hut , der etwas anstarrt ."]
    result = moses_tokenized_bleu(["Ein Mann mit einem orangefarbenen Hut, der etwas anstarrt."], refs, "de")
    assert result["bleu"] == pytest.approx(100.0) and "tok:none" in result["bleu_signature"]
    assert moses_tokenized_bleu(["Zwei Hunde."], refs, "de")["bleu"] < 10


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"a\tb\nc\n", "line 2 has 1 tab-separated fields"),
        (b"a\tb\n\nc\td\n", "line 2 is empty"),
        (b"a\tb\nc\td\te\tf\n", "line 2 has 4"),
        (b"a\tb\n\xff\xfe\tx\n", "line 2: not UTF-8"),
        (b"\tb\n", "line 1: the source is empty"),
    ],
)
def test_malformed_uploads_name_the_line(data, message):
    from training.corpora import CorpusFormatError, parse_tsv

    with pytest.raises(CorpusFormatError, match=message):
        parse_tsv(data)


def test_uploads_parse_with_bom_crlf_and_two_files():
    from training.corpora import CorpusFormatError, parse_tsv, parse_two_files

    assert parse_tsv("\ufeffI love you.\tJe t'aime.\r\nHi.\tSalut.\n".encode()) == [
        Pair("I love you.", "Je t'aime."),
        Pair("Hi.", "Salut."),
    ]
    assert parse_two_files(b"a\nb\n", b"c\nd") == [Pair("a", "c"), Pair("b", "d")]
    with pytest.raises(CorpusFormatError, match="3 lines but the target file has 2"):
        parse_two_files(b"a\nb\nc\n", b"c\nd\n")
