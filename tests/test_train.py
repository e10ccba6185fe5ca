import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from models.registry import list_models
from training import train
from training.config import config_from_dict, load_config

REPO = Path(__file__).resolve().parents[1]
TINY = [
    "--set",
    "model.embed_dim=16",
    "--set",
    "model.hidden_size=32",
    "--set",
    "model.attention_dim=16",
    "--set",
    "data.val_size=8",
    "--set",
    "data.test_size=8",
    "--set",
    "train.batch_size=8",
    "--set",
    "tokenizer.tgt_vocab_size=150",
    "--set",
    "train.threads=1",
    "--set",
    "train.log_every=2",
    "--set",
    "train.eval_sentences=8",
    "--set",
    "train.warmup_steps=0",
]


def run_cli(tmp: Path, *extra: str) -> int:
    return train.main(
        ["configs/lstm_zh_en.toml", "--run-dir", str(tmp / "run"), "--export", str(tmp / "ck"), *TINY, *extra]
    )


def test_cli_trains_a_few_steps_and_exports_a_loadable_checkpoint(use_data_root, tmp_path, monkeypatch):
    assert run_cli(tmp_path, "--set", "train.max_steps=6", "--set", "train.eval_every=3") == 0
    ck = tmp_path / "ck"
    for name in (
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "tokenizer.json",
        "target_tokenizer/tokenizer.json",
        "history.json",
        "README.md",
        "scores.json",
        "lantern.json",
    ):
        assert (ck / name).exists(), name
    assert all(t.dtype == torch.float16 for t in load_file(ck / "model.safetensors").values())
    records = json.loads((ck / "history.json").read_text())["records"]
    assert [r["step"] for r in records if r["kind"] == "train"] == [2, 4, 6]
    assert [r["step"] for r in records if r["kind"] == "val"] == [3, 6]
    card = (ck / "README.md").read_text()
    scores = json.loads((ck / "scores.json").read_text())
    assert "CC-BY 2.0 FR" in card and "Split:" in card and scores["test"]["bleu_signature"] in card
    monkeypatch.setenv("LANTERN_CHECKPOINTS", str(tmp_path))
    assert [s.name for s in list_models() if s.kind == "checkpoint"] == ["ck"]


def test_resume_continues_from_the_saved_step_and_matches_an_uninterrupted_run(use_data_root, tmp_path):
    common = ("--set", "model.dropout=0.2", "--set", "train.save_every=4", "--set", "train.eval_every=100", "--no-test")
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert run_cli(straight, "--set", "train.max_steps=8", *common) == 0
    assert run_cli(split, "--set", "train.max_steps=4", *common) == 0
    assert torch.load(split / "run" / "last" / "trainer_state.pt", weights_only=True)["state"]["step"] == 4
    assert run_cli(split, "--set", "train.max_steps=8", "--resume", *common) == 0
    state = torch.load(split / "run" / "last" / "trainer_state.pt", weights_only=True)["state"]
    assert state["step"] == 8
    assert [r["step"] for r in state["history"] if r["kind"] == "train"] == [2, 4, 6, 8]
    a = load_file(straight / "run" / "last" / "model.safetensors")
    b = load_file(split / "run" / "last" / "model.safetensors")
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-6, rtol=0)


def test_a_transformer_run_resumes_with_its_tied_weights(use_data_root, tmp_path):
    common = ("--no-test", *TINY_TRANSFORMER, "--set", "tokenizer.shared=true", "--set", "train.save_every=2")
    assert run_cli(tmp_path, "--set", "train.max_steps=2", *common) == 0
    assert run_cli(tmp_path, "--set", "train.max_steps=4", "--resume", *common) == 0
    assert torch.load(tmp_path / "run" / "last" / "trainer_state.pt", weights_only=True)["state"]["step"] == 4
    assert run_cli(tmp_path, "--export-only", *common) == 0


def test_config_rejects_unknown_keys_and_bad_choices():
    with pytest.raises(ValueError, match="unknown keys in \\[train\\]"):
        config_from_dict({"train": {"learning_rate": 1}})
    with pytest.raises(ValueError, match="optimizer must be one of"):
        config_from_dict({}, ["train.optimizer=adagrad"])
    assert config_from_dict({}, ["train.lr=5e-4"]).train.lr == 5e-4


def test_every_key_of_the_shipped_presets_is_commented():
    for path in (REPO / "configs").glob("*.toml"):
        load_config(path)  # parses and validates
        for line in path.read_text().splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                assert "#" in line, f"{path.name}: uncommented key: {line}"


