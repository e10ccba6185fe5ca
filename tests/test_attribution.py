"""Attribution engine: invariants, agreement with plain Captum loops, export round trips."""

import threading
from dataclasses import replace

import numpy as np
import pytest
import torch
from captum.attr import (
    LayerFeatureAblation,
    LayerGradientXActivation,
    LayerIntegratedGradients,
    ShapleyValueSampling,
)

from explain import export
from explain.aggregate import merge_subwords, word_spans
from explain.attribution import METHODS, attribute, forward_passes, list_methods
from explain.generation import translate
from explain.perturbation import lime
from models.adapter import Decoding, LanternModel
from tests.conftest import assert_near_zero, make_tiny_llama, make_tiny_lstm, make_tiny_marian


@pytest.fixture(params=["lstm", "marian", "llama"])
def lm(request, tokenizers) -> LanternModel:
    src, tgt = tokenizers
    if request.param == "lstm":
        model = make_tiny_lstm(len(src), len(tgt), seed=1)
        for p in model.parameters():
            p.requires_grad_(False)
    elif request.param == "marian":
        model = make_tiny_marian(len(src), len(tgt))
    else:  # decoder-only: the prompt and the continuation share one vocabulary
        return LanternModel("llama", make_tiny_llama(len(tgt)), tgt, tgt)
    return LanternModel(request.param, model, src, tgt)


@pytest.fixture()
def tr(lm):
    return translate(lm, "我爱你。", Decoding(max_new_tokens=5))


def reference_forward(lm: LanternModel, tr, step: int):
    """Plain Captum forward: log p of the chosen token at one step, for a batch Captum expands."""
    token, s = tr.tgt_ids[step], len(tr.src_ids)

    def forward(*ids: torch.Tensor) -> torch.Tensor:
        if lm.is_seq2seq():
            src_ids, dec_ids = ids
            logits = lm.model(
                input_ids=src_ids, attention_mask=torch.ones_like(src_ids), decoder_input_ids=dec_ids
            ).logits
            return logits.log_softmax(-1)[:, step, token]
        logits = lm.model(input_ids=ids[0], attention_mask=torch.ones_like(ids[0])).logits
        return logits.log_softmax(-1)[:, s - 1 + step, token]

    return forward


def ids(lm: LanternModel, tr) -> tuple[torch.Tensor, ...]:
    """Captum inputs: (source ids, decoder input ids), or (prompt + prefix ids,) for decoder-only."""
    dec = lm.decoder_inputs(list(tr.tgt_ids))
    if lm.is_seq2seq():
        return torch.tensor([tr.src_ids]), torch.tensor([dec])
    return (torch.tensor([[*tr.src_ids, *dec]]),)


def layers(lm: LanternModel) -> list[torch.nn.Module]:
    return [lm.source_embedding(), lm.target_embedding()] if lm.is_seq2seq() else [lm.source_embedding()]


def split(lm: LanternModel, tr, attrs) -> tuple[torch.Tensor, torch.Tensor]:
    """Captum's per-layer outputs -> (source part [S, ...], target-prefix part [P, ...])."""
    if lm.is_seq2seq():
        return attrs[0][0], attrs[1][0]
    whole = attrs[0][0] if isinstance(attrs, (list, tuple)) else attrs[0]
    return whole[: len(tr.src_ids)], whole[len(tr.src_ids) :]


def test_every_method_gives_the_documented_shapes(lm, tr):
    for method in METHODS:
        if method == "deeplift" and lm.name in ("lstm", "llama"):
            with pytest.raises(ValueError, match="LSTM" if lm.name == "lstm" else "encoder-decoder"):
                attribute(lm, tr, method)
            continue
        if method in ("attention_norms", "value_zeroing", "alti_plus") and lm.name == "lstm":  # no value vectors
            with pytest.raises(ValueError, match="LSTM"):
                attribute(lm, tr, method)
            continue
        a = attribute(lm, tr, method, n_steps=8, n_samples=8)
        t, s = len(tr.tgt_tokens), len(tr.src_tokens)
        assert a.scores.shape == (t, s) and a.step_logprobs.shape == (t,) and a.step_entropy.shape == (t,)
        if a.prefix_scores is not None:
            assert a.prefix_scores.shape == (t, len(a.prefix_tokens)) == (t, t if lm.is_seq2seq() else t - 1)
            # step t reads decoder inputs 0..t (the start token first), or 0..t-1 after a prompt
            assert np.allclose(np.triu(a.prefix_scores, 1 if lm.is_seq2seq() else 0), 0.0)
        np.testing.assert_allclose(a.step_logprobs, tr.logprobs, atol=1e-5)
        assert np.isfinite(a.scores).all()


