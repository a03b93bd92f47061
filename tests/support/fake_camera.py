"""Solid-colour y4m clips for Chromium's `--use-file-for-fake-video-capture`: give each browser its
own colour and a test can tell whose picture a page shows (DESIGN.md, video)."""

from __future__ import annotations

from pathlib import Path

RGB = tuple[int, int, int]

# Saturated but inside the video range, so encoding and the YUV round trip keep them apart.
BLUE: RGB = (40, 60, 220)
RED: RGB = (220, 40, 40)
GREEN: RGB = (40, 200, 60)


def rgb_to_yuv(rgb: RGB) -> RGB:
    """BT.601 limited range (Y 16-235, Cb/Cr 16-240), what Chromium assumes for a y4m file."""
    r, g, b = (c / 255 for c in rgb)
    y = 16 + 65.481 * r + 128.553 * g + 24.966 * b
    cb = 128 - 37.797 * r - 74.203 * g + 112.0 * b
    cr = 128 + 112.0 * r - 93.786 * g - 18.214 * b
    return _byte(y), _byte(cb), _byte(cr)


def _byte(value: float) -> int:
    return max(0, min(255, round(value)))


def write_y4m(path: Path, rgb: RGB, *, width: int = 320, height: int = 240, fps: int = 15,
              seconds: float = 2.0) -> Path:
    """A clip of one colour, 4:2:0 (Chromium loops it); returns `path`."""
    if width % 2 or height % 2:
        raise ValueError(f"4:2:0 needs an even size, got {width}x{height}")
    y, cb, cr = rgb_to_yuv(rgb)
    chroma = (width // 2) * (height // 2)
    frame = b"FRAME\n" + bytes([y]) * (width * height) + bytes([cb]) * chroma + bytes([cr]) * chroma
    header = f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode()
    path.write_bytes(header + frame * max(1, round(fps * seconds)))
    return path
