"""Plausibility: word alignments read off an explanation, scored against human gold alignments (AER).

Gold files in the WPT/Hansards "talp" format: ``i-j`` is a sure link, ``ipj`` a possible one, 1-based,
``i`` indexing the source (English) words and ``j`` the target (French) words. AER, precision and
recall follow Och & Ney (2003): with A the predicted links, S the sure and P the possible ones
(S ⊆ P), AER = 1 − (|A∩S| + |A∩P|) / (|A| + |S|).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

Link = tuple[int, int]  # (source word, target word), 0-based

# Published AER (%) of dedicated word aligners on the same 447 En–Fr Hansards sentences
# (neulab/awesome-align README, Dou & Neubig 2021): what an explanation's alignments can be held against.
PUBLISHED_AER_EN_FR = {
    "fast_align": 10.5,
    "eflomal": 8.2,
    "Mgiza, grow-diag-final": 5.9,
    "mBERT, no fine-tuning": 5.6,
    "awesome-align, fine-tuned": 4.1,
}


@dataclass(frozen=True)
class GoldAlignment:
    sure: frozenset[Link]
    possible: frozenset[Link]  # includes the sure links


def parse_gold_line(line: str) -> GoldAlignment:
    sure, possible = set(), set()
    for item in line.split():
        sep = "-" if "-" in item else "p"
        i, j = item.split(sep)
        link = (int(i) - 1, int(j) - 1)
        possible.add(link)
        if sep == "-":
            sure.add(link)
    return GoldAlignment(frozenset(sure), frozenset(possible))


def read_gold(path: str | Path, swap: bool = False) -> list[GoldAlignment]:
    """The gold alignments of a file, one line per sentence; ``swap``: read for a model of the reverse direction
    (each link's source and target exchanged, e.g. the en–fr Hansards gold for an fr→en model)."""
    gold = [parse_gold_line(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]
    if not swap:
        return gold
    flip = lambda links: frozenset((t, s) for s, t in links)  # noqa: E731
    return [GoldAlignment(flip(g.sure), flip(g.possible)) for g in gold]


@dataclass(frozen=True)
class AlignmentScore:
    aer: float
    precision: float
    recall: float
    n_predicted: int
    n_sure: int


def score_alignments(predicted: Iterable[Iterable[Link]], gold: Sequence[GoldAlignment]) -> AlignmentScore:
    """Corpus-level AER, precision and recall (counts summed over sentences, as Och & Ney)."""
    a_s = a_p = n_a = n_s = 0
    for links, g in zip(predicted, gold, strict=True):
        links = set(links)
        a_s += len(links & g.sure)
        a_p += len(links & g.possible)
        n_a += len(links)
        n_s += len(g.sure)
    if n_a + n_s == 0:
        raise ValueError("no links on either side")
    return AlignmentScore(
        aer=1 - (a_s + a_p) / (n_a + n_s),
        precision=a_p / n_a if n_a else 0.0,
        recall=a_s / n_s if n_s else 0.0,
        n_predicted=n_a,
        n_sure=n_s,
    )


def argmax_links(weights: np.ndarray) -> set[Link]:
    """Each target word linked to its highest-scoring source word. ``weights`` [tgt words, src words]."""
    return row_argmax(weights)


# --- explanation -> word alignment: the published extraction choices -------------------------------
#
# A word-level score matrix is [target words, source words]. Scores are either absolute (|score| summed
# over subword pieces before linking, Lantern's published choice) or signed (the pieces' scores summed as
# they are): in both, a link needs a positive, finite best score, so a signed negative score never links.
# With ``null=True`` the last column (row argmax) or last row (column argmax) holds the special tokens
# (end of sentence): a word whose best partner is that token gets no link.

SYMMETRISATIONS = ("intersection", "union", "grow-diag", "grow-diag-final")
EXTRACTIONS = ("row", "column", *SYMMETRISATIONS)
_NEIGHBOURS = ((-1, 0), (0, -1), (1, 0), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1))  # diagonals included


def row_argmax(scores: np.ndarray, null: bool = False) -> set[Link]:
    """Each target word (row) linked to its best source word (column); ``null``: the last column is "no link"."""
    scores = np.asarray(scores, dtype=float)
    links = set()
    for t, row in enumerate(scores):
        if row.size == 0 or not np.isfinite(row).all():
            continue
        s = int(np.argmax(row))
        if row[s] > 0 and not (null and s == row.size - 1):
            links.add((s, t))
    return links


def column_argmax(scores: np.ndarray, null: bool = False) -> set[Link]:
    """Each source word (column) linked to its best target word (row); ``null``: the last row is "no link"."""
    return {(s, t) for t, s in row_argmax(np.asarray(scores, dtype=float).T, null)}


def grow_diag(rows: set[Link], columns: set[Link]) -> set[Link]:
    """Koehn et al. (2003) GROW-DIAG: start from the intersection of the two directions; until nothing changes,
    for every source word e and target word f in order that are linked, add each neighbour (diagonals included)
    that is in the union and whose source or target word is still unaligned. Links added during a sweep are
    visited later in the same sweep, as in the definition's loops over e and f."""
    union = rows | columns
    alignment = set(rows & columns)
    src_aligned = {e for e, _ in alignment}
    tgt_aligned = {f for _, f in alignment}
    added = True
    while added:
        added = False
        for e, f in sorted(union):  # only links of the union can be in the alignment: the same order as all (e, f)
            if (e, f) not in alignment:
                continue
            for de, df in _NEIGHBOURS:
                new = (e + de, f + df)
                if new in union and new not in alignment and (new[0] not in src_aligned or new[1] not in tgt_aligned):
                    alignment.add(new)
                    src_aligned.add(new[0])
                    tgt_aligned.add(new[1])
                    added = True
    return alignment


def final(alignment: set[Link], *directions: set[Link]) -> set[Link]:
    """Koehn et al. (2003) FINAL, applied to each direction in turn: add its links (in source, target order)
    whose source or target word is still unaligned."""
    alignment = set(alignment)
    src_aligned = {e for e, _ in alignment}
    tgt_aligned = {f for _, f in alignment}
    for direction in directions:
        for e, f in sorted(direction):
            if (e, f) not in alignment and (e not in src_aligned or f not in tgt_aligned):
                alignment.add((e, f))
                src_aligned.add(e)
                tgt_aligned.add(f)
    return alignment


def symmetrise(rows: set[Link], columns: set[Link], how: str) -> set[Link]:
    """Both directions combined: intersection ⊆ grow-diag ⊆ grow-diag-final ⊆ union."""
    if how == "intersection":
        return rows & columns
    if how == "union":
        return rows | columns
    if how == "grow-diag":
        return grow_diag(rows, columns)
    if how == "grow-diag-final":
        return final(grow_diag(rows, columns), rows, columns)
    raise ValueError(f"unknown symmetrisation {how!r}; choose from {', '.join(SYMMETRISATIONS)}")


def extract_all(scores: np.ndarray, eos: bool = False) -> dict[str, set[Link]]:
    """Every extraction of ``EXTRACTIONS`` from one word-level matrix whose last row and last column hold the
    special tokens (``to_words(..., specials=True)``). ``eos``: a word whose best partner is a special token gets
    no link; otherwise the special row and column are dropped first."""
    scores = np.asarray(scores, dtype=float)
    if eos:
        rows, columns = row_argmax(scores[:-1], null=True), column_argmax(scores[:, :-1], null=True)
    else:
        rows, columns = row_argmax(scores[:-1, :-1]), column_argmax(scores[:-1, :-1])
    out = {"row": rows, "column": columns}
    out.update(intersection=rows & columns, union=rows | columns)
    out["grow-diag"] = grow_diag(rows, columns)
    out["grow-diag-final"] = final(out["grow-diag"], rows, columns)
    return out


COMBINATIONS = ("directions", "agreement", "symmetrised")  # how two models of opposite directions are combined


def agreement(forward: np.ndarray, reverse: np.ndarray) -> np.ndarray:
    """Both models' scores multiplied, each normalised into a distribution over the words it reads (special tokens
    included): p_forward(source word | output word) × p_reverse(output word | source word), the product of
    posteriors of alignment by agreement (Liang, Taskar and Klein 2006). ``reverse`` as in ``extract_all_both``;
    the result in forward orientation [output words + 1, source words + 1]."""
    forward, back = np.abs(np.asarray(forward, dtype=float)), np.abs(np.asarray(reverse, dtype=float)).T
    rows = forward / np.maximum(forward.sum(1, keepdims=True), 1e-30)
    columns = back / np.maximum(back.sum(0, keepdims=True), 1e-30)
    return rows * columns


def extract_all_both(forward: np.ndarray, reverse: np.ndarray, eos: bool = False) -> dict[str, set[Link]]:
    """Two models of opposite directions combined, as statistical aligners combine theirs.

    ``forward``: the model's word matrix [output words + 1, source words + 1]; ``reverse``: the same sentence pair's
    matrix from a model of the reverse direction (its source: this output; its output: this source), so
    [source words + 1, output words + 1]. Three ways (``COMBINATIONS``), each key an extraction of ``EXTRACTIONS``
    followed by the way's name, except the first:

    - directions (Och & Ney 2003; Koehn et al. 2003): each model's own direction read off its rows (each word it
      predicts linked to its best source word): "row" is the forward model's, "reverse" the reverse model's (in
      forward orientation), "intersection", "union", "grow-diag", "grow-diag-final" combine the two;
    - "<extraction> agreement": the extraction read off ``agreement(forward, reverse)``;
    - "<extraction> symmetrised": the extraction applied to each model's matrix alone, the two alignments then
      combined by grow-diag (e.g. "grow-diag symmetrised": grow-diag of both models' grow-diag alignments).

    ``ValueError`` when the shapes do not match."""
    forward, reverse = np.asarray(forward, dtype=float), np.asarray(reverse, dtype=float)
    if reverse.shape != forward.shape[::-1]:
        raise ValueError(
            f"the reverse model's matrix {reverse.shape} is not the transpose of the forward one's {forward.shape}: "
            "it must explain the same sentence pair the other way (source and output swapped)"
        )
    rows = row_argmax(forward[:-1] if eos else forward[:-1, :-1], null=eos)
    back = {(s, t) for t, s in row_argmax(reverse[:-1] if eos else reverse[:-1, :-1], null=eos)}
    out = {"row": rows, "reverse": back, "intersection": rows & back, "union": rows | back}
    out["grow-diag"] = grow_diag(rows, back)
    out["grow-diag-final"] = final(out["grow-diag"], rows, back)
    one, other = extract_all(forward, eos), extract_all(reverse.T, eos)
    for how, links in extract_all(agreement(forward, reverse), eos).items():
        out[f"{how} agreement"] = links
    for how in EXTRACTIONS:
        out[f"{how} symmetrised"] = grow_diag(one[how], other[how])
    return out


def extract(scores: np.ndarray, how: str = "row", eos: bool = False) -> set[Link]:
    """One extraction (``row``, ``column`` or a symmetrisation) from a matrix with the special row and column."""
    if how not in EXTRACTIONS:
        raise ValueError(f"unknown extraction {how!r}; choose from {', '.join(EXTRACTIONS)}")
    return extract_all(scores, eos)[how]


def pharaoh(links: Iterable[Link]) -> str:
    """Links as Pharaoh text, as fast_align writes it: ``i-j`` pairs, source index first, 0-based, sorted."""
    return " ".join(f"{s}-{t}" for s, t in sorted(links))


def parse_pharaoh(line: str) -> set[Link]:
    """The links of one line of Pharaoh ``i-j`` text (0-based, source first)."""
    links = set()
    for item in line.split():
        s, sep, t = item.partition("-")
        if not sep or not s.isdigit() or not t.isdigit():
            raise ValueError(f"not an i-j link: {item!r}")
        links.add((int(s), int(t)))
    return links


def diagonal_links(n_src: int, n_tgt: int) -> set[Link]:
    """The no-model baseline: target word j linked to the source word at the same relative position.

    Close languages are nearly monotonic, so an explanation's alignments mean something only where
    they beat this line.
    """
    if n_src < 1:
        return set()
    return {(round(j * (n_src - 1) / max(1, n_tgt - 1)), j) for j in range(n_tgt)}


def word_index(offsets: Sequence[tuple[int, int]], text: str) -> list[int | None]:
    """For each token (by its character span in ``text``), the index of the space-separated word it is in.

    A token is placed by its last character: SentencePiece-style pieces (``▁cat``) often span the space
    before the word, so their first character belongs to the previous one.
    """
    starts, pos = [], 0
    for word in text.split(" "):
        starts.append(pos)
        pos += len(word) + 1
    out: list[int | None] = []
    for start, end in offsets:
        if end <= start:  # special tokens have empty spans
            out.append(None)
            continue
        out.append(int(np.searchsorted(starts, end - 1, side="right")) - 1)
    return out


def to_words(
    scores: np.ndarray,
    tgt_words: Sequence[int | None],
    src_words: Sequence[int | None],
    n_tgt: int,
    n_src: int,
    specials: bool = False,
) -> np.ndarray:
    """Token scores [tgt tokens, src tokens] -> word scores [n_tgt, n_src]: sum over source pieces,
    mean over target pieces; special tokens are dropped, or with ``specials`` gathered into one extra last
    row (target specials, mean) and last column (source specials, sum): [n_tgt + 1, n_src + 1]."""
    extra = int(specials)
    out = np.zeros((n_tgt + extra, n_src + extra))
    count = np.zeros(n_tgt + extra)
    for t, tw in enumerate(tgt_words):
        if tw is None and not specials:
            continue
        tw = n_tgt if tw is None else tw
        row = np.zeros(n_src + extra)
        for s, sw in enumerate(src_words):
            if sw is not None or specials:
                row[n_src if sw is None else sw] += scores[t, s]
        out[tw] += row
        count[tw] += 1
    return out / np.maximum(count, 1)[:, None]


# --- one sentence: an explanation's word alignment, as the Alignments page, the API and notebooks show it -------
#
# ``alignment_maps`` runs the model once per method (the costly part); ``align`` reads any extraction setting off its
# result (cheap, pure numpy); ``sentence_alignment`` does both. The word-level matrix is the one
# ``python -m explain.evaluate`` keeps (``to_words(..., specials=True)`` of the absolute or signed token scores),
# so a sentence's links here are the links the corpus run scores.

GRADIENT_METHODS = (
    "saliency",
    "input_x_gradient",
    "integrated_gradients",
    "deeplift",
    "gradient_shap",
    "smoothgrad",
)
LAYERED_METHODS = ("attention", "attention_norms", "value_zeroing")  # a map per layer as well as their mean
ALIGNMENT_METHODS = (*LAYERED_METHODS, "alti_plus", *GRADIENT_METHODS)  # those that give a source × output map
TRANSFORMER_ONLY = ("attention_norms", "value_zeroing", "alti_plus", "deeplift")  # need a Transformer (not an LSTM)


@dataclass(frozen=True)
class AlignmentMaps:
    """One method's token maps of one translation, with what turns them into words."""

    method: str
    src_words: tuple[str, ...]  # the source text split at spaces
    tgt_words: tuple[str, ...]  # the output text split at spaces
    src_index: tuple[int | None, ...]  # word of each source token (None: a special token)
    tgt_index: tuple[int | None, ...]  # word of each output token
    maps: dict[str, np.ndarray]  # "mean" (the method's own map) and, for layered methods, "0", "1", ...: [T, S]

    @property
    def layers(self) -> list[str]:
        return [k for k in self.maps if k != "mean"]

    def words(self, layer: str | int = "mean", signed: bool = False, step: str = "predicts") -> np.ndarray:
        """Word scores [output words + 1, source words + 1]: the last row and column hold the special tokens.
        ``step``: read each output token off the step that predicts it, or the step where it is the decoder's
        input (``input_step``)."""
        key = str(layer)
        if key not in self.maps:
            raise ValueError(f"{self.method} has no layer {layer!r}; choose from {', '.join(self.maps)}")
        m = self.maps[key] if signed else np.abs(self.maps[key])
        m = input_step(m) if _step(step) == "input" else m
        return to_words(m, self.tgt_index, self.src_index, len(self.tgt_words), len(self.src_words), specials=True)


STEPS = ("predicts", "input")  # which decoder step stands for an output token


def _step(step: str) -> str:
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}; choose from {', '.join(STEPS)}")
    return step


