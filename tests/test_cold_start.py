"""The app's first page renders without torch, transformers or Captum (about 6 s of imports on 2 cores): the
modules app.py and Home import, and the model list Home shows, stay free of them (bench/all.py measures the
cold start itself)."""

from __future__ import annotations

import subprocess
import sys

from tools.browser import REPO

HEAVY = ("torch", "transformers", "captum", "safetensors", "sacrebleu")


def test_the_app_chrome_and_home_import_no_model_code():
    code = (
        "import sys\n"
        "import streamlit, ui.widgets, ui.state, ui.cache, ui.fields\n"
        "from models.registry import list_models\n"
        "specs = list_models()\n"
        "assert specs, 'no models listed'\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "", f"imported on the first page: {out.stdout.strip()}"


def test_the_attribution_choices_still_come_from_the_explanation_layer():
    from explain.methods import METHODS
    from explain.objective import BASELINES, TARGETS
    from ui.fields import FIELDS

    assert set(FIELDS["attr.compare"].choices()) == {"", *METHODS}
    assert set(FIELDS["attr.target"].choices()) == set(TARGETS)
    assert set(FIELDS["attr.baseline"].choices()) == set(BASELINES)


def test_after_the_warm_up_a_full_collection_skips_the_model_code():
    """Streamlit collected all garbage after every page run (0.2 s with the model code loaded, half the server's CPU
    under load): the warm-up freezes the long-lived objects, and the app's config turns the per-run collection off."""
    code = (
        "import gc, tomllib\n"
        "from ui.cache import _WarmUp\n"
        "_WarmUp().join()\n"
        "assert 'torch' in __import__('sys').modules\n"
        "print(gc.get_freeze_count(), len(gc.get_objects()))\n"
        "print(tomllib.load(open('.streamlit/config.toml', 'rb'))['runner']['postScriptGC'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    counts, post_script_gc = out.stdout.split("\n")[:2]
    frozen, live = counts.split()
    assert int(frozen) > 10 * int(live), (frozen, live)  # a full collection walks only what came after
    assert post_script_gc == "False"
