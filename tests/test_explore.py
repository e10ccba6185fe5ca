"""The dataset explorer's pure parts: batched decoding equals the Translate page's one-by-one decoding, the per-example
metrics, datasets by name and upload, slicing, the CLI, and background runs that can be cancelled."""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest
import sacrebleu
import torch

from explain.generation import translate
from explore import jobs
from explore.run import Cancelled, explore, generate_all, load, main, save, summary
from explore.sets import Dataset, DatasetError, dataset, from_upload
from explore.table import by_group, filtered, length_bucket, metrics, slices
from models.adapter import LanternModel
from models.decoding import Decoding
from tests.conftest import ZH_EN, make_tiny_llama, make_tiny_lstm, make_tiny_marian

SOURCES = [zh for zh, _ in ZH_EN]
REFS = [en for _, en in ZH_EN]


@pytest.fixture(params=["lstm", "marian", "llama"])
def lm(request, tokenizers) -> LanternModel:
    src, tgt = tokenizers
    if request.param == "llama":
        return LanternModel("llama", make_tiny_llama(len(tgt)), tgt, tgt)
    make = make_tiny_lstm if request.param == "lstm" else make_tiny_marian
    return LanternModel(request.param, make(len(src), len(tgt)), src, tgt)


def small(lm: LanternModel) -> Decoding:
    return Decoding(max_new_tokens=12)


def test_batched_outputs_and_probabilities_equal_one_by_one_decoding(lm):
    encs = [lm.encode_source(s) for s in SOURCES]
    outs = generate_all(lm, [e.ids for e in encs], small(lm), batch_size=3)  # batches of mixed lengths
    for text, out in zip(SOURCES, outs, strict=True):
        tr = translate(lm, text, small(lm))
        assert out.ids == list(tr.tgt_ids)
        np.testing.assert_allclose(np.exp(out.logprobs), tr.probs, rtol=1e-4, atol=1e-6)
        logp = torch.log_softmax(lm.score(list(tr.src_ids), list(tr.tgt_ids)).logits[0].float(), -1)
        entropy = -(logp.exp() * logp).sum(-1).detach().numpy()
        np.testing.assert_allclose(out.entropies, entropy, rtol=1e-4, atol=1e-5)
        assert np.all(out.entropies >= -1e-6) and np.all(out.entropies <= math.log(logp.shape[-1]) + 1e-4)


def test_per_example_metrics_hold_their_definitions(tokenizers):
    src, tgt = tokenizers
    lm = LanternModel("marian", make_tiny_marian(len(src), len(tgt)), src, tgt)
    ds = Dataset("t", "tiny", "zh", "en", (*SOURCES, ""), (*REFS, "x"))
    frame = explore(lm, ds, tgt_lang="en")
    assert len(frame) == len(ds) and frame.id.tolist() == list(range(len(ds)))
    empty = frame.iloc[-1]
    assert empty.output == "" and "empty" in empty.note  # an unusable line is a row that says so, not a crash
    rows = frame.iloc[:-1]
    assert (rows["min probability"] <= rows["mean probability"] + 1e-9).all()
    assert rows["mean probability"].between(0, 1).all()
    for _, r in rows.iterrows():
        assert pytest.approx(sacrebleu.sentence_bleu(r.output, [r.reference]).score) == r.BLEU
        assert r.chrF == pytest.approx(sacrebleu.sentence_chrf(r.output, [r.reference]).score)
        assert r["source tokens"] == len(lm.src_tokenizer(r.source).input_ids)
    info = summary(frame, ds, "marian", 1.0, "en")
    assert info["skipped"] == 1 and info["sentences"] == len(ds)
    assert info["chrf"] == pytest.approx(
        sacrebleu.CHRF().corpus_score(list(rows.output), [list(rows.reference)]).score, abs=0.01
    )


def test_a_second_model_adds_its_output_and_the_disagreement(tokenizers):
    src, tgt = tokenizers
    a = LanternModel("a", make_tiny_marian(len(src), len(tgt)), src, tgt)
    ds = Dataset("t", "tiny", "zh", "en", tuple(SOURCES[:4]))
    same = explore(a, ds, second=a)
    assert (same["second output"] == same.output).all() and np.allclose(same.disagreement[same.output != ""], 0)
    b = LanternModel("b", make_tiny_lstm(len(src), len(tgt), seed=3), src, tgt)
    other = explore(a, ds, second=b)
    assert (other.disagreement >= 0).all() and (other.disagreement > 0).any()


def test_cancel_stops_between_batches(tokenizers):
    src, tgt = tokenizers
    lm = LanternModel("lstm", make_tiny_lstm(len(src), len(tgt)), src, tgt)
    seen = []
    with pytest.raises(Cancelled, match="after 2 of"):
        generate_all(
            lm,
            [lm.encode_source(s).ids for s in SOURCES],
            small(lm),
            batch_size=2,
            progress=lambda d, n: seen.append(d),
            cancel=lambda: len(seen) >= 1,
        )


def test_save_and_load_round_trip(tmp_path, tokenizers):
    src, tgt = tokenizers
    lm = LanternModel("lstm", make_tiny_lstm(len(src), len(tgt)), src, tgt)
    ds = Dataset("t", "tiny", "zh", "en", tuple(SOURCES[:3]), tuple(REFS[:3]))
    frame = explore(lm, ds)
    save(tmp_path, frame, summary(frame, ds, "lstm", 1.0, "en"))
    back, info = load(tmp_path)
    pd.testing.assert_frame_equal(back[frame.columns], frame, check_dtype=False)
    assert info["model"] == "lstm"