def input_step(scores: np.ndarray) -> np.ndarray:
    """Token scores [output tokens, source tokens] re-read at the step where each output token is the decoder's
    input rather than the step that predicts it (Shift-Att, Chen et al. 2020, "Accurate word alignment induction
    from neural machine translation", EMNLP): row t becomes row t + 1; the last token, never an input, gets a zero
    row (it is the end-of-sentence token when the output is complete)."""
    scores = np.asarray(scores)
    out = np.zeros_like(scores)
    out[:-1] = scores[1:]
    return out


@dataclass(frozen=True)
class SentenceAlignment:
    """An explanation's word alignment of one sentence: scores, links, and how they compare with gold links."""

    method: str
    layer: str
    extraction: str
    eos: bool
    signed: bool
    src_words: tuple[str, ...]
    tgt_words: tuple[str, ...]
    scores: np.ndarray  # [output words + 1, source words + 1], last row/column: special tokens
    links: frozenset[Link]  # (source word, output word), 0-based
    gold: GoldAlignment | None = None
    score: AlignmentScore | None = None  # this sentence's AER, precision, recall against ``gold``
    step: str = "predicts"  # the decoder step read for each output token (``STEPS``)

    @property
    def pharaoh(self) -> str:
        return pharaoh(self.links)


def alignment_methods(lm: object) -> list[str]:
    """The methods of ``ALIGNMENT_METHODS`` that can explain ``lm``: an LSTM has no value vectors (attention norms,
    value zeroing) and no separate gate modules (DeepLIFT); ALTI+ decomposes only some block layouts (not Gemma 3's,
    nor T5's) and DeepLIFT only encoder-decoders."""
    from explain.alti import alti_blocks
    from explain.mixing import mixing_layers

    try:
        mixing_layers(lm)
    except ValueError:
        return [m for m in ALIGNMENT_METHODS if m not in TRANSFORMER_ONLY]
    methods = list(ALIGNMENT_METHODS)
    try:
        alti_blocks(lm)
    except ValueError:
        methods.remove("alti_plus")
    if not lm.is_seq2seq():
        methods.remove("deeplift")  # explain.methods.DeepLiftMethod refuses decoder-only models
    return methods


