"""What the browser tests read of the customer's page (hotline/web/templates/customer.html): its
stage as the customer reads it, texts that do not come from the catalogue, and a screenshot that
shows the page laid out inside the window."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from hotline.web import i18n

from support.png import decode

if TYPE_CHECKING:
    from playwright.sync_api import Page

RGB = tuple[int, int, int]
DEFAULT_ACCENT = (0x1A, 0x5F, 0xB4)  # hotline.css --accent: a hotline without a colour of its own


def stage(page: Page) -> tuple[str, str]:
    """The stage line and the line under it (the estimated wait), as shown."""
    detail = page.inner_text("#stage-detail") if page.is_visible("#stage-detail") else ""
    return page.inner_text("#stage"), detail


def unexplained_texts(page: Page, language: str, *own: str) -> list[str]:
    """The lines the page shows that are neither a text of its catalogue (fields filled with
    anything) nor one of `own` (provisioning's), the devices' names or the score digits."""
    patterns = [re.compile(re.sub(r"\\\{\w+\\\}", ".+", re.escape(text)), re.S)
                for text in i18n.catalogue(language).values()]
    devices = page.evaluate("Array.from(document.querySelectorAll('option'), (o) => o.text)")
    allowed = {*own, *devices, "1", "2", "3", "4", "5"}
    lines = [line.strip() for line in page.evaluate("document.body.innerText").splitlines()]
    return [line for line in lines if line and line not in allowed
            and not any(p.fullmatch(line) for p in patterns)]


def laid_out(page: Page, path: Path, selectors: tuple[str, ...], accent: RGB = DEFAULT_ACCENT) -> None:
    """No sideways scrolling, each element inside the window, and a screenshot (kept at `path`)
    as wide as the window, with the hotline's colour on it."""
    page.screenshot(path=str(path), scale="css")  # first: a failure below leaves the picture
    width, height = page.evaluate("[window.innerWidth, window.innerHeight]")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    for selector in selectors:
        box = page.locator(selector).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, (selector, box)
        assert box["y"] >= 0 and box["y"] + box["height"] <= height, (selector, box)
    shot_width, _, pixels = decode(path.read_bytes())
    assert shot_width == width
    coloured = sum(1 for p in pixels if all(abs(a - b) <= 8 for a, b in zip(p[:3], accent, strict=True)))
    assert coloured > 1000, f"{coloured} pixels of the hotline's colour in {path}"
