"""Screenshots of every page for the README: ``python -m tools.screenshots`` -> docs/*.png."""

from __future__ import annotations

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


def main(out: Path = REPO / "docs") -> None:
    out.mkdir(exist_ok=True)
    with running_app() as url, browser_page(height=1100) as page:
        page.goto(url)
        page.get_by_role("heading", name="Lantern").wait_for()
        for link, name, ready in SHOTS:
            open_page(page, link)
            page.locator(ready).first.wait_for()
            page.locator("[data-testid='stStatusWidget']").wait_for(state="hidden")  # the run has finished
            page.wait_for_timeout(1500)  # let plotly finish drawing
            page.locator("[data-testid='stStatusWidget']").wait_for(state="hidden")  # and any run that followed
            page.screenshot(path=str(out / f"{name}.png"))
            print(out / f"{name}.png")


if __name__ == "__main__":
    main()