# --- a prompted decoder-only model: the sentence's tokens inside its prompt are the source ----------------------


def _prompt_text(lm: object, text: str) -> tuple[str, int, bool]:
    """(the prompt ``lm`` reads around ``text`` as one string, where ``text`` starts in it, whether the tokenizer
    adds its special tokens to it), as ``LanternModel.encode_source`` builds it: a few-shot template, a chat
    template, or the text alone."""
    if lm.template is not None:
        prompt, first, _ = lm.template.render(text)
        return prompt, first, True
    if lm.chat:
        tok = lm.src_tokenizer

        def render(content: str) -> str:
            messages = [{"role": "user", "content": content}]
            return tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

        full, empty = render(text), render("")
        if len(full) != len(empty) + len(text):
            raise ValueError(f"{lm.name}'s chat template changes the sentence: its words cannot be located")
        common = next((i for i, (a, b) in enumerate(zip(full, empty, strict=False)) if a != b), len(empty))
        for first in range(common, -1, -1):  # the text may begin with what follows it in the empty message
            if full[first : first + len(text)] == text and full[:first] + full[first + len(text) :] == empty:
                return full, first, False
        raise ValueError(f"{lm.name}'s chat template changes the sentence: its words cannot be located")
    return text, 0, False


def _shifted_words(offsets: Sequence[tuple[int, int]], shift: int, text: str) -> list[int | None]:
    """``word_index`` of tokens whose character spans are given in a longer string where ``text`` starts at
    ``shift``: a token ending at or before ``text``'s start is no word of it (None)."""
    moved = [(s - shift, e - shift) if e - shift > 0 else (0, 0) for s, e in offsets]
    return word_index(moved, text)