def single(lm: LanternModel) -> list[torch.nn.Module] | torch.nn.Module:
    """Captum's layer argument: both embedding modules, or the one a decoder-only model has."""
    return layers(lm) if lm.is_seq2seq() else layers(lm)[0]


def test_integrated_gradients_matches_a_plain_captum_loop(lm, tr):
    ours = attribute(lm, tr, "integrated_gradients", n_steps=16)
    inputs = ids(lm, tr)
    baselines = tuple(torch.zeros_like(x) for x in inputs)
    for step in range(len(tr.tgt_ids)):
        lig = LayerIntegratedGradients(reference_forward(lm, tr, step), single(lm))
        a_src, a_dec = split(lm, tr, lig.attribute(inputs, baselines=baselines, n_steps=16))
        np.testing.assert_allclose(ours.scores[step], a_src.sum(-1).detach().numpy(), atol=1e-4)
        np.testing.assert_allclose(ours.prefix_scores[step], a_dec.sum(-1).detach().numpy(), atol=1e-4)


def test_input_x_gradient_and_saliency_match_captum(lm, tr):
    ixg, sal = attribute(lm, tr, "input_x_gradient"), attribute(lm, tr, "saliency")
    inputs = ids(lm, tr)
    for step in range(len(tr.tgt_ids)):
        fwd = reference_forward(lm, tr, step)
        a_src, a_dec = split(lm, tr, LayerGradientXActivation(fwd, single(lm)).attribute(inputs))
        g_src, g_dec = split(
            lm, tr, LayerGradientXActivation(fwd, single(lm), multiply_by_inputs=False).attribute(inputs)
        )
        np.testing.assert_allclose(ixg.scores[step], a_src.sum(-1).detach().numpy(), atol=1e-5)
        np.testing.assert_allclose(ixg.prefix_scores[step], a_dec.sum(-1).detach().numpy(), atol=1e-5)
        np.testing.assert_allclose(sal.scores[step], g_src.norm(dim=-1).detach().numpy(), atol=1e-5)
        np.testing.assert_allclose(sal.prefix_scores[step], g_dec.norm(dim=-1).detach().numpy(), atol=1e-5)
    assert (sal.scores >= 0).all() and (sal.prefix_scores >= 0).all()


def test_occlusion_matches_captum_layer_feature_ablation(lm, tr):
    ours = attribute(lm, tr, "occlusion")
    inputs = ids(lm, tr)
    for step in range(len(tr.tgt_ids)):
        fwd = reference_forward(lm, tr, step)
        if lm.is_seq2seq():  # LayerFeatureAblation takes one layer: the source, then the decoder inputs
            parts = []
            for layer, x in zip(layers(lm), inputs, strict=True):
                mask = torch.arange(x.shape[1])[None, :, None]  # one feature per token
                parts.append(
                    LayerFeatureAblation(fwd, layer).attribute(inputs, layer_baselines=0.0, layer_mask=mask)[0, :, 0]
                )
            ref_src, ref_dec = parts
        else:
            mask = torch.arange(inputs[0].shape[1])[None, :, None]
            whole = LayerFeatureAblation(fwd, layers(lm)[0]).attribute(inputs, layer_baselines=0.0, layer_mask=mask)[
                0, :, 0
            ]
            ref_src, ref_dec = whole[: len(tr.src_ids)], whole[len(tr.src_ids) :]
        np.testing.assert_allclose(ours.scores[step], ref_src.detach().numpy(), atol=1e-5)
        np.testing.assert_allclose(ours.prefix_scores[step], ref_dec.detach().numpy(), atol=1e-5)


