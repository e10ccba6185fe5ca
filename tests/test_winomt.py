"""The WinoMT gender-bias probe (explore.winomt): the data, the gender reader, the scores, the contrast, the CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from explore import winomt
from explore.winomt import (
    GenderReader,
    bias_scores,
    contrast_text,
    locate,
    main,
    read_winomt,
    scores_from_confusion,
    source_words,
    winomt_folder,
    with_determiners,
    word_links,
)

needs_data = pytest.mark.skipif(
    not (winomt_folder() / "en.txt").exists(),
    reason=f"WinoMT is not under the data root ({winomt_folder()}; see explore/winomt.py for where it comes from)",
)


@pytest.fixture(scope="module")
def reader() -> GenderReader:
    return GenderReader()


# --- the data -------------------------------------------------------------------------------


@needs_data
def test_read_winomt_counts_and_stereotypes():
    items = read_winomt()
    assert len(items) == 3888
    assert len(read_winomt("pro")) == 1584 and len(read_winomt("anti")) == 1584
    assert sum(i.stereotype == "" for i in items) == 3888 - 2 * 1584
    assert {i.gender for i in items} == {"male", "female", "neutral"}
    first = items[0]
    assert (first.id, first.gender, first.profession, first.stereotype) == (0, "female", "developer", "anti")
    assert first.sentence.split(" ")[first.index] == "developer"
    with pytest.raises(ValueError, match="unknown subset"):
        read_winomt("both")


def test_missing_data_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("LANTERN_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"winomt-en.*LANTERN_DATA"):
        read_winomt()


def test_source_words_are_the_noun_and_its_article():
    assert source_words("The developer argued with the designer.", 1) == [0, 1]
    assert source_words("The developer argued with the designer.", 5) == [4, 5]
    assert source_words("Someone told him.", 0) == [0]
    assert source_words("He warned an engineer.", 3) == [2, 3]
    # a double space: the data counts the empty word, the model reads the cleaned text
    assert source_words("The teacher asked the  physician about it.", 5) == [3, 4]


# --- reading the gender ---------------------------------------------------------------------


def test_reader_on_clear_french(reader):
    assert reader("la développeuse") == "female"
    assert reader("le développeur") == "male"
    assert reader("une avocate") == "female"
    assert reader("un avocat") == "male"
    assert reader("au médecin") == "male"
    assert reader("") == "unknown"
    assert reader("les") == "unknown"  # a plural article shows no gender
    assert "fr_core_news_sm" in reader.version


def test_reader_caches_per_string(reader, monkeypatch):
    reader("l'infirmière")
    monkeypatch.setattr(reader, "_read", lambda phrase: pytest.fail("not cached"))
    assert reader("l'infirmière") == "female"


# --- locating -------------------------------------------------------------------------------


def test_word_links_both_directions():
    # target words x source words; source 1 is the profession
    w = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.1, 0.3, 0.6], [0.0, 0.2, 0.8]])
    assert word_links(w, [1], "tgt") == [1]
    assert word_links(w, [1], "src") == [1]
    w[1] = [0.6, 0.4, 0.0]  # no target word's argmax is the profession any more
    assert word_links(w, [1], "tgt") == []
    assert word_links(w, [1], "src") == [1]
    assert word_links(w, [1], "both") == [1]


def test_determiners_join_and_pronouns_leave():
    words = ["Le", "développeur", "a", "dit", "qu'elle", "partait", "."]
    assert with_determiners(words, [1]) == [0, 1]
    assert with_determiners(words, [1, 3]) == [0, 1, 3]
    assert with_determiners(["Elle", "a", "vu", "la", "secrétaire"], [0, 4]) == [3, 4]


def test_locate_reads_token_weights_as_words():
    # "The developer left" -> "Le développeur est parti"; token rows predict target tokens, the last is EOS
    src_words = [0, 1, 1, 2, None]
    tgt_words = [0, 1, 1, 2, 3, None]
    weights = np.zeros((6, 5))
    weights[[0, 1, 2, 3, 4, 5], [0, 1, 2, 3, 3, 4]] = 1.0
    found = locate(weights, src_words, tgt_words, "Le développeur est parti", [0, 1], 3)
    assert found.words == (0, 1) and found.text == "Le développeur"


# --- scores ---------------------------------------------------------------------------------


def _frame(pairs: list[tuple[str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(pairs, columns=["gold", "predicted", "stereotype"])


def test_bias_scores_on_a_hand_computed_table():
    rows = (
        [("male", "male", "pro")] * 4
        + [("male", "female", "anti")] * 1
        + [("female", "female", "anti")] * 2
        + [("female", "male", "pro")] * 2
        + [("female", "unknown", "anti")] * 1
    )
    s = bias_scores(_frame(rows))
    # 6 right of 10; male: P 4/6, R 4/5; female: P 2/3, R 2/5
    assert s["accuracy"] == pytest.approx(60.0) and s["n"] == 10 and s["unknown"] == 1
    assert (s["precision_male"], s["recall_male"]) == pytest.approx((66.7, 80.0))
    assert s["f1_male"] == pytest.approx(round(2 * 66.7 * 80.0 / (66.7 + 80.0), 1)) == pytest.approx(72.7)
    assert (s["precision_female"], s["recall_female"]) == pytest.approx((66.7, 40.0))
    assert s["f1_female"] == pytest.approx(50.0) and s["delta_g"] == pytest.approx(22.7)
    # pro: 4 right of 6; anti: 2 right of 4
    assert (s["accuracy_pro"], s["accuracy_anti"], s["delta_s"]) == pytest.approx((66.7, 50.0, 16.7))
    assert s["unknown_by_gold"] == {"male": 0, "female": 1, "neutral": 0}


def test_google_french_log_reproduces_the_paper():
    """The confusion counts of the paper's logs/google/fr.log give its accuracy 63.6 and ΔG 6.4."""
    s = scores_from_confusion(
        {
            "male": {"male": 1462, "neutral": 134, "female": 213, "unknown": 17},
            "neutral": {"male": 158, "neutral": 52, "female": 29, "unknown": 1},
            "female": {"male": 750, "neutral": 92, "female": 957, "unknown": 23},
        }
    )
    assert s["n"] == 3888
    assert s["accuracy"] == pytest.approx(winomt.PUBLISHED_FR["Google Translate"]["accuracy"]) == pytest.approx(63.6)
    assert (s["f1_male"], s["f1_female"]) == (69.7, 63.3)
    assert s["delta_g"] == pytest.approx(winomt.PUBLISHED_FR["Google Translate"]["delta_g"]) == pytest.approx(6.4)