def test_datasets_by_name_head_and_upload(use_data_root):
    whole = dataset("test:lstm-zh-en")
    assert dataset("test:lstm-zh-en[:2]").sources == whole.sources[:2] and whole.references is not None
    with pytest.raises(DatasetError, match="unknown dataset"):
        dataset("nope")
    with pytest.raises(DatasetError, match="name\\[:n\\]"):
        dataset("winomt[:0]")
    ds = from_upload(b"a b\tx y\nc\tz\n", "en", "fr")
    assert ds.sources == ("a b", "c") and ds.references == ("x y", "z") and ds.name.startswith("upload:")
    assert ds.head(1).sources == ("a b",) and ds.head(5) is ds
    assert from_upload(None, "en", "fr", b"a b\nc\n", b"x y\nz\n").fingerprint() == ds.fingerprint()
    from training.corpora import CorpusFormatError

    with pytest.raises(CorpusFormatError, match="line 2"):
        from_upload(b"a\tb\nno tab here\n", "en", "fr")


def test_winomt_and_the_gold_set_when_their_files_are_here():
    from explore.sets import offered

    names = offered("en")
    if "winomt" not in names or "gold-align-en-fr" not in names:
        pytest.skip("the shared data folder (../shared/data) is not on this machine")
    wino = dataset("winomt")
    assert len(wino) == 3888 and wino.references is None
    assert wino.extra["stereotype"].count("pro") == wino.extra["stereotype"].count("anti") == 1584
    assert set(wino.extra["gold gender"]) == {"male", "female", "neutral"}
    gold = dataset("gold-align-en-fr")
    assert len(gold) == len(gold.references) == 447
    assert "test:lstm-zh-en" not in names and "test:lstm-zh-en" in offered("zh")


def test_filters_buckets_and_groups():
    frame = pd.DataFrame(
        {
            "id": [0, 1, 2, 3],
            "source": ["The cat", "A dog runs fast today", "cat " * 12, "x"],
            "output": ["Le chat", "Un chien", "chat", ""],
            "source words": [2, 5, 12, 1],
            "chrF": [80.0, 20.0, 50.0, np.nan],
            "stereotype": ["pro", "anti", "pro", "anti"],
        }
    )
    assert metrics(frame) == ["source words", "chrF"] and slices(frame) == ["stereotype"]
    assert filtered(frame, search="CAT").id.tolist() == [0, 2]
    assert filtered(frame, words=(2, 5)).id.tolist() == [0, 1]
    assert filtered(frame, metric="chrF", low=30, high=100).id.tolist() == [0, 2]  # NaN rows drop out of a range
    with pytest.raises(KeyError, match="no column"):
        filtered(frame, metric="BLEU")
    assert length_bucket(frame["source words"]).astype(str).tolist() == ["1–5", "1–5", "11–15", "1–5"]
    g = by_group(frame, "chrF", frame["stereotype"])
    assert g.set_index("group")["mean"].to_dict() == pytest.approx({"anti": 20.0, "pro": 65.0})
    assert g.set_index("group")["count"].to_dict() == {"anti": 1, "pro": 2}


def test_cli_refuses_bad_arguments_with_exit_2(capsys, use_data_root):
    assert main(["--model", "lstm-zh-en", "--dataset", "nope"]) == 2
    assert "unknown dataset" in capsys.readouterr().err
    assert main(["--model", "lstm-zh-en", "--dataset", "test:transformer-en-de"]) == 2  # English into zh->en
    assert "translates from 'zh'" in capsys.readouterr().err
    assert main(["--model", "transformer-en-fr", "--dataset", "gold-align-en-fr"]) == 2  # not in this data root
    assert "not found" in capsys.readouterr().err
    assert main(["--model", "lstm-zh-en", "--tsv", "/no/such/file"]) == 2


def test_a_background_run_can_be_cancelled(use_data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("LANTERN_CACHE", str(tmp_path))
    from models.registry import get_spec

    spec = get_spec("lstm-zh-en")
    ds = Dataset("upload:x", "many", "zh", "en", tuple(SOURCES) * 200, tuple(REFS) * 200)
    job = jobs.start(spec, ds)
    assert job.status == "running" and jobs.start(spec, ds).folder == job.folder  # the same run, not a second one
    jobs.cancel(job.folder)
    deadline = time.monotonic() + 30
    while jobs.status(job.folder).status == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert jobs.status(job.folder).status == "cancelled"


def test_why_this_gender_contrasts_the_first_token_that_differs():
    from explore.winomt import gender_contrast
    from models.loading import load_model

    lm = load_model("transformer-en-fr")
    output = "Le développeur a parlé avec la designer."
    ids = lm.output_ids(output)
    step, alt_id, alt = gender_contrast(lm, ids, output, [0, 1])
    assert alt == "La développeuse a parlé avec la designer."
    assert ids[:step] == lm.output_ids(alt)[:step] and alt_id == lm.output_ids(alt)[step] != ids[step]
    assert gender_contrast(lm, ids, output, []) is None  # nothing located, nothing to contrast
    other = lm.output_ids("Les développeurs a parlé.")  # the model wrote other tokens than the re-tokenized text
    assert gender_contrast(lm, other, output, [0, 1]) is None