def prompt_words(lm: object, translation: object) -> tuple[slice, list[int | None]]:
    """The positions of a decoder-only model's prompt that hold the user's sentence (``translation.src_span``; every
    position of a bare prompt), and the word of the sentence each of them is in, read off the tokens' character
    offsets in the prompt relative to the sentence's start. A token straddling the sentence's start (one holding the
    space before its first word) belongs to the word it ends in. ``ValueError`` when the sentence cannot be located
    (the prompt does not re-tokenize to the model's input)."""
    text = translation.src_text
    prompt, first, special = _prompt_text(lm, text)
    enc = lm.src_tokenizer(prompt, return_offsets_mapping=True, add_special_tokens=special)
    offsets = [tuple(o) for o in enc.offset_mapping]
    if list(enc.input_ids) != list(translation.src_ids):
        raise ValueError(
            f"Lantern cannot locate the sentence's words in {lm.name}'s prompt (it does not tokenize to the ids the "
            "model read)"
        )
    end = first + len(text)
    inside = [i for i, (s, e) in enumerate(offsets) if e > s and s < end and e > first]
    if not inside:
        raise ValueError(f"the sentence has no tokens in {lm.name}'s prompt")
    span = translation.src_span
    a, b = (int(span[0]), int(span[1])) if span is not None else (inside[0], inside[-1] + 1)
    return slice(a, b), _shifted_words(offsets[a:b], first, text)


