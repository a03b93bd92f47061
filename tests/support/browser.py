"""Headless Chromium for the video tests: Debian's /usr/bin/chromium driven by Playwright's sync API
(never `playwright install`), one browser process per party, each with a fake camera of its own
colour, and helpers that read what a page shows (DESIGN.md, video)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import web

from hotline.web.app import start_web

from support.fake_camera import RGB

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright

CHROMIUM = Path("/usr/bin/chromium")
BUNDLE = Path(__file__).resolve().parents[2] / "hotline" / "web" / "static" / "jssip.min.js"
BASE_ARGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-fake-device-for-media-stream", "--autoplay-policy=no-user-gesture-required",
)
# Grants camera and microphone without a prompt; without it the prompt is refused.
FAKE_UI = "--use-fake-ui-for-media-stream"


def require_browser() -> None:
    """Fails, never skips: CI and `make setup` install both, so a missing one is a broken set-up."""
    problems = []
    if not CHROMIUM.is_file():
        problems.append(f"{CHROMIUM} is missing (Debian package chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problems.append("the Python package playwright is missing (the test extra)")
    if not BUNDLE.is_file():
        problems.append(f"the page's SIP client {BUNDLE.name} is missing (make web)")
    if problems:
        pytest.fail("browser tests cannot run: " + "; ".join(problems) + ". Run `make setup`.", pytrace=False)


@contextmanager
def playwright_session() -> Iterator[Playwright]:
    """One Playwright driver for a test; launch a browser per party from it."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


def launch(pw: Playwright, camera: Path | None, *, allow_media: bool = True,
           extra_args: tuple[str, ...] = ()) -> Browser:
    """A Chromium process of its own; `camera` is a y4m clip (fake_camera.write_y4m), or None for
    Chromium's own test pattern; allow_media=False leaves out the fake UI, so a page asking for
    the camera is refused."""
    args = [*BASE_ARGS, *extra_args]
    if allow_media:
        args.append(FAKE_UI)
    else:
        args.append("--deny-permission-prompts")
    if camera is not None:
        args.append(f"--use-file-for-fake-video-capture={camera}")
    return pw.chromium.launch(executable_path=str(CHROMIUM), args=args)


def open_page(browser: Browser, url: str, *, allow_media: bool = True,
              permissions: list[str] | None = None, locale: str | None = None) -> Page:
    """A page in a fresh context; with allow_media=False the context grants no permission, or only
    `permissions` (["microphone"]: a customer who refuses the camera); `locale` is the browser's
    language (its Accept-Language), Chromium's own by default."""
    if permissions is None:
        permissions = ["camera", "microphone"] if allow_media else []
    context = browser.new_context(permissions=permissions, **({"locale": locale} if locale else {}))
    page = context.new_page()
    page.goto(url)
    return page


@contextmanager
def served(app: web.Application, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """`app` listening on `port` (0: a free one), in a thread of its own (Playwright's sync API
    owns the test's thread); yields its base URL."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="served-app", daemon=True)
    thread.start()
    runner = asyncio.run_coroutine_threadsafe(start_web(app, host, port), loop).result(10)
    try:
        port = runner.addresses[0][1]
        yield f"http://{host}:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


# --- what a page shows ---------------------------------------------------------------------------

# The remote <video> that shows the other party: of those with a picture, the one whose last frame
# is the newest (SFU streams come and go), then the largest. Defined on the page once.
_PICK_REMOTE = """
window.__hotlinePickRemote = () => {
  const now = performance.now();
  const live = window.hotlinePhone.remoteVideos().filter((v) => v.videoWidth > 0 && v.readyState >= 2);
  const recent = (v) => (v.lastFrameAt !== undefined && now - v.lastFrameAt < 1000 ? 1 : 0);
  live.sort((a, b) => recent(b) - recent(a) || (b.lastFrameAt || 0) - (a.lastFrameAt || 0)
    || b.videoWidth * b.videoHeight - a.videoWidth * a.videoHeight);
  return live[0] || null;
};
"""

# The mean colour of a video's current frame, drawn small into a canvas.
_MEAN_COLOUR = """
(video) => {
  if (!video || !video.videoWidth) return null;
  const canvas = document.createElement("canvas");
  canvas.width = 64;
  canvas.height = 48;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  const sum = [0, 0, 0];
  for (let i = 0; i < data.length; i += 4) {
    sum[0] += data[i]; sum[1] += data[i + 1]; sum[2] += data[i + 2];
  }
  const n = data.length / 4;
  return sum.map((s) => Math.round(s / n));
}
"""

_FRAME_COUNTS = """
async () => {
  const video = window.__hotlinePickRemote();
  const played = video ? video.getVideoPlaybackQuality().totalVideoFrames : 0;
  let decoded = 0;
  const pc = window.hotlinePhone.pc;
  if (pc) {
    (await pc.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") decoded += s.framesDecoded || 0;
    });
  }
  return { played, decoded };
}
"""


def _define_pick_remote(page: Page) -> None:
    page.evaluate(f"() => {{ {_PICK_REMOTE} }}")


def video_colour(page: Page, selector: str) -> RGB | None:
    """The mean colour of the <video> at `selector` (e.g. "#local"); None without a picture."""
    return _rgb(page.eval_on_selector(selector, _MEAN_COLOUR))


def remote_colour(page: Page) -> RGB | None:
    """The mean colour of the other party's video (see _PICK_REMOTE); None without a picture."""
    _define_pick_remote(page)
    return _rgb(page.evaluate(f"() => ({_MEAN_COLOUR})(window.__hotlinePickRemote())"))


def frame_counts(page: Page) -> dict[str, int]:
    """`played`: the remote video's totalVideoFrames; `decoded`: inbound-rtp video framesDecoded
    over the call's RTCPeerConnection (window.hotlinePhone.pc)."""
    _define_pick_remote(page)
    counts: dict[str, int] = page.evaluate(_FRAME_COUNTS)
    return counts


def frames_advancing(page: Page, seconds: float = 1.0) -> bool:
    """Both counts of frame_counts grow over `seconds`: the picture is live, not frozen."""
    before = frame_counts(page)
    page.wait_for_timeout(seconds * 1000)
    after = frame_counts(page)
    return after["played"] > before["played"] and after["decoded"] > before["decoded"]


def close_to(rgb: RGB | None, expected: RGB, tolerance: int = 40) -> bool:
    """Every channel within `tolerance` of `expected` (VP8 and the YUV round trip shift colours)."""
    return rgb is not None and all(abs(a - b) <= tolerance for a, b in zip(rgb, expected, strict=True))


def _rgb(value: Any) -> RGB | None:
    return None if value is None else (int(value[0]), int(value[1]), int(value[2]))


def remote_colours(page: Page) -> list[RGB]:
    """The mean colour of every remote <video> with a picture: in a conference, one per party."""
    values = page.evaluate(
        f"() => window.hotlinePhone.remoteVideos().filter((v) => v.videoWidth > 0 && v.readyState >= 2)"
        f".map((v) => ({_MEAN_COLOUR})(v))")
    return [rgb for rgb in (_rgb(v) for v in values) if rgb is not None]


def shows_all(page: Page, expected: list[RGB], tolerance: int = 40) -> bool:
    """Every colour of `expected` is on one of the page's remote videos."""
    shown = remote_colours(page)
    return all(any(close_to(rgb, colour, tolerance) for rgb in shown) for colour in expected)
