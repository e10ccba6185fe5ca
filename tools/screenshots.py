"""Screenshots of every page for the README: ``python -m tools.screenshots`` -> docs/*.png."""

from __future__ import annotations

from pathlib import Path

from tools.browser import REPO, browser_page, open_page, running_app

# (sidebar link, file name, what must be on screen before the shot)
SHOTS = [
    ("Home", "home", "text=Models"),
    ("Translate", "translate", "[data-testid='stDataFrame']"),
    ("Attention", "attention", ".js-plotly-plot"),
    ("Training", "training", ".js-plotly-plot"),
]


def main(out: Path = REPO / "docs") -> None:
    out.mkdir(exist_ok=True)
    with running_app() as url, browser_page(height=1100) as page:
        page.goto(url)
        page.get_by_role("heading", name="Lantern").wait_for()
        for link, name, ready in SHOTS:
            open_page(page, link)
            page.locator(ready).first.wait_for()
            page.wait_for_timeout(1500)  # let plotly finish drawing
            page.screenshot(path=str(out / f"{name}.png"))
            print(out / f"{name}.png")


if __name__ == "__main__":
    main()
