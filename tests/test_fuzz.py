"""Property-based fuzzing (Hypothesis) of every input path below the pages: random strings, numbers out of range,
wrong JSON types, deep nesting and huge sizes. The invariant: a result, or the one exception type that path
documents with a message; never anything else. Examples are derandomised (the same on every run and machine)."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from explain.attribution import attribute
from explain.generation import force_translation, translate
from models.adapter import Decoding, InputError, LanternModel
from tests.conftest import make_tiny_llama, make_tiny_lstm
from training.config import ConfigError, config_from_dict
from training.corpora import CorpusFormatError, parse_tsv, parse_two_files
from ui.fields import FIELDS, clean_state
from ui.state import parse_session

FUZZ = settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
FEW = settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))

texts = st.text(alphabet=st.characters(codec=None), max_size=300)  # any code point, lone surrogates included
numbers = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.integers(min_value=-3, max_value=40),  # near and inside the usual ranges
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-3, max_value=40),  # in range but not whole
    st.booleans(),
    st.sampled_from([0, -1, 2**31, 2**63, 1e9, 1e-9]),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, texts),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(texts, children, max_size=4)),
    max_leaves=20,
)
field_keys = st.sampled_from([*FIELDS, "unknown.key", "", "model.add", "_notes"])


@FUZZ
@given(st.dictionaries(field_keys, json_values, max_size=8))
def test_page_state_from_anywhere_is_cleaned_and_stays_clean(raw):
    state, notes = clean_state(raw, "This link")
    assert set(state) <= set(FIELDS) and all(isinstance(n, str) for n in notes)
    again, more = clean_state(state, "This link")  # what was accepted passes again unchanged
    assert again == state and more == []


@FUZZ
@given(st.one_of(st.binary(max_size=2000), json_values.map(lambda v: json.dumps(v).encode())))
def test_session_files_of_any_content_are_refused_with_a_reason_or_read(data):
    try:
        state, outputs, notes = parse_session(data)
    except ValueError as err:
        assert str(err)
    else:
        assert isinstance(state, dict) and isinstance(outputs, dict) and isinstance(notes, list)


@FEW
@given(
    st.fixed_dictionaries(
        {"format": st.just("lantern-session")},
        optional={"state": json_values, "outputs": json_values, "version": json_values},
    )
)
def test_session_files_with_the_right_format_and_any_state(payload):
    try:
        state, _, _ = parse_session(json.dumps(payload).encode())
    except ValueError as err:
        assert "state" in str(err)
    else:
        assert set(state) <= set(FIELDS)


@pytest.mark.parametrize("depth", [10, 1_000, 100_000])
def test_deep_nesting_and_huge_files(depth):
    with pytest.raises(ValueError):
        parse_session(b"[" * depth + b"]" * depth)
    with pytest.raises(ValueError, match="bytes"):
        parse_session(b" " * (6 * 2**20))


@FUZZ
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "num_beams": numbers,
            "max_new_tokens": numbers,
            "length_penalty": numbers,
            "do_sample": st.one_of(st.booleans(), numbers),
            "temperature": numbers,
            "top_p": numbers,
            "seed": numbers,
        },
    )
)
def test_decoding_settings_are_valid_or_refused_clearly(kwargs):
    try:
        Decoding(**kwargs)
    except InputError as err:
        assert str(err)


@pytest.fixture(scope="module")
def models(tokenizers) -> list[LanternModel]:
    src, tgt = tokenizers
    return [
        LanternModel("lstm", make_tiny_lstm(len(src), len(tgt), seed=1), src, tgt, max_source_tokens=32),
        LanternModel("llama", make_tiny_llama(len(tgt)), tgt, tgt, max_source_tokens=32),
    ]


@FEW
@given(texts, texts)
def test_any_text_translates_or_is_refused_clearly(models, source, output):
    for lm in models:
        try:
            tr = translate(lm, source, Decoding(max_new_tokens=4))
        except InputError as err:
            assert str(err)
            continue
        assert 1 <= len(tr.tgt_ids) <= 4
        try:
            force_translation(lm, source, output)
        except InputError as err:
            assert str(err)


@FEW
@given(
    method=st.sampled_from(["occlusion", "input_x_gradient", "attention", "gradcam", ""]),
    target=st.sampled_from(["logprob", "prob", "contrast", "surprise"]),
    n_steps=numbers,
    n_samples=numbers,
    noise_std=numbers,
    contrast=st.one_of(st.none(), st.tuples(numbers, st.one_of(texts, numbers)), st.tuples(st.integers(0, 3), texts)),
    contrast_text=st.one_of(st.none(), texts),
    baseline=st.sampled_from(["pad", "unk", "zero"]),
)
def test_attribution_settings_work_or_are_refused_clearly(
    models, method, target, n_steps, n_samples, noise_std, contrast, contrast_text, baseline
):
    lm = models[0]
    tr = translate(lm, "我爱你。", Decoding(max_new_tokens=3))
    try:
        a = attribute(
            lm,
            tr,
            method,
            target,
            n_steps=n_steps,
            n_samples=n_samples,
            noise_std=noise_std,
            contrast_token=contrast,
            contrast_target=contrast_text,
            baseline=baseline,
        )
    except ValueError as err:  # InputError is one
        assert str(err)
    else:
        assert a.scores.shape == (len(tr.tgt_ids), len(tr.src_ids))


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(["data", "model", "train", "tokenizer", "x"]), texts, texts), max_size=4))
def test_training_overrides_give_a_config_or_a_config_error(overrides):
    try:
        config_from_dict({}, [f"{section}.{key}={value}" for section, key, value in overrides])
    except ConfigError as err:
        assert str(err)


@FUZZ
@given(st.binary(max_size=3000), st.binary(max_size=3000))
def test_uploaded_corpora_parse_or_say_which_line_is_wrong(a, b):
    for parse in (lambda: parse_tsv(a), lambda: parse_two_files(a, b)):
        try:
            pairs = parse()
        except CorpusFormatError as err:
            assert str(err)
        else:
            assert all(p.src.strip() and p.tgt.strip() for p in pairs)
