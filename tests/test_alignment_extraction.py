"""Explanation -> word alignment: row/column argmax, the four symmetrisations (against a literal brute-force
reading of Koehn et al. 2003's pseudocode and hand-worked cases), end of sentence as "no link", Pharaoh text."""

import numpy as np
import pytest

from explain.alignment import (
    EXTRACTIONS,
    agreement,
    column_argmax,
    extract,
    extract_all,
    extract_all_both,
    parse_pharaoh,
    pharaoh,
    row_argmax,
    symmetrise,
    to_words,
)

NEIGHBOURS = [(-1, 0), (0, -1), (1, 0), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1)]


def brute_force(e2f: set, f2e: set, n_e: int, n_f: int, how: str) -> set:
    """GROW-DIAG(-FINAL) as the pseudocode reads: a boolean grid, every (e, f) visited in order on every sweep,
    "aligned" recomputed from the grid each time it is asked."""
    union = e2f | f2e
    a = np.zeros((n_e, n_f), dtype=bool)
    for e, f in e2f & f2e:
        a[e, f] = True

    def unaligned(e: int, f: int) -> bool:
        return not a[e].any() or not a[:, f].any()

    while True:
        added = False
        for e in range(n_e):
            for f in range(n_f):
                if not a[e, f]:
                    continue
                for de, df in NEIGHBOURS:
                    en, fn = e + de, f + df
                    if 0 <= en < n_e and 0 <= fn < n_f and not a[en, fn] and (en, fn) in union and unaligned(en, fn):
                        a[en, fn] = True
                        added = True
        if not added:
            break
    if how == "grow-diag-final":
        for direction in (e2f, f2e):
            for e in range(n_e):
                for f in range(n_f):
                    if (e, f) in direction and not a[e, f] and unaligned(e, f):
                        a[e, f] = True
    return {(int(e), int(f)) for e, f in zip(*np.nonzero(a), strict=True)}


# rows: each target word's best source word; columns: each source word's best target word (source, target)
ROWS = {(0, 0), (0, 1), (3, 2), (0, 3), (4, 4)}
COLUMNS = {(0, 0), (1, 0), (2, 2), (3, 2), (4, 0)}


def test_hand_worked_symmetrisations_nest_strictly():
    assert symmetrise(ROWS, COLUMNS, "intersection") == {(0, 0), (3, 2)}
    assert symmetrise(ROWS, COLUMNS, "union") == ROWS | COLUMNS
    # (0,0) grows to its neighbours (1,0) and (0,1), (3,2) to (2,2); (0,3), (4,4), (4,0) touch no link
    grow = {(0, 0), (1, 0), (0, 1), (3, 2), (2, 2)}
    assert symmetrise(ROWS, COLUMNS, "grow-diag") == grow
    # final: (0,3) and (4,4) have an unaligned word; then (4,0) joins two aligned words and stays out
    assert symmetrise(ROWS, COLUMNS, "grow-diag-final") == grow | {(0, 3), (4, 4)}
    for how in ("grow-diag", "grow-diag-final"):
        assert symmetrise(ROWS, COLUMNS, how) == brute_force(ROWS, COLUMNS, 5, 5, how)
    with pytest.raises(ValueError, match="grow-diag"):
        symmetrise(ROWS, COLUMNS, "grow")


def test_row_and_column_argmax_on_a_small_matrix():
    scores = np.array([[0.9, 0.1, 0.0], [0.2, 0.3, 0.5], [0.1, 0.0, 0.6]])  # [target words, source words]
    assert row_argmax(scores) == {(0, 0), (2, 1), (2, 2)}
    assert column_argmax(scores) == {(0, 0), (1, 1), (2, 2)}
    assert symmetrise(row_argmax(scores), column_argmax(scores), "grow-diag") == {(0, 0), (1, 1), (2, 2)}
    signed = np.array([[-0.9, -0.1], [0.2, -0.5]])  # signed scores: a negative best never links
    assert row_argmax(signed) == {(0, 1)} and column_argmax(signed) == {(0, 1)}
    assert row_argmax(np.abs(signed)) == {(0, 0), (1, 1)}
    assert row_argmax(np.array([[np.nan, 1.0]])) == set() and row_argmax(np.zeros((2, 0))) == set()


