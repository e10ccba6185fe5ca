"""Few-shot translation prompts for base (not instruction-tuned) decoder-only models. Torch-free.

A base language model translates when the prompt shows it a few translated pairs and leaves the last one
open (Brown et al. 2020)::

    Chinese: 帮助你是我的责任。
    English: It's my duty to help you.
    <two more pairs>
    Chinese: 我爱北京天安门
    English:

and it stops at the end of the line. The examples come from the *training* split of Lantern's corpora
(``load_splits(...).train``, never the test split the BLEU scores are measured on; a test checks that);
the user's sentence is the one part of the prompt the explanation pages show by default
(``SourceEncoding.span``, ``Translation.src_span``).
"""

from __future__ import annotations

from dataclasses import dataclass

LANGUAGE_NAMES = {"zh": "Chinese", "en": "English", "fr": "French", "de": "German"}


@dataclass(frozen=True)
class FewShot:
    """A translation prompt: ``examples`` shown first, then the user's sentence, then the target language's label."""

    src_lang: str
    tgt_lang: str
    examples: tuple[tuple[str, str], ...]
    corpus: str  # where the examples come from (their training split)

    @property
    def pair(self) -> str:
        return f"{self.src_lang}-{self.tgt_lang}"

    def _labels(self) -> tuple[str, str]:
        return LANGUAGE_NAMES[self.src_lang], LANGUAGE_NAMES[self.tgt_lang]

    def render(self, text: str) -> tuple[str, int, int]:
        """(the whole prompt, first and end character of ``text`` in it)."""
        src, tgt = self._labels()
        shots = "".join(f"{src}: {a}\n{tgt}: {b}\n\n" for a, b in self.examples)
        head = f"{shots}{src}: "
        return f"{head}{text}\n{tgt}:", len(head), len(head) + len(text)

    @property
    def output_prefix(self) -> str:
        """What an output is written after (``English:`` is followed by a space, then the translation)."""
        return " "

    @property
    def end(self) -> str:
        """The text that ends an output (the blank line before the next pair)."""
        return "\n\n"


# Chosen by hand (short, natural sentences) among six pairs drawn with random.Random(0) from the training split of
# each corpus as ``training.corpora.load_splits`` makes it (6 to 14 words or characters, neither side in the test
# split); tests/test_gemma.py checks they are still training pairs absent from the test split.
FEW_SHOT: dict[str, FewShot] = {
    "zh-en": FewShot(
        "zh",
        "en",
        (
            ("帮助你是我的责任。", "It's my duty to help you."),
            ("超过二十个男孩去了那里。", "More than twenty boys went there."),
            ("下次我不做了。", "I will not do it again."),
        ),
        corpus="tatoeba-en-zh",
    ),
    "en-fr": FewShot(
        "en",
        "fr",
        (
            ("Some children are swimming in the sea.", "Quelques enfants nagent dans la mer."),
            ("I wasn't expecting that to happen at all.", "Je ne m'attendais pas du tout à ce que cela arrive."),
            ("He did it for the money.", "Il a fait cela pour l'argent."),
        ),
        corpus="tatoeba-en-fr",
    ),
    "fr-en": FewShot(  # the en-fr pairs the other way round: a reverse-direction model for word alignment
        "fr",
        "en",
        (
            ("Quelques enfants nagent dans la mer.", "Some children are swimming in the sea."),
            ("Je ne m'attendais pas du tout à ce que cela arrive.", "I wasn't expecting that to happen at all."),
            ("Il a fait cela pour l'argent.", "He did it for the money."),
        ),
        corpus="tatoeba-en-fr",
    ),
    "en-de": FewShot(
        "en",
        "de",
        (
            (
                "Two children in the street washing their faces.",
                "Zwei Kinder auf der Straße waschen sich ihre Gesichter.",
            ),
            (
                "Two young boys are playing with two toddler girls.",
                "Zwei kleine Jungen spielen mit zwei kleinen Mädchen.",
            ),
            (
                "A man in a wetsuit is surfing up and over a wave.",
                "Ein Mann in einem Neoprenanzug surft auf einer Welle hoch und runter.",
            ),
        ),
        corpus="multi30k-en-de",
    ),
}
