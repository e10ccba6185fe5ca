"""Explanations of a model's output, as plain numpy/pandas data.

    from models import load_model
    from explain import translate, extract_attention, attribute, lstm_states
    lm = load_model("lstm-zh-en")
    attribute(lm, "我爱北京天安门", "integrated_gradients")   # shows itself in a notebook; .to_pandas() for a table
    lstm_states(lm, translate(lm, "我爱北京天安门"))          # the Inside page: states and gates, logit lens, ...

Names are imported on first use, so ``import explain.types`` stays free of torch.
"""

from __future__ import annotations

from common.lazy import lazy_exports

_EXPORTS = {
    "translate": "explain.generation",
    "force_translation": "explain.generation",
    "extract_attention": "explain.attention",
    "attribute": "explain.attribution",
    "list_methods": "explain.methods",
    "merge_subwords": "explain.aggregate",
    "measure": "explain.faithfulness",
    "describe_model": "explain.anatomy",
    "logit_lens": "explain.inside",
    "layer_norms": "explain.inside",
    "neuron_view": "explain.inside",
    "top_neurons": "explain.inside",
    "lstm_states": "explain.recurrent",
    "pattern_search": "explain.recurrent",
    "embedding_projection": "explain.embeddings",
    "nearest_neighbours": "explain.embeddings",
    "Translation": "explain.types",
    "AttentionMaps": "explain.types",
    "Attribution": "explain.types",
}
__all__ = list(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