def test_end_of_sentence_as_no_link():
    # two target words, two source words; the last row and column are the end-of-sentence tokens
    words = np.array(
        [
            [0.6, 0.1, 0.3],  # target 0: source 0
            [0.1, 0.2, 0.7],  # target 1: best is the source EOS
            [0.1, 0.8, 0.1],  # target EOS: source 1 is read most from here
        ]
    )
    plain = extract_all(words)
    assert plain["row"] == {(0, 0), (1, 1)} and plain["column"] == {(0, 0), (1, 1)}
    eos = extract_all(words, eos=True)
    assert eos["row"] == {(0, 0)} and eos["column"] == {(0, 0)}  # source 1's best target is the EOS
    assert extract(words, "union", eos=True) == {(0, 0)} and extract(words, "row") == {(0, 0), (1, 1)}
    with pytest.raises(ValueError, match="grow-diag-final"):
        extract(words, "diagonal")


@pytest.mark.parametrize("seed", range(40))
def test_symmetrisations_match_the_brute_force_and_nest(seed):
    rng = np.random.default_rng(seed)
    n_t, n_s = rng.integers(1, 9, size=2)
    scores = rng.random((n_t + 1, n_s + 1)) ** 3  # sparse-ish, with a special row and column
    for eos in (False, True):
        got = extract_all(scores, eos=eos)
        assert set(got) == set(EXTRACTIONS)
        rows, columns = got["row"], got["column"]
        for how in ("grow-diag", "grow-diag-final"):
            assert got[how] == brute_force(rows, columns, n_s, n_t, how)
        assert got["intersection"] <= got["grow-diag"] <= got["grow-diag-final"] <= got["union"]
        assert len({t for _, t in rows}) == len(rows) and len({s for s, _ in columns}) == len(columns)
    random_links = {(int(a), int(b)) for a, b in rng.integers(0, 6, size=(8, 2))}
    assert parse_pharaoh(pharaoh(random_links)) == random_links


def test_pharaoh_text_is_source_first_and_round_trips():
    assert pharaoh({(2, 0), (0, 1), (0, 0)}) == "0-0 0-1 2-0"
    assert parse_pharaoh("0-0 0-1 2-0\n") == {(0, 0), (0, 1), (2, 0)}
    assert pharaoh(set()) == "" and parse_pharaoh("") == set()
    with pytest.raises(ValueError, match="i-j"):
        parse_pharaoh("1p2")


def test_to_words_can_keep_the_special_tokens_as_a_last_row_and_column():
    scores = np.arange(9.0).reshape(3, 3)  # target tokens: w0, w0, </s>; source tokens: s0, s1, </s>
    words = to_words(scores, [0, 0, None], [0, 1, None], n_tgt=1, n_src=2, specials=True)
    np.testing.assert_allclose(words, [[1.5, 2.5, 3.5], [6.0, 7.0, 8.0]])
    np.testing.assert_allclose(to_words(scores, [0, 0, None], [0, 1, None], n_tgt=1, n_src=2), [[1.5, 2.5]])


def test_summaries_of_older_records_without_word_scores_still_work():
    from explain.alignment import parse_gold_line
    from explain.evaluate import summarise

    gold = [parse_gold_line("1-1 2-2"), parse_gold_line("1-1")]
    records = [
        {"src": "a b", "output": "x y", "methods": {"attention": {"links": [[0, 0], [1, 1]]}}},
        {"src": "a", "output": "x", "methods": {"attention": {"links": [[0, 0]]}}},
    ]
    summary = summarise(records, gold, ["attention"], dev=1)
    assert summary["methods"]["attention"] == pytest.approx({"aer": 0.0, "precision": 1.0, "recall": 1.0}, abs=1e-9)
    assert summary["dev"]["reported_sentences"] == 1
    assert summary["baselines"]["diagonal_reported"]["aer"] == pytest.approx(0.0, abs=1e-9)
    words = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.0, 0.0, 1.0]])  # 2 × 2 words, then the specials
    for r in records[:1]:
        r["methods"]["attention"]["word_scores"] = {"mean": words.tolist(), "0": words[:, ::-1].tolist()}
    records[1]["methods"]["attention"]["word_scores"] = {"mean": [[1.0, 0.0], [0.0, 1.0]], "0": [[1.0, 0.0], [0, 1]]}
    entry = summarise(records, gold, ["attention"], dev=1)["methods"]["attention"]
    assert entry["aer_by_extraction"]["grow-diag"]["mean"] == pytest.approx(0.0, abs=1e-9)
    assert entry["aer_by_extraction_reported"]["row"]["layer"] == "mean"  # chosen on sentence 1 alone
    assert entry["dev_choice"]["setting"] == "row" and entry["dev_choice"]["aer"] == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("seed", range(5))
