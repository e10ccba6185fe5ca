"""The Inside page's figures from hand-made results (numpy only): what they draw is the data they are given."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from explain.inside_types import EmbeddingProjection, LayerNorms, LogitLens, NeuronView
from explain.inside_views import norm_series, parse_units, pick_units
from viz.inside import embedding_scatter, logit_lens_heatmap, neuron_view_figure, norm_curves, unit_heatmap


def lens() -> LogitLens:
    rng = np.random.default_rng(0)
    probs = rng.random((3, 2, 2)).astype(np.float32)
    tokens = ((("▁a", "b"), ("c", "<script>")), (("d", "e"), ("f", "g")), (("▁love", "h"), ("you", "i")))
    return LogitLens(
        model="m",
        tgt_tokens=("▁love", "you"),
        input_tokens=("<s>", "▁love"),
        top_ids=np.zeros((3, 2, 2), dtype=int),
        top_tokens=tokens,
        top_probs=-np.sort(-probs, axis=-1),
        target_probs=probs[:, :, 0],
        target_ranks=np.zeros((3, 2), dtype=int),
        final_gap=0.0,
    )


def test_logit_lens_heatmap_colours_by_the_final_tokens_probability_and_writes_the_top_token():
    data = lens()
    fig = logit_lens_heatmap(data)
    trace = fig.data[0]
    np.testing.assert_allclose(np.asarray(trace.z), data.target_probs)
    assert list(trace.text[0]) == ["a", "c"] and list(trace.text[2]) == ["love", "you"]  # prettified top tokens
    assert list(fig.layout.yaxis.ticktext) == ["embeddings", "1", "2"]
    assert list(fig.layout.xaxis.ticktext) == ["love", "you"]
    assert "&lt;script&gt;" in trace.hovertext[0][1] and "<script>" not in trace.hovertext[0][1]


def test_unit_heatmap_draws_the_selected_columns_and_refuses_a_shape_mismatch():
    values = np.arange(12, dtype=float).reshape(4, 3)
    fig = unit_heatmap(values, ["我", "爱", "你", "。"], [7, 2, 9], signed=False, mark=(1, 3))
    assert isinstance(fig, go.Figure)
    np.testing.assert_allclose(np.asarray(fig.data[0].z), values)
    assert list(fig.layout.xaxis.ticktext) == ["7", "2", "9"] and list(fig.layout.yaxis.ticktext) == list("我爱你。")
    outline = fig.layout.shapes[0]
    np.testing.assert_allclose([outline.y0, outline.y1], [0.5, 2.5], atol=1e-9)  # rows 1 and 2 outlined
    signed = unit_heatmap(values - 6, list("我爱你。"), [0, 1, 2])
    np.testing.assert_allclose([signed.data[0].zmid, signed.data[0].zmin], [0, -6], atol=1e-6)
    with pytest.raises(ValueError, match="4 tokens × 2 units"):
        unit_heatmap(values, list("我爱你。"), [0, 1])


def test_units_are_picked_by_the_chosen_order():
    values = np.array([[0.0, 5.0, -1.0, 0.1], [0.0, -5.0, 1.0, 0.2], [0.0, 5.0, -1.0, 0.9]])
    assert pick_units(values, "variance", 2).tolist() == [1, 2]
    assert pick_units(values, "position", 1, position=2).tolist() == [1]
    assert pick_units(values, "magnitude", 3).tolist() == [1, 2, 3]
    assert pick_units(values, "index", 2).tolist() == [0, 1]
    assert pick_units(values, units=[3, 3, 0, 9]).tolist() == [3, 0]  # as typed, once, within range
    assert parse_units("3, 1-2 3", 4) == [3, 1, 2]
    with pytest.raises(ValueError, match="numbered 0 to 3"):
        parse_units("2-4", 4)
    with pytest.raises(ValueError, match="not a unit number"):
        parse_units("two", 4)


def test_norm_curves_put_the_residual_stream_from_layer_0_and_blocks_from_layer_1():
    norms = LayerNorms(
        model="m",
        side="decoder",
        tokens=("<s>", "a"),
        residual=np.array([[1.0, 3.0], [2.0, 4.0], [3.0, 5.0]]),
        attention=np.array([[0.5, 0.7], [0.6, 0.8]]),
        ffn=np.array([[1.5, 1.7], [1.6, 1.8]]),
        cross=np.array([[0.1, 0.3], [0.2, 0.4]]),
    )
    series = norm_series(norms)
    assert list(series) == [
        "residual stream",
        "self-attention output",
        "cross-attention output",
        "feed-forward output",
    ]
    fig = norm_curves(series)
    assert list(fig.data[0].x) == [0, 1, 2] and list(fig.data[0].y) == [2.0, 3.0, 4.0]  # mean over positions
    assert list(fig.data[3].x) == [1, 2]
    at_one = norm_series(norms, position=1)
    assert list(at_one["self-attention output"][1]) == [0.7, 0.8]


def test_neuron_view_figure_shows_query_keys_products_and_attention():
    query = np.array([1.0, -2.0])
    keys = np.array([[0.5, 0.5], [2.0, 0.0], [0.0, 1.0]])
    view = NeuronView(
        model="m", kind="causal", layer=0, head=1, position=2, query_token="▁dog", key_tokens=("<s>", "a", "▁dog"),
        key_positions=np.array([0, 1, 2]), query=query, keys=keys, scores=(keys @ query) * 0.5,
        attention=np.array([0.2, 0.7, 0.1]), scaling=0.5, kv_head=0,
    )  # fmt: skip
    fig = neuron_view_figure(view)
    np.testing.assert_allclose(np.asarray(fig.data[0].z), query[None])
    np.testing.assert_allclose(np.asarray(fig.data[1].z), keys)
    np.testing.assert_allclose(np.asarray(fig.data[2].z), keys * query)  # q ∘ k
    np.testing.assert_allclose(np.asarray(fig.data[3].x), view.attention)
    assert list(fig.layout.yaxis2.ticktext) == ["0:&lt;s&gt;", "1:a", "2:dog"]


def test_embedding_scatter_labels_only_the_highlighted_tokens():
    proj = EmbeddingProjection(
        model="m", side="source", tokens=("京", "东", "北"), ids=np.array([5, 6, 7]),
        coords=np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]]), counts=np.array([54, 274, -1]),
        highlighted=np.array([False, True, True]), explained=np.array([0.5, 0.25]), sample="s",
    )  # fmt: skip
    fig = embedding_scatter(proj)
    sample, sentence = fig.data
    assert list(sample.x) == [0.0] and sample.text is None
    assert list(sentence.text) == ["东", "北"] and "seen 274×" in sentence.hovertext[0]
    assert "50.0%" in fig.layout.xaxis.title.text