def output_words(lm: object, translation: object) -> list[int | None]:
    """The word of ``translation.text`` each output token of a decoder-only model is in (None for the token that
    ends the output); every token None when the output does not re-tokenize to the same ids."""
    text, tgt = translation.text, list(translation.tgt_ids)
    prefix = lm.template.output_prefix if lm.template is not None else ""
    enc = lm.tgt_tokenizer(prefix + text, return_offsets_mapping=True, add_special_tokens=False)
    ids = list(enc.input_ids)
    ended = len(tgt) == len(ids) + 1 and tgt[-1] in lm.stops()
    if tgt[: len(ids)] != ids or not (len(tgt) == len(ids) or ended):
        return [None] * len(tgt)
    return _shifted_words([tuple(o) for o in enc.offset_mapping], len(prefix), text) + [None] * ended


def source_attention(lm: object, translation: object, found: object) -> np.ndarray:
    """The attention of the positions that predict the output tokens over the source side: [layers, heads, T, S],
    from ``found`` (``explain.attention.extract_attention``'s maps): the cross-attention of an encoder-decoder, the
    causal self-attention rows over the prompt of a decoder-only model (position S - 1 + t predicts token t)."""
    if lm.is_seq2seq():
        if found.cross is None:
            raise ValueError(f"{lm.name} returns no cross-attention")
        return found.cross
    n_src, n_tgt = len(translation.src_ids), len(translation.tgt_ids)
    return found.decoder_self[:, :, n_src - 1 : n_src - 1 + n_tgt, :n_src]