def test_shapley_sampling_matches_captum_with_the_same_orders(lm, tr):
    ours = attribute(lm, tr, "shapley_value_sampling", n_samples=6, seed=3)
    inputs = ids(lm, tr)
    embeds = tuple(layer(x) for layer, x in zip(layers(lm), inputs, strict=True))
    widths = [e.shape[1] for e in embeds]
    for step in range(len(tr.tgt_ids)):

        def on_embeddings(*e: torch.Tensor, step: int = step) -> torch.Tensor:
            hooks = [
                layer.register_forward_hook(lambda m, i, o, x=x: x) for layer, x in zip(layers(lm), e, strict=True)
            ]
            try:
                return reference_forward(lm, tr, step)(*(x.expand(len(e[0]), -1) for x in inputs))
            finally:
                for h in hooks:
                    h.remove()

        masks = tuple((sum(widths[:i]) + torch.arange(w))[None, :, None] for i, w in enumerate(widths))
        torch.manual_seed(3)
        ref = ShapleyValueSampling(on_embeddings).attribute(
            embeds, baselines=tuple(0.0 for _ in embeds), feature_mask=masks, n_samples=6
        )
        ref_src, ref_dec = (
            split(lm, tr, [r.detach() for r in ref]) if lm.is_seq2seq() else split(lm, tr, ref[0].detach())
        )
        np.testing.assert_allclose(ours.scores[step], ref_src[:, 0].numpy(), atol=1e-5)
        np.testing.assert_allclose(ours.prefix_scores[step], ref_dec[:, 0].numpy(), atol=1e-5)


def test_integrated_gradients_is_complete(lm, tr):
    baseline = "pad" if lm.is_seq2seq() else "unk"  # see the next test
    a = attribute(lm, tr, "integrated_gradients", n_steps=64, baseline=baseline)
    change = np.abs(a.scores.sum(1) + a.prefix_scores.sum(1))
    assert np.all(np.abs(a.delta) <= 1e-3 * np.maximum(change, 1.0))


def test_delta_flags_a_zero_baseline_under_rms_norm(tokenizers):
    """RMSNorm(a·x) is the same for every a > 0: from all-zero embeddings the IG path misses the jump at 0."""
    _, tgt = tokenizers
    lm = LanternModel("llama", make_tiny_llama(len(tgt)), tgt, tgt)
    tr = translate(lm, "I love", Decoding(max_new_tokens=4))
    a = attribute(lm, tr, "integrated_gradients", n_steps=64, baseline="pad")
    assert np.abs(a.delta).max() > 0.05


def test_tokens_equal_to_the_baseline_get_zero(lm):
    tr = translate(lm, "我爱你。", Decoding(max_new_tokens=4))
    pad = lm.src_tokenizer.pad_token_id
    padded = type(tr)(**{**tr.__dict__, "src_ids": (*tr.src_ids, pad), "src_tokens": (*tr.src_tokens, "<pad>")})
    for method in ("input_x_gradient", "integrated_gradients", "occlusion", "shapley_value_sampling"):
        a = attribute(lm, padded, method, n_steps=8, n_samples=6)
        assert_near_zero(a.scores[:, -1], a.scores)


def test_contrast_with_the_same_target_is_zero(lm, tr):
    same = lm.decode(list(tr.tgt_ids))
    alt = lm.tgt_tokenizer(same).input_ids  # a random model may emit a non-canonical split: compare by step
    equal = [t for t in range(min(len(alt), len(tr.tgt_ids))) if alt[t] == tr.tgt_ids[t]]
    assert equal
    for method in ("integrated_gradients", "occlusion"):
        a = attribute(lm, tr, method, target="contrast", contrast_target=same, n_steps=8)
        # log p(a) − log p(a) is 0 for every input, so its gradients and occlusion drops are exactly 0
        assert np.count_nonzero(a.scores[equal]) == 0 and np.count_nonzero(a.prefix_scores[equal]) == 0
    one = attribute(lm, tr, "input_x_gradient", target="contrast", contrast_token=(1, tr.tgt_tokens[1]))
    assert one.steps == (1,) and np.count_nonzero(one.scores) == 0


def test_contrast_token_explains_the_difference_of_log_probs(lm, tr):
    alt = tr.alt_tokens[0][1]  # the runner-up at step 0
    a = attribute(lm, tr, "occlusion", target="contrast", contrast_token=(0, alt))
    assert a.steps == (0,) and "rather than" in a.contrast
    assert np.count_nonzero(a.scores[1:]) == 0  # only the contrasted step is explained: the others are never computed


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "gradcam"}, "unknown method"),
        ({"target": "surprise"}, "unknown target"),
        ({"target": "contrast"}, "alternative"),
        ({"target": "contrast", "contrast_target": "   "}, "alternative"),
        ({"target": "contrast", "contrast_token": (0, "")}, "not a token"),
        ({"target": "contrast", "contrast_token": (99, "▁I")}, "outside the output"),
        ({"n_steps": 0}, "n_steps"),
        ({"embedding_agg": "median"}, "aggregation"),
    ],
)
def test_bad_arguments_give_a_clear_error(lm, tr, kwargs, message):
    with pytest.raises(ValueError, match=message):
        attribute(lm, tr, **{"method": "input_x_gradient", **kwargs})


