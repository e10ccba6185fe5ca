"""Screenshots of every page for the README: ``python -m tools.screenshots`` -> docs/*.png."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

from tools.browser import REPO, browser_page, open_page, running_app

# (sidebar link, file name, what must be on screen before the shot)
SHOTS = [
    ("Home", "home", "text=Models"),
    ("Translate", "translate", "text=How often the model saw each source token"),
    ("Attention", "attention", "text=Strongest link of each row"),
    ("Attributions", "attributions", "text=What produced"),
    ("What if?", "whatif", "text=Pick an output step"),
    ("Evaluate", "evaluate", "text=Attention-based confidence"),
    ("Training", "training", "text=Model card"),
    ("Train a model", "train", "text=Jobs"),
]
# (a shared link's path and state, file name, what must be on screen before the shot)
LINKS = [
    ({"model": "lstm-zh-en", "src": "我爱北京天安门", "inside.view": "states"}, "inside-lstm", "text=Units"),
    ({"model": "transformer-zh-en", "src": "我爱北京天安门", "inside.view": "lens"}, "inside-lens", "text=tuned lens"),
    (
        {"model": "lstm-zh-en", "src": "我爱北京天安门", "inside.view": "embeddings", "inside.pick": "京"},
        "inside-embeddings",
        "text=PCA of",
    ),
    (
        {"model": "lstm-zh-en", "src": "我爱北京天安门", "data.step": 5, "data.query": "京"},
        "training-evidence",
        "text=…whose translation has",
    ),
    ({"model": "lstm-zh-en", "src": "我爱北京天安门", "data.step": 5}, "training-tracin", "text=Proponents"),
    (
        {"model": "transformer-en-fr", "explore.dataset": "test:transformer-en-fr", "explore.sort": "chrF"},
        "explorer",
        "text=Where the model does well and badly",
    ),
    (
        {
            "model": "transformer-en-fr",
            "src": "The chief gave the housekeeper a tip because she was satisfied.",
            "explore.dataset": "winomt",
            "explore.limit": 300,
        },
        "explorer-winomt",
        "text=Contrastive input×gradient",
    ),
    (
        {"model": "gemma-3-270m-zh-en", "src": "我爱北京天安门"},
        "gemma-attributions",
        "text=rest of the few-shot prompt",
    ),
]
LINK_PAGES = {"inside-lstm": "inside", "inside-lens": "inside", "inside-embeddings": "inside",
              "gemma-attributions": "attributions", "training-evidence": "provenance",
              "training-tracin": "provenance", "explorer": "explorer", "explorer-winomt": "explorer"}  # fmt: skip
TABS = {"training-tracin": "Influence (TracIn)"}  # a tab to open before the shot
TOP = {"explorer-winomt": "text=Gender bias (WinoMT)"}  # scrolled to the top of the shot


def main(out: Path = REPO / "docs", only: set[str] | None = None) -> None:
    out.mkdir(exist_ok=True)
    with running_app() as url, browser_page(height=1100) as page:
        page.goto(url)
        page.get_by_role("heading", name="Lantern").wait_for()
        for link, name, ready in SHOTS:
            if only and name not in only:
                continue
            open_page(page, link)
            page.locator(ready).first.wait_for()
            page.locator("[data-testid='stStatusWidget']").wait_for(state="hidden")  # the run has finished
            page.wait_for_timeout(1500)  # let plotly finish drawing
            page.locator("[data-testid='stStatusWidget']").wait_for(state="hidden")  # and any run that followed
            page.screenshot(path=str(out / f"{name}.png"))
            print(out / f"{name}.png")
        for state, name, ready in LINKS:
            if only and name not in only:
                continue
            page.goto(f"{url}/{LINK_PAGES[name]}?{urllib.parse.urlencode(state)}")
            if name in TABS:
                page.get_by_role("tab", name=TABS[name]).click()
            page.locator(ready).first.wait_for(timeout=300_000)  # Gemma: converted on first use
            if name in TOP:
                page.locator(TOP[name]).first.evaluate("e => e.scrollIntoView({block: 'start'})")
            page.locator("[data-testid='stStatusWidget']").wait_for(state="hidden")
            page.wait_for_timeout(1500)
            page.locator("[data-testid='stStatusWidget']").wait_for(state="hidden")
            page.screenshot(path=str(out / f"{name}.png"))
            print(out / f"{name}.png")


if __name__ == "__main__":
    import sys

    main(only=set(sys.argv[1:]) or None)  # e.g. python -m tools.screenshots attention training-tracin
