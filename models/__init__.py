"""Models Lantern looks inside: its own LSTM and Transformer, and pretrained Hugging Face models.

    from models import load_model, list_models
    lm = load_model("lstm-zh-en")     # a shipped name, a packaged model, a folder or a hub id

Names are imported on first use, so ``import models.folder`` stays free of torch.
"""

from __future__ import annotations

from common.lazy import lazy_exports

_EXPORTS = {
    "load_model": "models.loading",
    "list_models": "models.registry",
    "LanternModel": "models.adapter",
    "Decoding": "models.decoding",
    "InputError": "models.decoding",
}
__all__ = list(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