def test_concurrent_attributions_equal_serial_ones(lm, tr):
    other = translate(lm, "他喜欢狗。", Decoding(max_new_tokens=5))
    serial = [attribute(lm, x, "integrated_gradients", n_steps=8).scores for x in (tr, other)]
    results: dict[int, np.ndarray] = {}

    def run(i: int, x) -> None:
        for _ in range(3):
            results[i] = attribute(lm, x, "integrated_gradients", n_steps=8).scores

    threads = [threading.Thread(target=run, args=(i, x)) for i, x in enumerate((tr, other))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for i in range(2):  # another session's hooks would change the numbers entirely, not in the last bits
        np.testing.assert_allclose(results[i], serial[i], rtol=1e-6, atol=1e-6 * np.abs(serial[i]).max())


def test_shared_model_is_unchanged_and_has_no_hooks_left(lm, tr):
    before = {k: v.clone() for k, v in lm.model.state_dict().items()}
    for method in ("integrated_gradients", "occlusion", "lime"):
        attribute(lm, tr, method, n_steps=4, n_samples=4)
    assert all(torch.equal(before[k], v) for k, v in lm.model.state_dict().items())
    assert not any(m._forward_hooks for m in lm.model.modules())


def test_lime_recovers_the_weights_of_a_linear_score():
    weights = torch.tensor([[0.5, -1.0, 2.0, 0.0], [1.0, 1.0, -0.5, 3.0]])  # [T=2, J=4]

    class Linear:  # the interface of Objective that lime() uses
        src_ids = torch.zeros(4, dtype=torch.long)
        n_steps = n_prefix = 2
        src_embeds, src_base = torch.ones(4, 1), torch.zeros(4, 1)
        dec_embeds = torch.zeros(2, 1)
        fixed = torch.zeros(4, dtype=torch.bool)  # no prompt around the text: every token may be perturbed

        def __call__(self, src: torch.Tensor, dec: torch.Tensor) -> torch.Tensor:
            return 0.3 + src[:, :, 0] @ weights.T

        def copies_per_chunk(self, prefix: int, backward: bool) -> int:
            return 10  # a few masks per pass, so chunking is exercised too

    coef = lime(Linear(), with_prefix=False, n_samples=200, generator=torch.Generator().manual_seed(0), ridge=0.0)
    torch.testing.assert_close(coef, weights, atol=1e-4, rtol=0)


def test_word_merge_keeps_totals_and_finds_words():
    assert word_spans(["▁The", "▁Tian", "an", "men", "."]) == [(0, 1), (1, 4), (4, 5)]
    assert word_spans(["ĠThe", "Ġcat", "s", "!"]) == [(0, 1), (1, 3), (3, 4)]
    assert word_spans(["the", "play", "##ing", "cat"]) == [(0, 1), (1, 3), (3, 4)]
    assert word_spans(["我", "爱", "北", "京"]) == [(0, 1), (1, 2), (2, 3), (3, 4)]
    assert word_spans(["<s>", "▁I", "▁love", "</s>"]) == [(0, 1), (1, 2), (2, 3), (3, 4)]


def test_merged_attribution_preserves_sums(lm, tr):
    a = attribute(lm, tr, "integrated_gradients", n_steps=8)
    merged = merge_subwords(a, "sum")
    assert merged.scores.sum() == pytest.approx(a.scores.sum(), abs=1e-5)
    assert merged.prefix_scores.sum() == pytest.approx(a.prefix_scores.sum(), abs=1e-5)
    assert merged.step_logprobs.sum() == pytest.approx(a.step_logprobs.sum(), abs=1e-5)
    assert len(merged.tgt_tokens) == len(word_spans(a.tgt_tokens))


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_export_round_trip(lm, tr, fmt):
    a = attribute(lm, tr, "integrated_gradients", n_steps=8)
    back = export.from_json(export.to_json(a)) if fmt == "json" else export.from_csv(export.to_csv(a))
    for field in ("model", "method", "target", "src_tokens", "tgt_tokens", "prefix_tokens", "steps", "params"):
        assert getattr(back, field) == getattr(a, field), field
    for field in ("scores", "prefix_scores", "step_logprobs", "step_entropy", "delta"):
        np.testing.assert_array_equal(getattr(back, field), getattr(a, field))


def test_long_table_matches_a_plain_loop(lm, tr):
    """Attribution.to_pandas (built column-wise for speed) against the rows written out one by one."""
    a = attribute(lm, tr, "input_x_gradient")
    for case in (a, replace(a, steps=(1,), delta=None), replace(a, prefix_scores=None, prefix_tokens=())):
        rows = []
        for t, out in enumerate(case.tgt_tokens):
            sides = [("source", case.src_tokens, case.scores)]
            if case.prefix_scores is not None:
                sides.append(("prefix", case.prefix_tokens, case.prefix_scores))
            for side, tokens, scores in sides:
                for i, tok in enumerate(tokens):
                    delta = np.nan if case.delta is None else case.delta[t]
                    rows.append((t, out, case.step_logprobs[t], delta, t in case.rows, side, i, tok, scores[t, i]))
        frame = case.to_pandas()
        cols = ["step", "output_token", "step_logprob", "delta", "explained", "side", "position", "input_token"]
        cols.append("score")
        assert len(frame) == len(rows)
        for got, want in zip(frame[cols].itertuples(index=False), rows, strict=True):
            assert got[:2] == want[:2] and got[4:8] == want[4:8]
            np.testing.assert_allclose(np.array(got[2:4] + got[8:], float), np.array(want[2:4] + want[8:], float))
        assert set(frame["model"]) == {case.model} and set(frame["method"]) == {case.method}


def test_loading_something_else_says_so():
    with pytest.raises(ValueError, match="not JSON"):
        export.from_json("{oops")
    with pytest.raises(ValueError, match="not a Lantern attribution"):
        export.from_json('{"format": "other"}')
    with pytest.raises(ValueError, match="not a Lantern attribution CSV"):
        export.from_csv("a,b\n1,2\n")


def test_method_list_and_cost_estimate():
    ids_ = [m.id for m in list_methods()]
    assert {"saliency", "input_x_gradient", "integrated_gradients", "deeplift", "gradient_shap", "smoothgrad",
            "occlusion", "shapley_value_sampling", "lime", "attention", "attention_norms",
            "value_zeroing", "alti_plus"} == set(ids_)  # fmt: skip
    assert all(m.description for m in list_methods())
    assert forward_passes("integrated_gradients", 10, 8, n_steps=32) == 8 * 32 + 2
    assert forward_passes("feature_ablation", 10, 8) == forward_passes("occlusion", 10, 8) == 19


def test_small_memory_budget_gives_the_same_scores_in_more_chunks(lm, tr, monkeypatch):
    full = attribute(lm, tr, "integrated_gradients", n_steps=8)
    occ = attribute(lm, tr, "occlusion")
    monkeypatch.setenv("LANTERN_ATTRIBUTION_MB", "0.001")  # the floor: 64 tokens per pass
    np.testing.assert_allclose(attribute(lm, tr, "integrated_gradients", n_steps=8).scores, full.scores, atol=1e-5)
    np.testing.assert_allclose(attribute(lm, tr, "occlusion").scores, occ.scores, atol=1e-5)


def test_a_time_limit_stops_a_long_attribution_between_chunks(lm, tr, monkeypatch):
    from explain.deadline import ComputationTimeout

    monkeypatch.setenv("LANTERN_ATTRIBUTION_MB", "0.001")  # many small chunks
    with pytest.raises(ComputationTimeout, match="stopped after 0 s"):
        attribute(lm, tr, "integrated_gradients", n_steps=64, time_limit=0.0)
    assert attribute(lm, tr, "integrated_gradients", n_steps=4, time_limit=60.0).scores.shape[0] == len(tr.tgt_ids)


def test_an_attribution_leaves_no_tensors_behind(lm, tr):
    """Every attribution once leaked its memory-measuring graph (~8 MB on transformer-en-fr): the saved-tensor hook
    handed each node its own output back, a cycle through C++ that Python's collector cannot see."""
    import gc
    import warnings

    def live_tensors() -> int:
        gc.collect()
        with warnings.catch_warnings():  # isinstance on torch.distributed's deprecated reduce_op warns
            warnings.simplefilter("ignore")
            return sum(1 for o in gc.get_objects() if isinstance(o, torch.Tensor))

    attribute(lm, tr, "input_x_gradient")  # first-call caches (shapes, measurements) settle
    before = live_tensors()
    for _ in range(3):
        attribute(lm, tr, "input_x_gradient")
    assert live_tensors() <= before