def test_export_only_reexports_a_finished_run_with_training_counts(use_data_root, tmp_path):
    assert run_cli(tmp_path, "--set", "train.max_steps=3", "--no-test") == 0
    (tmp_path / "ck" / "training_counts.json").unlink()
    assert run_cli(tmp_path, "--export-only", "--no-test") == 0
    counts = json.loads((tmp_path / "ck" / "training_counts.json").read_text())
    assert counts["source"]["爱"] > 0 and counts["target"]["</s>"] > 0
    assert "门" not in counts["source"]  # never in the tiny corpus
    assert "max_steps" in (tmp_path / "ck" / "README.md").read_text()


TINY_TRANSFORMER = [
    "--set",
    "model.architecture=transformer",
    "--set",
    "model.heads=2",
    "--set",
    "model.ffn_dim=32",
    "--set",
    "model.encoder_layers=2",
    "--set",
    "model.decoder_layers=2",
]


@pytest.mark.parametrize("shared", [False, True])
def test_cli_trains_a_transformer_that_plain_transformers_loads(use_data_root, tmp_path, shared):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, MarianMTModel

    extra = ["--set", f"tokenizer.shared={str(shared).lower()}", "--set", "train.max_steps=4", "--no-test"]
    assert run_cli(tmp_path, *TINY_TRANSFORMER, *extra) == 0
    ck = tmp_path / "ck"
    assert (ck / "target_tokenizer").exists() is not shared
    model = AutoModelForSeq2SeqLM.from_pretrained(ck, attn_implementation="eager")
    assert isinstance(model, MarianMTModel) and model.config.encoder_layers == 2
    tok = AutoTokenizer.from_pretrained(ck)
    out = model(
        **tok(["我爱你。"], return_tensors="pt"), decoder_input_ids=torch.tensor([[1, 5]]), output_attentions=True
    )
    assert len(out.cross_attentions) == 2 and out.cross_attentions[0].shape[1] == 2  # layers, heads
    assert "Transformer (Marian architecture)" in (ck / "README.md").read_text()


def test_training_runs_unchanged_under_torchrun_and_ranks_keep_identical_weights(use_data_root, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "training.train",
        "configs/lstm_zh_en.toml",
        "--run-dir",
        str(tmp_path / "run"),
        "--export",
        "none",
        *TINY,
        "--set",
        "train.max_steps=6",
        "--set",
        "train.batch_size=4",
        "--set",
        "model.dropout=0.2",
    ]
    log = tmp_path / "torchrun.log"
    with open(log, "w") as f:  # own process group: on a timeout the workers go too, not only torchrun
        proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            stdout=f,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )
        try:
            code = proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    output = log.read_text()
    assert code == 0, output[-3000:]
    ranks = [json.loads((tmp_path / "run" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["step"] == ranks[1]["step"] == 6
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]
    assert (tmp_path / "run" / "last" / "model.safetensors").exists()
    assert "2 ranks" in output


def test_adaptation_continues_on_in_domain_pairs_and_the_card_says_so(use_data_root, tmp_path):
    assert run_cli(tmp_path, "--set", "train.max_steps=3") == 0
    before = json.loads((tmp_path / "ck" / "scores.json").read_text())["test"]["bleu"]
    (tmp_path / "in.zh").write_text("门开了。\n门关了。\n", encoding="utf-8")
    (tmp_path / "in.en").write_text("THE DOOR OPENED.\nThe door closed.\n", encoding="utf-8")
    adapt = [
        *("--set", f"train.init_from={tmp_path / 'ck'}", "--set", "train.keep=last", "--set", "train.max_epochs=1"),
        *("--set", f"data.adapt_source={tmp_path / 'in.zh'}", "--set", f"data.adapt_target={tmp_path / 'in.en'}"),
        *("--set", "data.adapt_mix=4", "--set", "data.lowercase=true"),
    ]
    out = tmp_path / "adapted"
    argv = ["configs/lstm_zh_en.toml", "--run-dir", str(tmp_path / "run2"), "--export", str(out), *TINY, *adapt]
    assert train.main([*argv, "--no-test"]) == 0
    counts = json.loads((out / "training_counts.json").read_text())
    assert counts["target"]["</s>"] == 6  # one end per pair: the 2 in-domain pairs and 4 drawn from the corpus
    assert counts["source"]["<unk>"] >= 2  # 门 (door) is never in the tiny corpus: the in-domain pairs were read
    assert all(token == token.lower() for token in counts["target"])  # "THE DOOR" was lowercased
    card = (out / "README.md").read_text()
    assert "This model was adapted" in card and "2 in-domain sentence pairs" in card and "plus 4 pairs" in card
    assert "lowercased" in card and 'kept the last weights (`train.keep = "last"`)' in card
    assert f"Test BLEU of `{tmp_path / 'ck'}` before this run: {before:.2f}" in card
    with pytest.raises(ValueError, match="go together"):
        config_from_dict({"data": {"adapt_source": "x.txt"}})