def test_two_models_read_the_other_direction_off_the_reverse_models_rows(seed):
    rng = np.random.default_rng(seed)
    forward = rng.random((6, 5))  # 5 output words + specials, 4 source words + specials
    reverse = rng.random((5, 6))  # the reverse model explains the pair the other way round
    for eos in (False, True):
        both = extract_all_both(forward, reverse, eos)
        assert both["row"] == extract_all(forward, eos)["row"]
        assert both["reverse"] == {(s, t) for t, s in extract_all(reverse, eos)["row"]}  # (source, output) order
        assert both["intersection"] <= both["grow-diag"] <= both["grow-diag-final"] <= both["union"]
        assert both["grow-diag"] == symmetrise(both["row"], both["reverse"], "grow-diag")
        # a "reverse model" whose rows are this model's columns gives the one-model symmetrisations back
        same = extract_all_both(forward, forward.T, eos)
        assert {k: v for k, v in same.items() if k in EXTRACTIONS} == {
            k: v for k, v in extract_all(forward, eos).items() if k != "column"
        }
        assert all(same[f"{how} symmetrised"] == links for how, links in extract_all(forward, eos).items())
        # agreement: p(source | output) from the forward rows times p(output | source) from the reverse rows
        p_fwd = forward / forward.sum(1, keepdims=True)
        p_rev = reverse / reverse.sum(1, keepdims=True)
        assert agreement(forward, reverse) == pytest.approx(p_fwd * p_rev.T, rel=1e-9)
        for how, links in extract_all(p_fwd * p_rev.T, eos).items():
            assert both[f"{how} agreement"] == links
        assert both["grow-diag symmetrised"] == symmetrise(
            extract_all(forward, eos)["grow-diag"], extract_all(reverse.T, eos)["grow-diag"], "grow-diag"
        )
    with pytest.raises(ValueError, match="transpose"):
        extract_all_both(forward, forward, False)


def test_evaluate_scores_both_models_and_refuses_a_reverse_run_of_other_sentences(tmp_path):
    import json

    from explain.alignment import parse_gold_line
    from explain.evaluate import UsageError, reverse_records, summarise

    gold = [parse_gold_line("1-1 2-2 3-2"), parse_gold_line("1-1 2-2")]
    # sentence 1: this model links both output words to source word 1 (rows); the reverse model gets 1-1 2-2 3-2
    fwd = np.array([[0.9, 0.1, 0.0, 0.0], [0.8, 0.2, 0.1, 0.0], [0.0, 0.0, 0.0, 1.0]])
    rev = np.array([[0.9, 0.1, 0.0], [0.1, 0.9, 0.0], [0.2, 0.7, 0.0], [0.0, 0.0, 1.0]])
    eye = np.eye(3)
    records = [
        {"src": "a b c", "output": "x y", "methods": {"attention": {"links": [], "word_scores": {"mean": fwd}}}},
        {"src": "a b", "output": "x y", "methods": {"attention": {"links": [], "word_scores": {"mean": eye}}}},
    ]
    back = [
        {"src": "x y", "output": "a b c", "methods": {"attention": {"links": [], "word_scores": {"mean": rev}}}},
        {"src": "x y", "output": "a b", "methods": {"attention": {"links": [], "word_scores": {"mean": eye}}}},
    ]
    entry = summarise(records, gold, ["attention"], reverse=back)["methods"]["attention"]
    aer = entry["aer_by_extraction"]
    assert aer["column (both models)"]["mean"] == pytest.approx(0.0, abs=1e-9)  # the reverse model alone
    assert aer["row"]["mean"] == pytest.approx(1 - (3 + 3) / (4 + 5), abs=1e-9)  # a-x, a-y, a-x, b-y of 5 sure
    assert aer["union (both models)"]["mean"] > aer["column (both models)"]["mean"]  # a-y is wrong
    assert entry["reverse_run"] is True
    lines = tmp_path / "rev.jsonl"
    lines.write_text("\n".join(json.dumps(r | {"methods": {}}) for r in back[::-1]), encoding="utf-8")
    with pytest.raises(UsageError, match=r"sentence 1 .* other way round"):
        reverse_records(tmp_path / "rev.json", records)


