"""The notebook API: the README's example runs as written, results show themselves as HTML with the app's
figures and convert to pandas; texts, names, folders and hub ids all work."""

import ast
import re
from pathlib import Path

import numpy as np
import pytest

from explain import attribute, extract_attention, translate
from explain.types import AttentionMaps, Attribution, Translation
from models import load_model
from models.adapter import Decoding, LanternModel
from models.decoding import PretrainedModelError
from tests.conftest import make_tiny_llama, make_tiny_marian
from tests.plotly_data import trace_array

REPO = Path(__file__).resolve().parents[1]


def readme_example() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- notebook-example -->\s*```python\n(.*?)```", text, re.S)
    assert match, "README.md has no notebook example"
    return match.group(1)


def run_like_a_notebook(code: str) -> list[object]:
    """Execute ``code`` statement by statement and collect the value of each bare expression (what a notebook
    cell would display)."""
    namespace: dict[str, object] = {}
    shown = []
    for node in ast.parse(code).body:
        if isinstance(node, ast.Expr):
            shown.append(eval(compile(ast.Expression(node.value), "<readme>", "eval"), namespace))
        else:
            exec(compile(ast.Module([node], []), "<readme>", "exec"), namespace)
    return shown


def test_the_readme_example_runs_in_at_most_five_lines_and_every_result_shows_itself():
    code = readme_example()
    lines = [line for line in code.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert len(lines) <= 5, lines
    shown = run_like_a_notebook(code)
    kinds = {type(value) for value in shown}
    assert {Translation, Attribution} <= kinds | {AttentionMaps}, kinds
    for value in shown:
        html = value._repr_html_()
        assert "plotly" in html.lower() and "<div" in html
        assert len(value.to_pandas()) > 0


@pytest.fixture(scope="module")
def lm() -> LanternModel:
    return load_model("lstm-zh-en")


def test_a_text_is_translated_first_and_gives_the_same_explanation_as_its_translation(lm):
    tr = translate(lm, "我爱你。")
    from_text = attribute(lm, "我爱你。", "integrated_gradients", n_steps=8)
    from_translation = attribute(lm, tr, "integrated_gradients", n_steps=8)
    assert from_text.tgt_tokens == tr.tgt_tokens
    np.testing.assert_allclose(from_text.scores, from_translation.scores, rtol=1e-5, atol=1e-6)
    maps = extract_attention(lm, "我爱你。", Decoding(num_beams=3))
    assert maps.cross.shape[-2:] == (len(translate(lm, "我爱你。", Decoding(num_beams=3)).tgt_ids), len(tr.src_ids))


def test_the_html_holds_the_figure_the_app_draws(lm):
    from viz.heatmaps import attribution_heatmap
    from viz.notebook import attribution_html

    attr = attribute(lm, "我爱你。", "saliency")
    html = attribution_html(attr, include_plotlyjs=False)
    assert attr.method in html and "completeness" not in html  # saliency has no completeness gap
    z = trace_array(attribution_heatmap(attr).to_json(), "z")
    np.testing.assert_allclose(z, attr.scores, atol=1e-6)
    assert attr.signed is False  # saliency is a magnitude: a sequential scale, as on the Attributions page


def test_plotly_js_is_embedded_once_per_kernel(lm):
    import viz.notebook

    viz.notebook._plotlyjs_sent = False
    tr = translate(lm, "我爱你。")
    first, second = tr._repr_html_(), tr._repr_html_()
    assert len(first) > 1_000_000 > len(second)  # plotly.js (~4.6 MB) travels with the first figure only
    assert "Plotly.newPlot" in second


def test_to_pandas_tables_hold_the_numbers(lm):
    tr = translate(lm, "我爱你。")
    frame = tr.to_pandas()
    assert list(frame["token"]) == list(tr.tgt_tokens)
    np.testing.assert_allclose(frame["probability"], tr.probs, rtol=1e-6)
    maps = extract_attention(lm, tr)
    long = maps.to_pandas()
    cross = long[long["kind"] == "cross"].pivot(index="row", columns="col", values="weight").to_numpy()
    np.testing.assert_allclose(cross, maps.cross[0, 0], atol=1e-7)
    attr = attribute(lm, tr, "input_x_gradient")
    table = attr.to_pandas()
    src = table[table["side"] == "source"].pivot(index="step", columns="position", values="score").to_numpy()
    np.testing.assert_allclose(src, attr.scores, atol=1e-7)


def test_decoder_only_attention_converts_to_pandas(tokenizers):
    _, tgt = tokenizers
    llama = LanternModel("llama", make_tiny_llama(len(tgt)), tgt, tgt)
    maps = extract_attention(llama, "I love you.", Decoding(max_new_tokens=4))
    long = maps.to_pandas()
    assert set(long["kind"]) == {"causal"} and len(long) == maps.decoder_self.size
    assert "<div" in maps._repr_html_()


def test_names_folders_and_hub_ids_all_load(app_models, monkeypatch):
    folder, hub_cache = app_models
    assert load_model("lstm-zh-en").name == "lstm-zh-en"
    assert load_model(str(folder)).model.config.model_type == "marian"
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub_cache))  # read at call time, as $HF_HUB_CACHE
    assert load_model("lantern-test/tiny-marian").name == "lantern-test/tiny-marian"
    with pytest.raises(PretrainedModelError, match=r"Models Lantern offers here: .*lstm-zh-en"):
        load_model("gpt2")  # not in this machine's Hugging Face cache: a clear error, never a KeyError


@pytest.fixture()
def app_models(tmp_path, tokenizers, monkeypatch):
    """A Marian folder under a model root, and the same model in a Hugging Face cache layout (as a hub id)."""
    _, tgt = tokenizers
    model = make_tiny_marian(len(tgt), len(tgt))
    folder = tmp_path / "roots" / "tiny-marian"
    model.save_pretrained(folder)
    tgt.save_pretrained(folder)
    monkeypatch.setenv("LANTERN_MODEL_ROOTS", str(tmp_path / "roots"))
    snapshot = tmp_path / "hub" / "models--lantern-test--tiny-marian" / "snapshots" / "abc123"
    model.save_pretrained(snapshot)
    tgt.save_pretrained(snapshot)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("abc123")
    return folder, tmp_path / "hub"
