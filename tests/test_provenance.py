"""Training-data evidence and TracIn influence on a tiny model that Lantern trains here (three epochs, snapshots)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from captum.influence import TracInCP
from torch import nn

from tests.test_train import TINY
from training import train

pytest.importorskip("captum")


@pytest.fixture(scope="module")
def trained(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny LSTM trained 3 epochs on the tiny Tatoeba file, keeping all 3 end-of-epoch snapshots."""
    mp = pytest.MonkeyPatch()
    mp.setenv("LANTERN_DATA", str(data_root))
    tmp = tmp_path_factory.mktemp("prov")
    mp.setenv("LANTERN_MODEL_ROOTS", str(tmp))
    mp.setenv("LANTERN_CACHE", str(tmp / "cache"))
    args = ["configs/lstm_zh_en.toml", "--run-dir", str(tmp / "run"), "--export", str(tmp / "ck"), *TINY]
    extra = ["max_epochs=3", "tracin_snapshots=3", "early_stopping=0", "lr=0.01", "lr_schedule=constant"]
    assert train.main([*args, "--no-test", *[x for e in extra for x in ("--set", f"train.{e}")]]) == 0
    yield tmp / "ck"
    mp.undo()


@pytest.fixture(scope="module")
def lm(trained):
    from models import load_model

    return load_model(str(trained))


def test_training_keeps_snapshots_up_to_the_exported_model(trained):
    run = json.loads((trained.parent / "run" / "tracin" / "tracin.json").read_text())
    best = json.loads((trained / "scores.json").read_text())["steps"]
    shipped = json.loads((trained / "tracin" / "tracin.json").read_text())
    assert len(run) == 3 and [s["epoch"] for s in run] == [1, 2, 3]
    assert shipped and all(s["step"] <= best for s in shipped)
    assert all(s["lr"] == pytest.approx(0.01) for s in shipped)
    for s in shipped:
        assert (trained / s["weights"] / "model.safetensors").exists()
    assert "TracIn snapshots" in (trained / "README.md").read_text()


def test_the_index_holds_the_training_split_and_finds_ngrams_like_a_plain_scan(lm):
    from provenance import find_pairs, training_set

    ts = training_set(lm)
    card = (Path(lm.model.config.name_or_path) / "README.md").read_text()
    assert f'"train": {len(ts)}' in card  # exactly the pairs the model was trained on
    for query in ("啊啊啊", "我爱", "猫"):  # planted by the tiny corpus: 啊 repeated k times in copy k
        ev = find_pairs(lm, query)
        expected = [i for i, s in enumerate(ts.src) if query in s]
        assert ev.pairs.tolist() == expected and ev.n_pairs > 0
        overlapping = sum(s[j:].startswith(query) for s in ts.src for j in range(len(s)))
        assert ev.n_occurrences == overlapping
    tok = lm.tgt_tokenizer
    rows = [tok(t, add_special_tokens=False).input_ids for t in ts.tgt]
    ids = tok("really really", add_special_tokens=False).input_ids
    brute = [i for i, r in enumerate(rows) if any(r[j : j + len(ids)] == ids for j in range(len(r)))]
    assert find_pairs(lm, "really really", side="target").pairs.tolist() == brute and brute


def test_cooccurring_tokens_and_pairs_with_both_sides(lm):
    from provenance import find_pairs, training_set

    ts = training_set(lm)
    ev = find_pairs(lm, "猫", also="cats")
    assert set(ev.with_other.tolist()) == {
        i for i, (s, t) in enumerate(zip(ts.src, ts.tgt, strict=False)) if "猫" in s and "cats" in t
    }
    top = ev.cooccurring.set_index("token")
    assert top.loc["▁cats", "pairs"] == len(ev.with_other) and top.loc["▁cats", "lift"] > 1
    assert ev.examples.has_both.iloc[: len(ev.with_other)].all()
    with pytest.raises(ValueError, match="empty"):
        find_pairs(lm, "  ")


def _direct_tracin(lm, snaps, pair_src, pair_tgt, src, tgt, t, smoothing):
    """TracIn by its definition: Σ_k lr_k ∇_W ℓ(train) · ∇_W ℓ(test), W the output layer, gradients by autograd."""
    from provenance.tracin import load_snapshot, output_layer

    total = 0.0
    for snap in snaps:
        model = load_snapshot(snap)
        layer, weight, bias = output_layer(model)
        grads = []
        for s_ids, t_ids, labels, eps in ((pair_src, pair_tgt, pair_tgt, smoothing), (src, tgt, [tgt[t]], 0.0)):
            w = weight.detach().clone().requires_grad_(True)
            b = bias.detach().clone().requires_grad_(True)
            captured: list[torch.Tensor] = []
            hook = layer.register_forward_pre_hook(lambda _m, a, into=captured: into.append(a[0]))
            dec = torch.tensor([[model.config.decoder_start_token_id, *t_ids[:-1]]])
            model(input_ids=torch.tensor([s_ids]), decoder_input_ids=dec)
            hook.remove()
            h = captured[0][0].detach()
            if len(labels) == 1:  # the test: one output token
                h = h[t : t + 1]
            logits = F.linear(h, w, b)
            loss = F.cross_entropy(logits, torch.tensor(labels), label_smoothing=eps, reduction="sum")
            grads.append(torch.cat([g.flatten() for g in torch.autograd.grad(loss, [w, b])]))
        total += snap.lr * float(grads[0] @ grads[1])
    return total