def test_the_input_step_reads_each_token_at_the_next_decoder_position():
    from explain.alignment import AlignmentMaps, align, input_step

    token_maps = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.0, 0.2, 0.8]])  # 3 output tokens × 3 source tokens
    assert input_step(token_maps) == pytest.approx(np.array([[0.8, 0.1, 0.1], [0.0, 0.2, 0.8], [0.0, 0.0, 0.0]]))
    # two words each side and an end-of-sentence token: at the step that predicts it, word 0 reads source word 1;
    # at the step where it is the input, source word 0
    maps = AlignmentMaps("attention", ("a", "b"), ("x", "y"), (0, 1, None), (0, 1, None), {"mean": token_maps})
    assert align(maps, extraction="row").links == {(1, 0), (0, 1)}
    assert align(maps, extraction="row", step="input").links == {(0, 0), (1, 1)}
    assert align(maps, extraction="row", eos=True, step="input").links == {(0, 0)}  # y is best read by the end
    assert align(maps, extraction="row", step="input").step == "input"
    with pytest.raises(ValueError, match="unknown step"):
        maps.words(step="output")


def test_the_aer_table_reports_the_dev_choice_of_each_method_and_the_two_model_setting(tmp_path, capsys):
    import json

    from explain.alignment import parse_gold_line
    from explain.evaluate import summarise
    from explain.report import aer_rows, main

    gold = [parse_gold_line("1-1 2-2"), parse_gold_line("1-1 2-2")]
    fwd = np.array([[0.9, 0.1, 0.0], [0.8, 0.2, 0.0], [0.0, 0.0, 1.0]])  # rows: both output words on source word 1
    rev = np.array([[0.9, 0.1, 0.0], [0.1, 0.9, 0.0], [0.0, 0.0, 1.0]])  # the reverse model gets both right
    records = [
        {"src": "a b", "output": "x y", "methods": {"attention": {"links": [[0, 0]], "word_scores": {"mean": fwd}}}}
        for _ in gold
    ]
    back = [
        {"src": "x y", "output": "a b", "methods": {"attention": {"links": [], "word_scores": {"mean": rev}}}}
        for _ in gold
    ]
    summary = summarise(records, gold, ["attention"], dev=1, reverse=back) | {"model": "m", "reverse": "r.json"}
    one, both = aer_rows(summary)
    assert one["setting"] == "column" and one["reverse"] == ""  # the model's columns: a-x, b-y
    assert both["setting"].endswith("(both models)") and both["reverse"] == "r.json"
    assert both["aer"] == pytest.approx(0.0, abs=1e-9) and one["aer"] == pytest.approx(0.0, abs=1e-9)
    path = tmp_path / "run.json"
    path.write_text(json.dumps(summary, default=lambda a: a.tolist()), encoding="utf-8")
    assert main([str(path)]) == 0
    table = capsys.readouterr().out
    assert "| m + r.json | attention |" in table and "*no model: diagonal*" in table and "fast_align 10.5" in table
    assert main([str(tmp_path / "missing.json")]) == 2


def test_gold_read_for_a_model_of_the_reverse_direction_swaps_each_link(tmp_path):
    from explain.alignment import read_gold

    path = tmp_path / "g.gold"
    path.write_text("1-2 3p1\n2-2\n", encoding="utf-8")
    straight, swapped = read_gold(path), read_gold(path, swap=True)
    assert straight[0].sure == {(0, 1)} and straight[0].possible == {(0, 1), (2, 0)}
    assert swapped[0].sure == {(1, 0)} and swapped[0].possible == {(1, 0), (0, 2)}
    assert swapped[1] == straight[1]