def token_words(lm: object, translation: object) -> tuple[slice, list[int | None], list[int | None]]:
    """(the columns of an explanation's source side that are the sentence's tokens, the word of each of them, the
    word of each output token). Encoder-decoder: every source token (special tokens: None). Decoder-only: the
    sentence's tokens inside the prompt (``prompt_words``), the rest of the prompt left out."""
    src, out = translation.src_text, translation.text
    if lm.is_seq2seq():
        from explain.evaluate import _word_maps

        src_index, tgt_index = _word_maps(lm, src, out)
        columns = slice(0, len(translation.src_ids))
    else:
        columns, src_index = prompt_words(lm, translation)
        tgt_index = output_words(lm, translation)
    if len(tgt_index) != len(translation.tgt_ids):  # the output did not re-tokenize to the same pieces
        tgt_index = [None] * len(translation.tgt_ids)
    return columns, list(src_index), list(tgt_index)


def alignment_maps(
    lm: object,
    translation: object,
    method: str = "attention",
    n_steps: int = 32,
    n_samples: int = 25,
    noise_level: float = 0.15,
    progress: object = None,
    time_limit: float | None = None,
) -> AlignmentMaps:
    """``method``'s token maps [output tokens, source tokens] of ``translation`` (an ``explain.generation``
    output of ``lm``, e.g. ``force_translation`` of a reference): the mean and, for ``LAYERED_METHODS``, each layer
    (attention: heads averaged). A decoder-only model's source is the user's sentence inside its prompt
    (``token_words``): the maps' columns are the sentence's tokens, their rows the output tokens (attention: the
    causal self-attention of the positions that predict them)."""
    if method not in ALIGNMENT_METHODS:
        raise ValueError(f"{method!r} gives no source × output map; choose from {', '.join(ALIGNMENT_METHODS)}")
    if translation.truncated:
        raise ValueError("The sentence is longer than the model's input limit: its alignment would miss words")
    columns, src_index, tgt_index = token_words(lm, translation)  # before the costly part: refuse early
    n_src, n_tgt = len(translation.src_ids), len(translation.tgt_ids)
    if method == "attention":
        from explain.attention import extract_attention

        weights = source_attention(lm, translation, extract_attention(lm, translation))[..., columns]
        per_layer = weights.mean(1)
        maps = {"mean": weights.mean((0, 1))} | {str(i): m for i, m in enumerate(per_layer)}
    elif method in ("attention_norms", "value_zeroing"):
        from explain.mixing import attention_norms, value_zeroing

        if method == "attention_norms":
            stack = attention_norms(lm, list(translation.src_ids), list(translation.tgt_ids))
        else:
            stack = value_zeroing(lm, list(translation.src_ids), list(translation.tgt_ids), progress=progress)
        stack = stack.numpy()[:, :, :n_src][:, :, columns]  # [L, T, K]: K the source (or prompt + prefix)
        maps = {"mean": stack.mean(0)} | {str(i): m for i, m in enumerate(stack)}
    else:
        from explain.attribution import attribute

        attr = attribute(
            lm,
            translation,
            method,
            n_steps=n_steps,
            n_samples=n_samples,
            noise_level=noise_level,
            progress=progress,
            time_limit=time_limit,
        )
        if attr.scores.shape != (n_tgt, n_src):
            raise ValueError(f"{method} gave scores of shape {attr.scores.shape}, not (output, source) {n_tgt, n_src}")
        maps = {"mean": attr.scores[:, columns]}
    src, out = translation.src_text, translation.text
    maps = {k: np.asarray(v, dtype=float) for k, v in maps.items()}
    return AlignmentMaps(method, tuple(src.split(" ")), tuple(out.split(" ")), tuple(src_index), tuple(tgt_index), maps)


