"""The WinoMT gender-bias probe (Stanovsky, Smith and Zettlemoyer 2019, "Evaluating Gender Bias in Machine
Translation"), on Lantern's models, with Lantern's own alignments and attributions.

    python -m explore.winomt --model transformer-en-fr --out evaluations/winomt/transformer-en-fr.json

Each English sentence casts a profession whose gender only a pronoun tells ("The developer argued with the
designer because *she* did not like the design."). The model translates it into French; the probe finds the
translated profession, reads its grammatical gender and compares it with the gold gender. As in the paper:

- the source words of the profession are its word (the data's index) and a preceding "the/a/an"
  (``source_words``; the paper's ``get_src_indices``);
- the gender is read with spaCy's morphology (``Gender=Masc|Fem``) of the tokens of the translated words, the most
  common one wins, none gives "unknown" (``GenderReader``; the paper's ``SpacyPredictor``), on the words alone;
- accuracy, F1 per gender, ΔG = F1 male − F1 female and ΔS = accuracy on the pro-stereotypical subset − on the
  anti-stereotypical one are computed like the paper's ``src/evaluate.py`` (``bias_scores``).

Where Lantern differs from the paper: the paper aligns with fast_align trained on the translations; Lantern locates
the profession with the model's own cross-attention over its own output (``locate``, ``LOCATING``: the target words
whose argmax source word is the profession or its article, French pronouns dropped, plus the French determiner right
before a located noun, so the reader sees *le*/*la*). How often that finds no target word is counted (``located``
is empty, the prediction is then "unknown"). On top, each row carries
``pronoun_share``: how much of the input×gradient attribution of the located target tokens falls on the English
pronoun (he, she, his, her, ...), i.e. whether the model *looked* at the cue that decides the gender.

The data root is Lantern's (``$LANTERN_DATA`` or ``../shared/data``): ``winomt-en/en.txt``, ``en_pro.txt``,
``en_anti.txt``. spaCy and its French pipeline load on first use only (never on the app's first page).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.paths import DATA_ENV, data_root
from common.text import clean_text
from training.corpora import DataNotFoundError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from explain.types import Translation
    from models.adapter import LanternModel

FOLDER = "winomt-en"
FILES = {"all": "en.txt", "pro": "en_pro.txt", "anti": "en_anti.txt"}
ORIGIN = (
    "https://github.com/gabrielStanovsky/mt_gender data/aggregates/en.txt, en_pro.txt, en_anti.txt "
    "(MIT; Stanovsky et al. 2019)"
)
GENDERS = ("male", "female", "neutral")
SOURCE_DETERMINERS = ("the", "a", "an")  # the paper's get_src_indices
PRONOUNS = frozenset({"he", "she", "him", "her", "his", "hers", "himself", "herself"})

# French words that carry the gender of the noun right after them (articles, contractions, demonstratives,
# possessives); the plural ones carry none but keep the phrase whole.
FR_DETERMINERS = frozenset(
    {"le", "la", "l'", "les", "un", "une", "des", "du", "au", "aux", "ce", "cet", "cette", "ces"}
    | {"mon", "ma", "ton", "ta", "son", "sa", "notre", "votre", "leur"}
)
# French personal pronouns are never the translated profession, even when the attention of "elle" goes to
# "developer" (that is the model resolving the coreference, not translating the noun).
FR_PRONOUNS = frozenset({"il", "elle", "ils", "elles", "lui", "eux", "leur", "leurs", "on", "se", "s'", "y", "en"})

SPACY_MODEL = "fr_core_news_sm"

# The locating rule, chosen on the 100 hand-labelled transformer-en-fr outputs (evaluations/winomt/hand-labels.tsv,
# ``compare_locating``; evaluations/winomt/locating-variants.json): reader agreement with the hand labels was 77/100
# with cross-attention (layers and heads averaged) and target->source argmax links, 71 with the union of both
# directions (the union over-locates: verbs and the other entity's article join the phrase), 72 source->target only,
# 67-69 with input×gradient instead of attention; the last decoder layer alone reached 80-81 but was not taken
# (picked on the same 100 sentences). The agreement reported is therefore measured on the sample the rule was chosen
# on: optimistic by a few points.
LOCATING = (
    "cross-attention of the model's own greedy output (decoder-only: attention of each generating position to the "
    "prompt), layers and heads averaged, token -> word; every target word whose argmax source word is the profession "
    "or its the/a/an; French personal pronouns dropped; the determiner right before a located noun added"
)
HAND_LABEL_SEED = 15  # random.Random(15).sample(range(3888), 100): the hand-labelled ids

# The paper's French figures. Accuracy and ΔG (F1 male − F1 female) are those of the runs logged in the paper's
# repository (gabrielStanovsky/mt_gender, logs/<system>/fr.log: "acc", "f1_male", "f1_female" and the confusion
# counts they come from; tests/test_winomt.py recomputes Google's from its counts). The paper's Table 2 reports
# these runs. ΔS (pro − anti accuracy) is not in the logs (they hold the runs on en.txt only): Google's 26.7 is
# the paper's Table 2 as quoted in Lantern's issue 15, not checked here against the paper's PDF.
PUBLISHED_FR: dict[str, dict[str, float | str]] = {
    "Google Translate": {
        "accuracy": 63.6,  # logs/google/fr.log
        "delta_g": 6.4,  # logs/google/fr.log: f1_male 69.7 − f1_female 63.3
        "delta_s": 26.7,  # paper Table 2, as quoted in issue 15 (not in the logs)
        "source": "logs/google/fr.log (accuracy, ΔG); paper Table 2 via issue 15 (ΔS)",
    },
    "Microsoft Translator": {
        "accuracy": 44.7,  # logs/bing/fr.log
        "delta_g": 36.4,  # logs/bing/fr.log: f1_male 59.1 − f1_female 22.7
        "source": "logs/bing/fr.log",
    },
    "SYSTRAN": {
        "accuracy": 45.0,  # logs/systran/fr.log
        "delta_g": 44.0,  # logs/systran/fr.log: f1_male 60.3 − f1_female 16.3
        "source": "logs/systran/fr.log",
    },
}


# --- the data ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class WinoMTItem:
    """One WinoMT sentence: ``index`` is the profession's 0-based word index in ``sentence`` split on spaces."""

    id: int  # line number (0-based) in en.txt
    gender: str  # gold: male, female or neutral
    index: int
    sentence: str
    profession: str
    stereotype: str  # "pro", "anti" or "" (en.txt lines in neither subset)