def test_tracin_last_layer_equals_its_definition_and_the_retrieval_estimate_tracks_it(lm):
    from explain import translate
    from provenance.data import training_config, training_set
    from provenance.tracin import exact_scores, load_snapshot, snapshots

    snaps = snapshots(lm)
    assert len(snaps) >= 2
    ts = training_set(lm)
    tr = translate(lm, "我爱猫。")
    src, tgt = list(tr.src_ids), list(tr.tgt_ids)
    pairs = [0, 3, 7, 11]
    exact = exact_scores(lm, pairs, src, tgt, 1)
    smoothing = training_config(lm)["train"]["label_smoothing"]
    direct = []
    for i in pairs:
        p_src = lm.src_tokenizer(ts.src[i]).input_ids
        p_tgt = lm.tgt_tokenizer(ts.tgt[i]).input_ids
        direct.append(_direct_tracin(lm, snaps, p_src, p_tgt, src, tgt, 1, smoothing))
    direct = np.array(direct)
    np.testing.assert_allclose(exact, direct, rtol=1e-4, atol=1e-6 * np.abs(direct).max())
    assert len({round(x, 12) for x in direct}) == len(direct)  # different pairs, different scores

    from provenance.tracin import _test_vectors, estimated_scores, precompute

    proj = precompute(lm)
    models = [load_snapshot(s) for s in snaps]
    every = exact_scores(lm, list(range(len(ts))), src, tgt, 1, models)
    approx = estimated_scores(proj, [_test_vectors(m, src, tgt, 1, 0) for m in models])
    assert np.corrcoef(every, approx)[0, 1] > 0.9


class _PerPairLoss(nn.Module):
    """Summed token cross-entropy per example (Captum's "per-example" loss: reduction none)."""

    reduction = "none"

    def __init__(self, smoothing: float) -> None:
        super().__init__()
        self.smoothing = smoothing

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(
            logits.flatten(0, 1), labels.flatten(), ignore_index=-100, label_smoothing=self.smoothing, reduction="none"
        )
        return loss.view(labels.shape).sum(-1)


def test_tracin_agrees_with_captums_tracincp(lm, tmp_path):
    """Captum's exact TracInCP, restricted to a stand-in for the output layer, gives the same scores."""
    from explain import translate
    from provenance.data import training_config, training_set
    from provenance.tracin import exact_scores, load_snapshot, output_layer, snapshots

    snaps = snapshots(lm)
    ts = training_set(lm)
    smoothing = training_config(lm)["train"]["label_smoothing"]

    class LastLayer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.base = load_snapshot(snaps[0])
            _, w, b = output_layer(self.base)
            self.head = nn.Linear(w.shape[1], w.shape[0])
            self.head.weight.data, self.head.bias.data = w.detach().clone(), b.detach().clone()

        def forward(self, input_ids, mask, dec):
            layer, _, _ = output_layer(self.base)
            captured = []
            hook = layer.register_forward_pre_hook(lambda _m, a: captured.append(a[0]))
            with torch.no_grad():
                self.base(input_ids=input_ids, attention_mask=mask, decoder_input_ids=dec)
            hook.remove()
            return self.head(captured[0])

    def load(model: LastLayer, path: str) -> float:
        snap = snaps[int(path)]
        model.base = load_snapshot(snap)
        _, w, b = output_layer(model.base)
        model.head.weight.data, model.head.bias.data = w.detach().clone(), b.detach().clone()
        return snap.lr

    def batch(srcs, tgts, keep=None):
        s_len, t_len = max(map(len, srcs)), max(map(len, tgts))
        ids, mask = torch.zeros(len(srcs), s_len, dtype=torch.long), torch.zeros(len(srcs), s_len, dtype=torch.long)
        dec, labels = torch.zeros(len(srcs), t_len, dtype=torch.long), torch.full((len(srcs), t_len), -100)
        for i, (s, t) in enumerate(zip(srcs, tgts, strict=False)):
            ids[i, : len(s)], mask[i, : len(s)] = torch.tensor(s), 1
            dec[i, : len(t)] = torch.tensor([1, *t[:-1]])
            labels[i, : len(t)] = torch.tensor(t)
            if keep is not None:
                labels[i, [j for j in range(len(t)) if j != keep]] = -100
        return ids, mask, dec, labels

    pairs = list(range(6))
    train_batch = batch(
        [lm.src_tokenizer(ts.src[i]).input_ids for i in pairs], [lm.tgt_tokenizer(ts.tgt[i]).input_ids for i in pairs]
    )
    tr = translate(lm, "我爱猫。")
    test_batch = batch([list(tr.src_ids)], [list(tr.tgt_ids)], keep=1)
    dataset = torch.utils.data.TensorDataset(*train_batch)
    model = LastLayer()
    tracin = TracInCP(
        model, dataset, [str(i) for i in range(len(snaps))], checkpoints_load_func=load, layers=["head"],
        loss_fn=_PerPairLoss(smoothing), test_loss_fn=_PerPairLoss(0.0), batch_size=3,
    )  # fmt: skip
    captum_scores = tracin.influence(test_batch).detach().numpy()[0]
    ours = exact_scores(lm, pairs, list(tr.src_ids), list(tr.tgt_ids), 1)
    np.testing.assert_allclose(ours, captum_scores, rtol=1e-4, atol=1e-6 * np.abs(captum_scores).max())