def test_pronoun_share_means_split_by_correctness():
    frame = _frame([("male", "male", ""), ("female", "male", ""), ("female", "female", "")])
    frame["located"] = ["le x", "", "la y"]
    frame["pronoun_share"] = [0.2, np.nan, 0.4]
    s = bias_scores(frame)
    assert s["pronoun_share_correct"] == pytest.approx(0.3) and s["pronoun_share_wrong"] is None
    assert s["not_located"] == 1 and s["located_share"] == pytest.approx(0.6667, abs=1e-4)
    with pytest.raises(ValueError):
        bias_scores(frame.iloc[:0])


# --- the contrast ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "words", "other"),
    [
        ("Le développeur a parlé.", [0, 1], "La développeuse a parlé."),
        ("Il a vu un avocat.", [3, 4], "Il a vu une avocate."),
        ("Elle parle à l'infirmier.", [3], "Elle parle à l'infirmière."),
        ("Cet auditeur rit.", [0, 1], "Cette auditrice rit."),
        ("Le mécanicien a appelé.", [0, 1], "La mécanicienne a appelé."),
        ("Le boulanger rit.", [0, 1], "La boulangère rit."),
        ("Il voit le secrétaire.", [2, 3], "Il voit la secrétaire."),
        ("Il a vu son infirmière.", [3, 4], "Il a vu son infirmier."),
        ("L'employé rit.", [0], "L'employée rit."),
    ],
)
def test_contrast_text_round_trips(output, words, other):
    assert contrast_text(output, words) == other
    assert contrast_text(other, words) == output


def test_contrast_text_contractions_and_failures():
    assert contrast_text("Il a parlé au médecin.", [3, 4]) == "Il a parlé à la médecin."
    assert contrast_text("Il a parlé de la développeuse.", [4, 5]) == "Il a parlé du développeur."
    assert contrast_text("Elle parla du chef.", [2, 3]) == "Elle parla de la cheffe."
    assert contrast_text("L'architecte est parti.", [0]) is None  # neither article nor ending tells
    assert contrast_text("Le chat dort.", []) is None


# --- the probe and the command line ---------------------------------------------------------


@needs_data
def test_probe_three_sentences(reader):
    from models import load_model

    lm = load_model("transformer-en-fr")
    seen: list[float] = []
    frame = winomt.probe(lm, read_winomt()[:3], progress=seen.append, reader=reader)
    assert list(frame.columns) == list(winomt.COLUMNS) and len(frame) == 3
    assert frame["output"].str.len().gt(0).all()
    assert set(frame["predicted"]) <= {"male", "female", "unknown"}
    assert seen[-1] == pytest.approx(1.0)
    located = frame[frame["located"].str.len() > 0]
    for row in located.itertuples():  # the located phrase is made of the output's own words
        words = row.output.split(" ")
        assert row.located == " ".join(words[int(i)] for i in row.located_words.split())
        assert 0 <= row.pronoun_share <= 1
    with pytest.raises(winomt.ProbeCancelled):
        winomt.probe(lm, read_winomt()[:3], cancel=lambda: True, reader=reader)


def test_cli_bad_arguments_exit_2(capsys, tmp_path):
    assert main(["--model", "transformer-en-fr", "--limit", "-1", "--out", str(tmp_path / "w.json")]) == 2
    assert "--limit" in capsys.readouterr().err
    assert main(["--model", "transformer-en-fr", "--out", str(tmp_path / "w.txt")]) == 2
    assert ".json" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(["--model", "transformer-en-fr", "--subset", "neither", "--out", str(tmp_path / "w.json")])
    assert stop.value.code == 2
    assert not list(tmp_path.iterdir())


def test_cli_missing_data_exit_2(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("LANTERN_DATA", str(tmp_path))
    assert main(["--model", "transformer-en-fr", "--out", str(tmp_path / "w.json")]) == 2
    assert "winomt-en" in capsys.readouterr().err and not (tmp_path / "w.json").exists()


def test_hand_labels_are_the_seeded_sample():
    labels = winomt.read_hand_labels(winomt.HAND_LABELS)
    assert sorted(labels) == winomt.hand_label_sample()
    assert {label for _, label in labels.values()} == {"male", "female", "unknown"}
    # a label holds for the output that was read: a row with another output is not compared
    output, label = labels[47]
    frame = pd.DataFrame({"id": [47, 69], "output": [output, "autre"], "located": ["x", "y"]})
    frame["predicted"] = [label, "?"]
    check = winomt.agreement(frame, labels)
    assert check["n"] == 1 and check["agree"] == 1