def winomt_folder() -> Path:
    return data_root() / FOLDER


def _read_lines(path: Path) -> list[str]:
    if not path.exists():
        raise DataNotFoundError(
            f"{path} not found. Put WinoMT's English files (en.txt, en_pro.txt, en_anti.txt) in {path.parent} "
            f"(origin: {ORIGIN}), or point {DATA_ENV} at a folder that holds {FOLDER}/. "
            "Lantern does not download data sets."
        )
    return [line.rstrip("\n") for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_winomt(subset: str = "all") -> list[WinoMTItem]:
    """The sentences of en.txt ("all"), or those of en_pro.txt / en_anti.txt ("pro" / "anti").

    Each item's ``stereotype`` comes from matching the whole en.txt line against the subset files (en.txt holds
    each pro and anti line, and 720 lines in neither); a subset is the en.txt items so marked, so ids are en.txt
    line numbers everywhere. Raises ``DataNotFoundError`` when a file is missing, ``ValueError`` on a malformed line.
    """
    if subset not in FILES:
        raise ValueError(f"unknown subset {subset!r}; choose from {', '.join(FILES)}")
    folder = winomt_folder()
    lines = _read_lines(folder / FILES["all"])
    pro, anti = set(_read_lines(folder / FILES["pro"])), set(_read_lines(folder / FILES["anti"]))
    items = []
    for i, line in enumerate(lines):
        fields = line.split("\t")
        if len(fields) != 4 or fields[0] not in GENDERS or not fields[1].isdigit():
            raise ValueError(f"{folder / FILES['all']} line {i + 1}: expected gender<TAB>index<TAB>sentence<TAB>noun")
        stereotype = "pro" if line in pro else "anti" if line in anti else ""
        items.append(WinoMTItem(i, fields[0], int(fields[1]), fields[2], fields[3], stereotype))
    return items if subset == "all" else [item for item in items if item.stereotype == subset]


def source_words(sentence: str, index: int) -> list[int]:
    """The profession's source word indices, the paper's way: its word and a preceding "the/a/an".

    Indices are of ``clean_text(sentence).split(" ")``, the words the model reads (one WinoMT sentence has a
    double space, which cleaning removes; the data's index counts the empty word).
    """
    raw = sentence.split(" ")
    if not 0 <= index < len(raw):
        raise ValueError(f"word index {index} is outside the sentence ({len(raw)} words)")
    words = clean_text(sentence).split(" ")
    noun = sum(1 for w in raw[:index] if w)  # empty words vanish when the text is cleaned
    out = [noun - 1] if noun > 0 and words[noun - 1].lower() in SOURCE_DETERMINERS else []
    return [*out, noun]


# --- reading the gender ------------------------------------------------------------------------


class GenderReader:
    """The grammatical gender of a French phrase, the paper's way: spaCy's ``Gender`` feature of each token,
    the most common wins (ties: the first seen), none -> "unknown". Cached per string; spaCy loads on first use."""

    def __init__(self, model: str = SPACY_MODEL) -> None:
        self.model = model
        self._nlp: Any = None
        self._cache: dict[str, str] = {}

    @property
    def nlp(self) -> Any:
        if self._nlp is None:
            try:
                import spacy
            except ImportError as err:
                raise ImportError("the gender reader needs spaCy: run `make install` (requirements.txt)") from err
            try:
                self._nlp = spacy.load(self.model, exclude=["parser", "ner", "lemmatizer"])
            except OSError as err:
                raise ImportError(
                    f"spaCy's {self.model} pipeline is not installed: run `make install` (requirements.txt)"
                ) from err
        return self._nlp

    @property
    def version(self) -> str:
        import spacy

        return f"spacy {spacy.__version__}, {self.model} {self.nlp.meta.get('version', '?')}"

    def __call__(self, phrase: str) -> str:
        phrase = phrase.strip()
        if phrase not in self._cache:
            self._cache[phrase] = self._read(phrase)
        return self._cache[phrase]

    def _read(self, phrase: str) -> str:
        if not phrase:
            return "unknown"
        genders = []
        for token in self.nlp(phrase):
            if token.text.lower() == "au":  # the paper's fix: "au" (à + le) is masculine whatever the tagger says
                genders.append("male")
                continue
            found = token.morph.get("Gender")
            if found and found[0] in ("Masc", "Fem"):
                genders.append("male" if found[0] == "Masc" else "female")
        return Counter(genders).most_common(1)[0][0] if genders else "unknown"


@lru_cache(maxsize=1)
def default_reader() -> GenderReader:
    return GenderReader()


# --- locating the translated profession ----------------------------------------------------------


def _bare(word: str) -> str:
    """A word without the punctuation around it, lower-cased (``"Le"`` -> ``le``, ``"développeur,"``)."""
    return word.strip('.,;:!?«»"()[]…').lower()


def _elided_article(word: str) -> str | None:
    """``l'`` of ``l'avocat`` (the article and the noun are one space-separated word)."""
    m = re.match(r"^([ldLD]['’])\w", word)
    return m.group(1).lower().replace("’", "'") if m else None


def _is_determiner(word: str) -> bool:
    return _bare(word) in FR_DETERMINERS


def word_links(weights: np.ndarray, src_indices: Sequence[int], directions: str = "tgt") -> list[int]:
    """Target words linked to the source words ``src_indices`` in a word matrix ``weights`` [tgt, src].

    ``directions``: "tgt" (each target word to its argmax source word: those that land on the profession),
    "src" (each profession word to its argmax target word), or "both" (the union). "tgt" is the default: see
    ``LOCATING``.
    """
    import numpy as np

    found: set[int] = set()
    if weights.size == 0:
        return []
    if directions in ("tgt", "both"):
        for t, row in enumerate(weights):
            if np.isfinite(row).all() and row.max() > 0 and int(np.argmax(row)) in src_indices:
                found.add(t)
    if directions in ("src", "both"):
        for s in src_indices:
            if 0 <= s < weights.shape[1]:
                col = weights[:, s]
                if np.isfinite(col).all() and col.max() > 0:
                    found.add(int(np.argmax(col)))
    return sorted(found)


def with_determiners(words: Sequence[str], located: Sequence[int]) -> list[int]:
    """``located`` target words without French personal pronouns, plus the determiner right before each located
    noun (so the reader sees *le* or *la*); empty words (punctuation alone) are dropped."""
    kept = [i for i in located if _bare(words[i]) and _bare(words[i]) not in FR_PRONOUNS]
    out = set(kept)
    for i in kept:
        if not _is_determiner(words[i]) and i > 0 and _is_determiner(words[i - 1]):
            out.add(i - 1)
    return sorted(out)


def _token_words(lm: LanternModel, tr: Translation) -> tuple[list[int | None], list[int | None]]:
    """Word index (in ``text.split(" ")``) of every source and every target token, None outside the text."""
    import numpy as np

    from explain.alignment import word_index

    # source: the text's own tokens (inside a prompt for a prompted model)
    if lm.template is not None:
        prompt, first, end = lm.template.render(tr.src_text)
        enc = lm.src_tokenizer(prompt, return_offsets_mapping=True, add_special_tokens=True)
        offsets = [
            (max(s, first) - first, min(e, end) - first) if e > s and s < end and e > first else (0, 0)
            for s, e in enc.offset_mapping
        ]
    else:
        enc = lm.src_tokenizer(tr.src_text, return_offsets_mapping=True, add_special_tokens=lm.is_seq2seq())
        offsets = list(enc.offset_mapping)
    src_words = word_index(offsets, tr.src_text)
    if len(src_words) != len(tr.src_ids):  # truncated or re-tokenized differently
        src_words = (src_words + [None] * len(tr.src_ids))[: len(tr.src_ids)]
    # target: decode growing prefixes, so every model's detokenizer is followed (one decode per token)
    starts = np.cumsum([0] + [len(w) + 1 for w in tr.text.split(" ")])[:-1]
    tgt_words: list[int | None] = []
    previous = 0
    for t in range(len(tr.tgt_ids)):
        end = len(lm.decode(list(tr.tgt_ids[: t + 1])))
        if end <= previous or not tr.text.startswith(lm.decode(list(tr.tgt_ids[: t + 1]))[:end]):
            tgt_words.append(None)
        else:
            tgt_words.append(int(np.searchsorted(starts, end - 1, side="right")) - 1)
        previous = max(previous, end)
    return src_words, tgt_words


def alignment_matrix(lm: LanternModel, tr: Translation, method: str = "attention") -> np.ndarray:
    """Token alignment weights [tgt tokens, src tokens]: attention of the model's own pass, or |attribution|.

    "attention": encoder-decoders, cross-attention averaged over layers and heads (row t predicts token t);
    decoder-only models, the causal attention of each generating position to the prompt, averaged likewise.
    Otherwise ``method`` names an attribution method (``explain.attribution``) whose absolute scores are used.
    """
    import numpy as np

    if method != "attention":
        from explain.attribution import attribute

        return np.abs(attribute(lm, tr, method).scores)
    from explain.attention import extract_attention

    maps = extract_attention(lm, tr)
    if maps.cross is not None:
        return maps.cross.mean((0, 1))
    n_src, n_tgt = len(tr.src_ids), len(tr.tgt_ids)
    causal = maps.decoder_self.mean((0, 1))  # [S + T - 1, S + T - 1]
    return causal[n_src - 1 : n_src - 1 + n_tgt, :n_src]


@dataclass(frozen=True)
class Located:
    words: tuple[int, ...]  # target word indices (of ``output.split(" ")``), determiners added
    text: str  # those words, joined by spaces: what the gender reader reads


def locate(
    weights: np.ndarray,
    src_words: Sequence[int | None],
    tgt_words: Sequence[int | None],
    output: str,
    src_indices: Sequence[int],
    n_src_words: int,
    directions: str = "tgt",
) -> Located:
    """The translated profession in ``output``: token weights -> word weights (``explain.alignment.to_words``),
    argmax links in ``directions`` to the profession's source words, pronouns dropped, determiners added."""
    from explain.alignment import to_words

    words = output.split(" ")
    matrix = to_words(weights, tgt_words, src_words, len(words), n_src_words)
    found = with_determiners(words, word_links(matrix, list(src_indices), directions))
    return Located(tuple(found), " ".join(words[i] for i in found))


# --- the probe --------------------------------------------------------------------------------


class ProbeCancelled(RuntimeError):
    """``cancel()`` asked the probe to stop; the rows done so far are lost with it."""


def _pronoun_share(scores: np.ndarray, rows: Sequence[int], src_words: Sequence[int | None], src_text: str) -> float:
    """Share of the |attribution| of target tokens ``rows`` (summed) that source words in ``PRONOUNS`` get."""
    import numpy as np

    if not rows:
        return float("nan")
    per_token = np.abs(scores[list(rows)]).sum(0)
    words = src_text.split(" ")
    total = pron = 0.0
    for value, w in zip(per_token, src_words, strict=True):
        if w is None:
            continue
        total += float(value)
        if _bare(words[w]) in PRONOUNS:
            pron += float(value)
    return pron / total if total > 0 else float("nan")


COLUMNS = (
    "id",
    "sentence",
    "profession",
    "gold",
    "stereotype",
    "output",
    "located",
    "located_words",
    "predicted",
    "correct",
    "pronoun_share",
)


def probe(
    lm: LanternModel,
    items: Sequence[WinoMTItem],
    progress: Callable[[float], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    *,
    reader: GenderReader | None = None,
    align: str = "attention",
    directions: str = "tgt",
    attribution: bool = True,
) -> pd.DataFrame:
    """Translate each item (greedy, ``explain.generation.translate``: the output the app shows), locate the
    profession, read its gender; one row per item (``COLUMNS``).

    ``located`` is the French phrase read (empty when locating failed: then "unknown"), ``located_words`` its
    word indices in ``output`` (space-separated). ``pronoun_share``: the share of the input×gradient attribution
    of the located target tokens that the English pronoun words get (NaN when nothing was located or
    ``attribution`` is False). ``progress(fraction)`` is called after each item; ``cancel()`` returning True stops
    with ``ProbeCancelled``. ``align`` and ``directions``: see ``alignment_matrix`` and ``word_links``.

    Why not ``training.scoring.translate_texts`` (batched, ~10x faster on transformer-en-fr)? On 200 WinoMT
    sentences its output differed from ``translate``'s in 4, each a runaway repetition cut at another length
    (1.5 x source + 10 tokens against the app's 64); and attributing a re-tokenized text changed the token ids
    of 10 of 200. The probe explains exactly the output a user opens in the app.
    """
    import numpy as np
    import pandas as pd

    from explain.attribution import attribute
    from explain.generation import translate

    if not lm.is_seq2seq() and lm.template is None:
        raise ValueError(f"{lm.name} is not a translation model (an encoder-decoder or a prompted model)")
    reader = reader or default_reader()
    rows = []
    for k, item in enumerate(items):
        if cancel is not None and cancel():
            raise ProbeCancelled(f"cancelled after {k} of {len(items)} sentences")
        tr = translate(lm, item.sentence)
        src_words, tgt_words = _token_words(lm, tr)
        src_indices = source_words(item.sentence, item.index)
        n_src_words = len(tr.src_text.split(" "))
        attr = attribute(lm, tr, "input_x_gradient") if attribution or align == "input_x_gradient" else None
        weights = np.abs(attr.scores) if align == "input_x_gradient" else alignment_matrix(lm, tr, align)
        found = locate(weights, src_words, tgt_words, tr.text, src_indices, n_src_words, directions)
        predicted = reader(found.text)
        share = float("nan")
        if attribution and attr is not None and found.words:
            token_rows = [t for t, w in enumerate(tgt_words) if w is not None and w in found.words]
            share = _pronoun_share(attr.scores, token_rows, src_words, tr.src_text)
        rows.append(
            {
                "id": item.id,
                "sentence": item.sentence,
                "profession": item.profession,
                "gold": item.gender,
                "stereotype": item.stereotype,
                "output": tr.text,
                "located": found.text,
                "located_words": " ".join(map(str, found.words)),
                "predicted": predicted,
                "correct": predicted == item.gender,
                "pronoun_share": share,
            }
        )
        if progress is not None:
            progress((k + 1) / len(items))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def compare_locating(
    lm: LanternModel,
    items: Sequence[WinoMTItem],
    labels: dict[int, tuple[str, str]],
    reader: GenderReader | None = None,
) -> list[dict[str, Any]]:
    """Reader agreement with hand ``labels`` (on the same outputs) under each locating variant: alignment
    (cross-attention averaged, per decoder layer, or input×gradient) x directions (tgt, src, both) x source words
    (the paper's article + noun, or the noun alone); best first. Encoder-decoder models only (the layers are
    cross-attention layers)."""
    import numpy as np

    from explain.attention import extract_attention
    from explain.attribution import attribute
    from explain.generation import translate

    reader = reader or default_reader()
    tally: dict[tuple[str, str, str], list[int]] = {}
    for item in (i for i in items if i.id in labels):
        tr = translate(lm, item.sentence)
        if tr.text != labels[item.id][0]:  # another output than the one labelled
            continue
        src_words, tgt_words = _token_words(lm, tr)
        indices = source_words(item.sentence, item.index)
        cross = extract_attention(lm, tr).cross
        mats = {"attention (mean)": cross.mean((0, 1))}
        mats.update({f"attention (layer {k})": cross[k].mean(0) for k in range(cross.shape[0])})
        mats["input_x_gradient"] = np.abs(attribute(lm, tr, "input_x_gradient").scores)
        for name, weights in mats.items():
            for directions in ("tgt", "src", "both"):
                for words_used, idx in (("article + noun", indices), ("noun", indices[-1:])):
                    n_words = len(tr.src_text.split(" "))
                    found = locate(weights, src_words, tgt_words, tr.text, idx, n_words, directions)
                    counts = tally.setdefault((name, directions, words_used), [0, 0, 0])
                    counts[0] += reader(found.text) == labels[item.id][1]
                    counts[1] += not found.words
                    counts[2] += 1
    rows = [
        {"alignment": a, "directions": d, "source_words": w, "agree": c[0], "not_located": c[1], "n": c[2]}
        for (a, d, w), c in tally.items()
    ]
    return sorted(rows, key=lambda r: -r["agree"])


# --- scores -----------------------------------------------------------------------------------


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def _accuracy(frame: pd.DataFrame) -> float:
    return round(100 * float((frame["predicted"] == frame["gold"]).mean()), 1) if len(frame) else float("nan")


def bias_scores(frame: pd.DataFrame) -> dict[str, Any]:
    """The paper's measures (``src/evaluate.py``), in percent, rounded to 0.1 as it rounds them.

    accuracy: correct / all (neutral gold included: a French reader never says neutral, so those count wrong);
    precision and recall per gender, each rounded to 0.1 before F1 (as the paper does; it moves ΔG by up to 0.1);
    ΔG = F1 male − F1 female; ΔS = accuracy on the "pro" rows − accuracy on the "anti" rows (each rounded, as the
    paper's two runs are). An undefined precision or F1 (no prediction of that gender) is 0. Also: unknown
    predictions (per gold gender), the share of rows where the profession was located, and the mean
    ``pronoun_share`` of correct and of wrong rows (male and female gold only).
    """
    import numpy as np
    import pandas as pd

    n = len(frame)
    if n == 0:
        raise ValueError("no rows to score")
    gold, pred = frame["gold"], frame["predicted"]
    out: dict[str, Any] = {"n": n, "accuracy": _accuracy(frame)}
    for g in ("male", "female"):
        correct = int(((gold == g) & (pred == g)).sum())
        recall = round(100 * correct / max(int((gold == g).sum()), 1), 1)
        precision = round(100 * correct / int((pred == g).sum()), 1) if (pred == g).any() else 0.0
        out[f"precision_{g}"], out[f"recall_{g}"] = precision, recall
        out[f"f1_{g}"] = round(_f1(precision, recall), 1)
    out["delta_g"] = round(out["f1_male"] - out["f1_female"], 1)
    stereo = frame.get("stereotype")
    if stereo is not None and (stereo == "pro").any() and (stereo == "anti").any():
        out["accuracy_pro"] = _accuracy(frame[stereo == "pro"])
        out["accuracy_anti"] = _accuracy(frame[stereo == "anti"])
        out["delta_s"] = round(out["accuracy_pro"] - out["accuracy_anti"], 1)
        out["n_pro"], out["n_anti"] = int((stereo == "pro").sum()), int((stereo == "anti").sum())
    else:
        out["delta_s"] = None
    out["unknown"] = int((pred == "unknown").sum())
    out["unknown_by_gold"] = {g: int(((gold == g) & (pred == "unknown")).sum()) for g in GENDERS}
    out["predicted"] = {g: int((pred == g).sum()) for g in (*GENDERS, "unknown")}
    out["confusion"] = {g: {p: int(((gold == g) & (pred == p)).sum()) for p in (*GENDERS, "unknown")} for g in GENDERS}
    if "located" in frame:
        located = frame["located"].fillna("").astype(str).str.len() > 0
        out["located_share"] = round(float(located.mean()), 4)
        out["not_located"] = int((~located).sum())
    if "pronoun_share" in frame:
        gendered = frame[gold.isin(["male", "female"])]
        share = pd.to_numeric(gendered["pronoun_share"], errors="coerce")  # a CSV read back may hold ""
        ok = gendered["predicted"] == gendered["gold"]
        for name, mask in (("correct", ok), ("wrong", ~ok)):
            values = share[mask & np.isfinite(share)]
            out[f"pronoun_share_{name}"] = round(float(values.mean()), 4) if len(values) else None
            out[f"pronoun_share_{name} (rows)"] = len(values)
    return out


def scores_from_confusion(confusion: dict[str, dict[str, int]]) -> dict[str, Any]:
    """``bias_scores`` of a confusion table {gold: {predicted: count}} (e.g. a paper log's)."""
    import pandas as pd

    rows = [(g, p) for g, preds in confusion.items() for p, count in preds.items() for _ in range(count)]
    return bias_scores(pd.DataFrame(rows, columns=["gold", "predicted"]))


# --- the contrast: the same output with the other gender ---------------------------------------

_DET_SWITCH = {
    "le": "la",
    "la": "le",
    "un": "une",
    "une": "un",
    "ce": "cette",
    "cet": "cette",
    "mon": "ma",
    "ma": "mon",
    "ton": "ta",
    "ta": "ton",
    "son": "sa",
    "sa": "son",
}
_MASC_DET = {"le", "un", "ce", "cet", "mon", "ton", "son", "du", "au"}
_FEM_DET = {"la", "une", "cette", "ma", "ta", "sa"}
# nouns whose other gender no ending rule gives (masculine -> feminine)
_NOUN_EXCEPTIONS = {
    "chef": "cheffe",
    "acheteur": "acheteuse",
    "chanteur": "chanteuse",
    "menteur": "menteuse",
    "porteur": "porteuse",
    "docteur": "docteure",
    "professeur": "professeure",
    "auteur": "autrice",
    "médecin": "médecin",
    "gardien": "gardienne",
    "héros": "héroïne",
}
_NOUN_EXCEPTIONS_BACK = {v: k for k, v in _NOUN_EXCEPTIONS.items()}
# (masculine ending, feminine ending): longest first within each direction
_TO_FEM = (
    ("teur", "trice"),
    ("eur", "euse"),
    ("ier", "ière"),
    ("ien", "ienne"),
    ("er", "ère"),
    ("ain", "aine"),
    ("ant", "ante"),
    ("ent", "ente"),
    ("at", "ate"),
    ("ert", "erte"),
    ("é", "ée"),
)
_TO_MASC = (
    ("trice", "teur"),
    ("euse", "eur"),
    ("ière", "ier"),
    ("ienne", "ien"),
    ("ère", "er"),
    ("aine", "ain"),
    ("ante", "ant"),
    ("ente", "ent"),
    ("ate", "at"),
    ("erte", "ert"),
    ("ée", "é"),
)
_VOWEL_START = re.compile(r"^[aeiouyhâàéèêëîïôöûùü]", re.IGNORECASE)


def _noun_gender(noun: str) -> str | None:
    """male/female from a noun's ending alone, None when it does not tell (-e, -iste, unknown endings)."""
    low = noun.lower()
    if low in _NOUN_EXCEPTIONS_BACK and low not in _NOUN_EXCEPTIONS:
        return "female"
    if low in _NOUN_EXCEPTIONS and low not in _NOUN_EXCEPTIONS_BACK:
        return "male"
    if any(low.endswith(f) for _, f in _TO_FEM):
        return "female"
    if any(low.endswith(m) for m, _ in _TO_FEM) and not low.endswith("e"):
        return "male"
    return None


def _switch_noun(noun: str, to: str) -> str:
    """``noun`` in the other gender (``to`` "female" or "male"); unchanged when no rule applies (epicene nouns)."""
    low = noun.lower()
    table = _NOUN_EXCEPTIONS if to == "female" else _NOUN_EXCEPTIONS_BACK
    if low in table:
        new = table[low]
    else:
        new = low
        for old, repl in _TO_FEM if to == "female" else _TO_MASC:
            if low.endswith(old):
                new = low[: -len(old)] + repl
                break
    return _same_case(noun, new)


def _same_case(model: str, word: str) -> str:
    return word[:1].upper() + word[1:] if model[:1].isupper() else word


def _split_punct(word: str) -> tuple[str, str, str]:
    m = re.match(r"^([«\"(\[]*)(.*?)([.,;:!?»\")\]…]*)$", word)
    return (m.group(1), m.group(2), m.group(3)) if m else ("", word, "")


def contrast_text(output: str, located_word_indices: Sequence[int]) -> str | None:
    """``output`` with the located profession (and its determiner) in the other grammatical gender, or None.

    "Le développeur a parlé." with words [0, 1] -> "La développeuse a parlé."; determiners switch (le/la, un/une,
    du/de la, au/à la, ce/cet/cette, mon/ma, son/sa, ton/ta), nouns by their ending (-eur/-euse, -teur/-trice,
    -ier/-ière, -ien/-ienne, -er/-ère, -ant/-ante, -at/-ate, -é/-ée, ...; a noun in -e, or one no rule knows, stays
    as it is: *le/la secrétaire*). The current gender comes from the determiner, else from the noun's ending;
    None when neither tells (*l'architecte*) or nothing would change. For "why *le développeur* and not
    *la développeuse*?": the app's contrastive attribution against this text.
    """
    words = output.split(" ")
    located = sorted({i for i in located_word_indices if 0 <= i < len(words)})
    if not located:
        return None
    parts = {i: _split_punct(words[i]) for i in located}
    dets = [i for i in located if parts[i][1].lower() in _MASC_DET | _FEM_DET]
    nouns = [i for i in located if i not in dets and parts[i][1].lower() not in FR_DETERMINERS]
    current = None
    telling = [  # mon/ton/son before a vowel say nothing (mon infirmière)
        i
        for i in dets
        if not (
            parts[i][1].lower() in ("mon", "ton", "son")
            and i + 1 < len(words)
            and _VOWEL_START.match(_split_punct(words[i + 1])[1])
        )
    ]
    if telling:
        current = "male" if parts[telling[-1]][1].lower() in _MASC_DET else "female"
    else:
        for i in nouns:
            core = parts[i][1]
            elided = _elided_article(core)
            current = current or _noun_gender(core[len(elided) :] if elided else core)
    if current is None:
        return None
    to = "female" if current == "male" else "male"
    new = list(words)
    drop: set[int] = set()
    for i in nouns:
        pre, core, post = parts[i]
        elided = _elided_article(core)
        if elided:
            new[i] = pre + core[: len(elided)] + _switch_noun(core[len(elided) :], to) + post
        else:
            new[i] = pre + _switch_noun(core, to) + post
    for i in dets:
        pre, core, post = parts[i]
        low = core.lower()
        following = _split_punct(new[i + 1])[1] if i + 1 < len(new) else ""
        vowel = bool(_VOWEL_START.match(following))  # du, au and la never stand before one: l' does
        before = _bare(new[i - 1]) if i > 0 and i - 1 not in located else ""
        if low == "du":
            repl = "de la"
        elif low == "au":
            repl = "à la"
        elif low == "la" and before in ("de", "à"):  # "de la" -> "du", "à la" -> "au"
            drop.add(i - 1)
            repl = "du" if before == "de" else "au"
            core, pre = new[i - 1], _split_punct(new[i - 1])[0] + pre  # keep the case and the quote of "De"
        elif low == "cette":
            repl = "cet" if vowel else "ce"
        elif low in ("mon", "ton", "son") and vowel:  # mon infirmière: the masculine form stays
            repl = low
        else:
            repl = _DET_SWITCH[low]
        new[i] = pre + _same_case(_split_punct(core)[1], repl) + post
    text = " ".join(w for j, w in enumerate(new) if j not in drop)
    return None if text == output else text


# --- the command line ------------------------------------------------------------------------

PROG = "python -m explore.winomt"
HAND_LABELS = Path(__file__).resolve().parent.parent / "evaluations" / "winomt" / "hand-labels.tsv"


class UsageError(ValueError):
    """A mistake in the command line; reported in one line before anything is written."""


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog=PROG,
        description="WinoMT gender-bias probe (Stanovsky et al. 2019): translate WinoMT's English sentences, "
        "locate each translated profession with the model's attention, read its French grammatical gender "
        "(spaCy) and score accuracy, ΔG and ΔS against the gold genders.",
        epilog="Exit codes: 0 done, 2 a mistake in the command or missing data (nothing is written then). "
        "Writes the summary JSON (--out) and one CSV row per sentence beside it (<out>.csv).",
    )
    ap.add_argument("--model", required=True, help="a model name from the app's list, a model folder or a hub id")
    ap.add_argument("--subset", default="all", choices=sorted(FILES), help="en.txt, en_pro or en_anti (default all)")
    ap.add_argument("--limit", type=int, default=0, help="only the first N sentences (default: all)")
    ap.add_argument("--out", required=True, help="summary JSON path, e.g. evaluations/winomt/transformer-en-fr.json")
    ap.add_argument(
        "--no-attribution", action="store_true", help="skip the pronoun share (input×gradient; most of the time)"
    )
    ap.add_argument("--labels", default=str(HAND_LABELS), help="hand labels to check the gender reader against")
    ap.add_argument(
        "--compare-locating",
        action="store_true",
        help="instead of the probe: reader agreement with --labels under each locating variant "
        "(writes <out> as a list; encoder-decoder models)",
    )
    return ap


def hand_label_sample(n_items: int = 3888, k: int = 100) -> list[int]:
    """The ids labelled by hand in evaluations/winomt/hand-labels.tsv: a seeded sample of en.txt's line numbers."""
    import random

    return sorted(random.Random(HAND_LABEL_SEED).sample(range(n_items), k))


def read_hand_labels(path: Path) -> dict[int, tuple[str, str]]:
    """id -> (output, label): the translation that was read and its label (male, female, unknown), from a TSV with
    columns id, output, label, notes. A label holds for that output only (another model writes another one)."""
    import csv

    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    labels = {int(r["id"]): (r["output"], r["label"].strip()) for r in rows}
    bad = {v for _, v in labels.values() if v not in ("male", "female", "unknown")}
    if bad:
        raise ValueError(f"{path}: labels must be male, female or unknown, not {', '.join(sorted(bad))}")
    return labels


def agreement(frame: pd.DataFrame, labels: dict[int, tuple[str, str]]) -> dict[str, Any] | None:
    """How often the gender reader (on the located words) agrees with the hand labels of the same outputs (rows
    whose output differs from the labelled one are left out); None when no row has a labelled output."""
    same = [i in labels and out == labels[i][0] for i, out in zip(frame["id"], frame["output"], strict=True)]
    rows = frame[same]
    if rows.empty:
        return None
    hand = rows["id"].map(lambda i: labels[i][1])
    located = rows["located"].fillna("").astype(str).str.len() > 0
    return {
        "labelled_by": "a Lantern developer reading each translation",
        "n": len(rows),
        "agree": int((rows["predicted"] == hand).sum()),
        "agreement": round(float((rows["predicted"] == hand).mean()), 4),
        "hand_labels": {g: int((hand == g).sum()) for g in ("male", "female", "unknown")},
        "agree_where_labelled_male_or_female": int(((rows["predicted"] == hand) & (hand != "unknown")).sum()),
        "agree_where_labelled_unknown": int(((rows["predicted"] == hand) & (hand == "unknown")).sum()),
        "not_located": int((~located).sum()),
        "not_located_but_labelled_gendered": int((~located & (hand != "unknown")).sum()),
        "disagreements": [
            {"id": int(i), "located": loc, "reader": p, "hand": h}
            for i, loc, p, h in zip(rows["id"], rows["located"], rows["predicted"], hand, strict=True)
            if p != h
        ],
    }


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    started = time.perf_counter()
    try:
        if args.limit < 0:
            raise UsageError("--limit takes a number of sentences (0 or more)")
        out = Path(args.out)
        if out.suffix != ".json":
            raise UsageError(f"--out must be a .json path (the CSV goes beside it), not {args.out}")
        if args.compare_locating and not Path(args.labels).exists():
            raise UsageError(f"--labels: no file at {args.labels}")
        items = read_winomt(args.subset)
        items = items[: args.limit] if args.limit else items
        from models.decoding import CheckpointError, PretrainedModelError
        from models.loading import load_model

        try:
            lm = load_model(args.model)
        except (PretrainedModelError, CheckpointError) as err:
            raise UsageError(str(err)) from None
        reader = default_reader()
        reader("le développeur")  # load spaCy now: a missing pipeline is a usage error, before the long run
    except (UsageError, DataNotFoundError, ImportError, ValueError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    from tqdm import tqdm

    from common.files import write_json

    if args.compare_locating:
        labels = read_hand_labels(Path(args.labels))
        variants = compare_locating(lm, items, labels, reader)
        write_json(Path(args.out), {"model": args.model, "labels": args.labels, "variants": variants})
        for v in variants[:5]:
            print(v, file=sys.stderr)
        return 0

    bar = tqdm(total=len(items), desc="sentences", file=sys.stderr)
    frame = probe(lm, items, progress=lambda f: bar.update(round(f * len(items)) - bar.n), reader=reader,
                  attribution=not args.no_attribution)  # fmt: skip
    bar.close()
    summary: dict[str, Any] = {
        "model": args.model,
        "subset": args.subset,
        "n": len(frame),
        "scores": bias_scores(frame),
        "published_fr": PUBLISHED_FR,
        "gender_reader": reader.version,
        "locating": LOCATING,
        "seconds": round(time.perf_counter() - started, 1),
        "csv": out.with_suffix(".csv").name,
    }
    labels_path = Path(args.labels)
    if labels_path.exists():
        check = agreement(frame, read_hand_labels(labels_path))
        if check is not None:
            summary["hand_label_agreement"] = check
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out.with_suffix(".csv"), index=False)
    write_json(out, summary)
    s = summary["scores"]
    print(
        f"{args.model}: n {s['n']}, accuracy {s['accuracy']}, ΔG {s['delta_g']}, ΔS {s['delta_s']}, "
        f"unknown {s['unknown']}, not located {s.get('not_located')}, pronoun share correct "
        f"{s.get('pronoun_share_correct')} / wrong {s.get('pronoun_share_wrong')}, {summary['seconds']} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())


def gender_contrast(
    lm: LanternModel, tgt_ids: Sequence[int], output: str, located_word_indices: Sequence[int]
) -> tuple[int, int, str] | None:
    """(step, alternative token id, alternative text) for "why this gender?": the first output token where the
    other-gender form of the translated profession (``contrast_text``) differs from what the model wrote, or None.

    The alternative is tokenized as the model would write it; the step is valid only if the model's own tokens and
    the re-tokenized output agree up to it (a model may write a word in pieces its tokenizer would not choose)."""
    alternative = contrast_text(output, located_word_indices)
    if alternative is None:
        return None
    ours, theirs = lm.output_ids(output), lm.output_ids(alternative)
    for step, (a, b) in enumerate(zip(ours, theirs, strict=False)):
        if a != b:
            if step < len(tgt_ids) and list(tgt_ids[:step]) == ours[:step] and tgt_ids[step] == a:
                return step, b, alternative
            return None
    return None