def align(
    maps: AlignmentMaps,
    layer: str | int = "mean",
    extraction: str = "row",
    eos: bool = False,
    signed: bool = False,
    gold: GoldAlignment | None = None,
    reverse: AlignmentMaps | None = None,
    step: str = "predicts",
    combine: str = "directions",
) -> SentenceAlignment:
    """Read one extraction setting off ``maps`` (``extract``) and, with ``gold``, score it (``score_alignments``).

    ``reverse``: the same method's maps from a model of the reverse direction on the swapped pair (its source this
    output, its output this source); the symmetrisations then combine the two models' own directions
    (``extract_all_both``) in the way ``combine`` names (``COMBINATIONS``): "directions", where "column" becomes the
    reverse model's rows and "row" stays this model's, "agreement" or "symmetrised". ``step``: the step that
    predicts each output token, or (Shift-Att) the one where it is the input, for both models."""
    scores = maps.words(layer, signed, step)
    if reverse is not None:
        if extraction not in EXTRACTIONS:
            raise ValueError(f"unknown extraction {extraction!r}; choose from {', '.join(EXTRACTIONS)}")
        if combine not in COMBINATIONS:
            raise ValueError(f"unknown combination {combine!r}; choose from {', '.join(COMBINATIONS)}")
        back = reverse.words(layer, signed, step)
        both = extract_all_both(scores, back, eos)
        if combine == "directions":
            links = frozenset(both["reverse" if extraction == "column" else extraction])
        else:
            links = frozenset(both[f"{extraction} {combine}"])
            if combine == "agreement":
                scores = agreement(scores, back)
    else:
        links = frozenset(extract(scores, extraction, eos))
    score = None
    if gold is not None and (links or gold.sure):
        score = score_alignments([links], [gold])
    return SentenceAlignment(
        maps.method,
        str(layer),
        extraction,
        eos,
        signed,
        maps.src_words,
        maps.tgt_words,
        scores,
        links,
        gold,
        score,
        step,
    )


