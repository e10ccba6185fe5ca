"""Beam search shown as a tree: the n best hypotheses, their token probabilities, and where they split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from explain.generation import force_translation
from explain.types import Translation
from models.adapter import Decoding, InputError, LanternModel
from models.threads import under_policy


@dataclass(frozen=True, eq=False)
class BeamSearch:
    hypotheses: tuple[Translation, ...]  # best first; each scored token by token under teacher forcing
    beam_scores: tuple[float, ...]  # the beam's own (length-normalised) scores
    num_beams: int


@dataclass(frozen=True)
class Node:
    id: int
    parent: int  # -1 for the root's children
    step: int
    token: str
    prob: float  # p(token | source, path to it)
    ranks: tuple[int, ...]  # hypotheses (0 = best) passing through this node


@under_policy
def beam_search(
    lm: LanternModel, text: str, num_beams: int = 5, n_best: int = 5, max_new_tokens: int = 64
) -> BeamSearch:
    """Run beam search and describe each of the ``n_best`` hypotheses."""
    if n_best > num_beams:
        raise InputError(f"n-best ({n_best}) cannot exceed the beam size ({num_beams})")
    decoding = Decoding(num_beams=num_beams, max_new_tokens=max_new_tokens)
    src = lm.encode_source(text)
    results = lm.generate_nbest(src.ids, decoding, n_best)
    hyps = tuple(force_translation(lm, text, ids=tuple(ids)) for ids, _ in results)
    return BeamSearch(hyps, tuple(score for _, score in results), num_beams)


def prefix_tree(beam: BeamSearch) -> list[Node]:
    """Merge the hypotheses into a tree: shared prefixes are shared nodes."""
    nodes: list[Node] = []
    index: dict[tuple[int, ...], int] = {}
    for rank, hyp in enumerate(beam.hypotheses):
        parent = -1
        for step, token in enumerate(hyp.tgt_tokens):
            key = tuple(hyp.tgt_ids[: step + 1])
            if key in index:
                node = nodes[index[key]]
                nodes[index[key]] = Node(node.id, node.parent, step, token, node.prob, (*node.ranks, rank))
            else:
                index[key] = len(nodes)
                nodes.append(Node(len(nodes), parent, step, token, float(np.exp(hyp.logprobs[step])), (rank,)))
            parent = index[key]
    return nodes
