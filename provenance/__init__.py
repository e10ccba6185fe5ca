"""Where did a model learn that? Training-data evidence for the outputs of Lantern's own models.

    from models import load_model
    from provenance import find_pairs, output_evidence, influence
    lm = load_model("lstm-zh-en")
    find_pairs(lm, "京")                      # the training pairs with 京, and what their translations say
    influence(lm, "我爱北京天安门", "▁Tokyo")  # TracIn proponents and opponents of one output token

Exact evidence (``provenance.evidence``) reads the model's training split, rebuilt from the data root with the
run's own config (``training_config.json``); influence (``provenance.tracin``) needs the TracIn snapshots a
training run keeps with ``train.tracin_snapshots``. Models Lantern did not train have neither, and every function
says so (``NoTrainingData``) instead of guessing.
"""

from __future__ import annotations

from common.lazy import lazy_exports

_EXPORTS = {
    "NoTrainingData": "provenance.data",
    "training_set": "provenance.data",
    "find_pairs": "provenance.evidence",
    "output_evidence": "provenance.evidence",
    "Evidence": "provenance.evidence",
    "influence": "provenance.tracin",
    "Influence": "provenance.tracin",
    "self_influence": "provenance.tracin",
}
__all__ = list(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