def sentence_alignment(
    lm: object,
    translation: object,
    method: str = "attention",
    layer: str | int = "mean",
    extraction: str = "row",
    eos: bool = False,
    signed: bool = False,
    gold: GoldAlignment | None = None,
    **settings: object,
) -> SentenceAlignment:
    """An explanation's word alignment of one translation: ``align(alignment_maps(lm, translation, method), ...)``.

    from explain.alignment import sentence_alignment
    from explain.generation import force_translation
    tr = force_translation(lm, "the cat sleeps .", "le chat dort .")
    a = sentence_alignment(lm, tr, "attention", extraction="grow-diag")
    a.pharaoh  # "0-0 1-1 2-2 3-3"
    """
    return align(alignment_maps(lm, translation, method, **settings), layer, extraction, eos, signed, gold)


def find_gold(source: str, folder: str | Path | None = None) -> tuple[int, str, GoldAlignment] | None:
    """(index, French reference, gold links) of ``source`` when it is one of the Hansards gold-alignment sentences
    (``<data root>/gold-align-en-fr``); None when it is not, or when the data is not on this machine."""
    from common.paths import data_root
    from common.text import clean_text

    folder = Path(folder) if folder is not None else data_root() / "gold-align-en-fr"
    try:
        sources = (folder / "en.txt").read_text(encoding="utf-8").splitlines()
        wanted = clean_text(source)
        index = next((i for i, s in enumerate(sources) if clean_text(s) == wanted), None)
        if index is None or not wanted:
            return None
        refs = (folder / "fr.txt").read_text(encoding="utf-8").splitlines()
        gold = (folder / "enfr.gold").read_text(encoding="utf-8").splitlines()
        return index, clean_text(refs[index]), parse_gold_line(gold[index])
    except (OSError, UnicodeDecodeError, IndexError, ValueError):
        return None