def test_influence_lists_proponents_and_opponents_and_pairs_rank_themselves(lm):
    from provenance import influence, self_influence, training_set

    result = influence(lm, "我爱猫。", 1)
    ts = training_set(lm)
    assert len(result.table) > 0 and result.table.score.is_monotonic_decreasing
    assert (result.proponents().score > 0).all() and (result.opponents().score < 0).all()
    assert result.agreement > 0.5
    assert set(result.table.columns) >= {"pair", "source", "target", "score", "estimate", "kind"}
    ranks = self_influence(lm, list(range(0, len(ts), 3)), token=0)
    whole = self_influence(lm, list(range(0, len(ts), 3)))  # each pair queried with its whole loss
    assert whole["rank"].median() <= len(ts) / 4
    # chance is half the pairs; each tiny sentence has 4-5 near-copies (they differ by 啊 and "really") that rank
    # as high as the pair itself, so a quarter is what a working score can be held to here
    assert ranks["rank"].median() <= len(ts) / 4
    with pytest.raises(ValueError, match="not an output token"):
        influence(lm, "我爱猫。", "zebra")


def test_models_lantern_did_not_train_say_so(tmp_path):
    from provenance import NoTrainingData, find_pairs
    from provenance.tracin import snapshots
    from tests.conftest import make_tiny_marian

    make_tiny_marian(20, 20).save_pretrained(tmp_path / "hub-model")
    with pytest.raises(NoTrainingData, match="not trained by Lantern"):
        snapshots(tmp_path / "hub-model")

    class Hub:
        name = "hub-model"
        model = make_tiny_marian(20, 20)

    with pytest.raises(NoTrainingData, match="not trained by Lantern"):
        find_pairs(Hub(), "x")


def test_a_removal_run_trains_without_the_listed_pairs_on_the_same_tokenizers(trained, lm, tmp_path):
    from provenance import training_set

    full = training_set(lm)
    drop = [0, 5, 9]
    (tmp_path / "drop.json").write_text(json.dumps(drop))
    args = ["configs/lstm_zh_en.toml", "--run-dir", str(tmp_path / "run"), "--export", str(tmp_path / "ck"), *TINY]
    extra = [f"data.exclude={tmp_path / 'drop.json'}", f"tokenizer.from_folder={trained}", "train.max_steps=2"]
    assert train.main([*args, "--no-test", *[x for e in extra for x in ("--set", e)]]) == 0
    for name in ("tokenizer.json", "target_tokenizer/tokenizer.json"):
        assert (tmp_path / "ck" / name).read_text() == (trained / name).read_text()
    reduced = training_set(tmp_path / "ck")
    assert reduced.src == [s for i, s in enumerate(full.src) if i not in drop]


def test_output_evidence_reads_the_aligned_source_span_and_shows_in_a_notebook(lm):
    from explain import translate
    from provenance import find_pairs, output_evidence

    tr = translate(lm, "我爱猫。")
    ev = output_evidence(lm, tr, 1, (1, 2))  # 爱 (the source has no start token: position 1 is the second char)
    ref = find_pairs(lm, [tr.src_ids[1]], also=[tr.tgt_ids[1]])
    assert ev.pairs.tolist() == ref.pairs.tolist() and ev.with_other.tolist() == ref.with_other.tolist()
    assert "training pairs" in ev._repr_html_()
    with pytest.raises(ValueError, match="outside"):
        output_evidence(lm, tr, 1, (3, 99))


def test_a_fresh_run_in_an_old_run_folder_keeps_only_its_own_snapshots(data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("LANTERN_DATA", str(data_root))
    args = ["configs/lstm_zh_en.toml", "--run-dir", str(tmp_path / "run"), "--export", "none", *TINY]
    for epochs in ("2", "1"):
        assert train.main([*args, "--set", f"train.max_epochs={epochs}", "--set", "train.tracin_snapshots=3"]) == 0
    kept = json.loads((tmp_path / "run" / "tracin" / "tracin.json").read_text())
    assert [s["epoch"] for s in kept] == [1]
