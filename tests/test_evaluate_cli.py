"""The corpus evaluation CLI end to end on a tiny model: AER per method, resume after an interruption."""

import json
from pathlib import Path

import pytest

from explain import evaluate
from tests.test_train import TINY, TINY_TRANSFORMER
from training import train

SOURCES = ["我 爱 你 。", "他 喜 欢 狗 。", "我 很 累 。", "你 好 。"]
REFERENCES = ["I love you .", "He likes dogs .", "I am tired .", "Hello ."]
GOLD = ["1-1 2-2 3-3 4-4", "1-1 2-2 3p2 4-3 5-4", "1-1 2p2 3-3 4-4", "1-1 2p1 3-2"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Path:
    root = tmp_path_factory.mktemp("eval")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LANTERN_DATA", str(data_root))
        assert (
            train.main(
                [
                    "configs/lstm_zh_en.toml",
                    "--run-dir",
                    str(root / "run"),
                    "--export",
                    str(root / "ck" / "tiny"),
                    *TINY,
                    *TINY_TRANSFORMER,
                    "--set",
                    "train.max_steps=4",
                    "--no-test",
                ]
            )
            == 0
        )
    for name, lines in (("src.txt", SOURCES), ("ref.txt", REFERENCES), ("gold.txt", GOLD)):
        (root / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def run(corpus: Path, *extra: str) -> dict:
    out = corpus / "out" / "eval.json"
    args = [
        "--model",
        "tiny",
        "--source",
        str(corpus / "src.txt"),
        "--reference",
        str(corpus / "ref.txt"),
        "--gold",
        str(corpus / "gold.txt"),
        "--out",
        str(out),
        "--n-steps",
        "4",
        *extra,
    ]
    assert evaluate.main(args) == 0
    return json.loads(out.read_text())


def test_cli_scores_every_method_and_resumes(corpus, monkeypatch):
    monkeypatch.setenv("LANTERN_CHECKPOINTS", str(corpus / "ck"))
    first = run(corpus, "--limit", "2", "--restart", "--faithfulness", "1")
    assert first["sentences"] == 2
    lines = (corpus / "out" / "eval.jsonl").read_text().splitlines()
    assert len(lines) == 2
    summary = run(corpus)  # resumes: only sentences 3 and 4 are new
    lines_after = (corpus / "out" / "eval.jsonl").read_text().splitlines()
    assert lines_after[:2] == lines and len(lines_after) == 4
    assert summary["sentences"] == 4
    for method in ("attention", "rollout", "saliency", "input_x_gradient", "integrated_gradients"):
        entry = summary["methods"][method]
        assert 0.0 <= entry["aer"] <= 1.0 and 0.0 <= entry["precision"] <= 1.0
    # the no-model line: on these monotone toy pairs the diagonal finds every sure link
    assert summary["baselines"]["diagonal"]["recall"] == pytest.approx(1.0)
    heads = summary["methods"]["attention"]["aer_per_head"]
    assert len(heads) == 2 * 2  # layers × heads of the tiny Transformer
    assert sorted(summary["methods"]["attention"]["aer_per_layer"]) == ["0", "1"]
    assert "AOPC comprehensiveness ↑" in summary["methods"]["integrated_gradients"]
    assert summary["methods"]["integrated_gradients"]["AOPC comprehensiveness ↑ (sentences)"] == 1
    seconds = summary["seconds"]  # where the time went, over both runs
    assert seconds["with_faithfulness (sentences)"] == 1 and seconds["alignment_only (sentences)"] == 3
    assert seconds["total"] == pytest.approx(seconds["with_faithfulness"] + seconds["alignment_only"], abs=0.2)


def test_cli_scores_the_context_mixing_methods_layer_by_layer_and_smoothgrad(corpus, monkeypatch, tmp_path):
    monkeypatch.setenv("LANTERN_CHECKPOINTS", str(corpus / "ck"))
    out = tmp_path / "mixing.json"
    args = ["--model", "tiny", "--source", str(corpus / "src.txt"), "--reference", str(corpus / "ref.txt"),
            "--gold", str(corpus / "gold.txt"), "--out", str(out), "--methods",
            "attention_norms,value_zeroing,smoothgrad", "--n-samples", "2", "--noise-level", "0.1"]  # fmt: skip
    assert evaluate.main(args) == 0
    summary = json.loads(out.read_text())
    for method in ("attention_norms", "value_zeroing", "smoothgrad"):
        assert 0.0 <= summary["methods"][method]["aer"] <= 1.0
    for method in ("attention_norms", "value_zeroing"):
        assert sorted(summary["methods"][method]["aer_per_layer"]) == ["0", "1"]
    assert (summary["n_samples"], summary["noise_level"]) == (2, 0.1)
    assert evaluate.main([*args[:-4], "--noise-level", "3"]) == 2  # refused before anything is written


def test_cli_scores_every_extraction_and_chooses_on_a_dev_part(corpus, monkeypatch, tmp_path):
    from explain.alignment import EXTRACTIONS, extract_all

    monkeypatch.setenv("LANTERN_CHECKPOINTS", str(corpus / "ck"))
    out = tmp_path / "dev.json"
    args = ["--model", "tiny", "--source", str(corpus / "src.txt"), "--reference", str(corpus / "ref.txt"),
            "--gold", str(corpus / "gold.txt"), "--out", str(out),
            "--methods", "attention,input_x_gradient"]  # fmt: skip
    assert evaluate.main([*args, "--dev", "4"]) == 2  # nothing left to report on
    assert evaluate.main([*args, "--dev", "2"]) == 0
    summary = json.loads(out.read_text())
    assert summary["dev"] == {"chosen_on": "sentences 1-2", "reported_on": "sentences 3-4", "dev_sentences": 2,
                              "reported_sentences": 2}  # fmt: skip
    assert 0.0 <= summary["baselines"]["diagonal_reported"]["aer"] <= 1.0
    attention = summary["methods"]["attention"]
    by_extraction = attention["aer_by_extraction"]
    assert set(EXTRACTIONS) | {f"{e} +EOS" for e in EXTRACTIONS} == set(by_extraction)
    assert list(by_extraction["grow-diag"]) == ["mean", "0", "1"]  # the layer mean, then each layer
    assert by_extraction["row"]["mean"] == pytest.approx(attention["aer"])  # today's links, read back
    assert by_extraction["row"]["0"] == pytest.approx(attention["aer_per_layer"]["0"])
    choice = attention["dev_choice"]
    assert choice["layer"] in ("mean", "0", "1") and choice == {
        "setting": choice["setting"],
        **attention["aer_by_extraction_reported"][choice["setting"]],
    }
    assert "grow-diag-final signed" in summary["methods"]["input_x_gradient"]["aer_by_extraction"]
    record = json.loads((tmp_path / "dev.jsonl").read_text().splitlines()[0])
    words = record["methods"]["attention"]["word_scores"]["1"]
    assert extract_all(words)["row"] == set(map(tuple, record["methods"]["attention"]["per_layer"]["1"]))
