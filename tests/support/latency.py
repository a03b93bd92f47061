"""The daemon's responsiveness as a user of its web pages sees it: one GET every period, timed."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from types import TracebackType


class PageTimer:
    """While open, GETs `url` every `period_s` from a thread of its own and keeps each answer's
    time (seconds) and status; a request that fails or times out counts as status 0 and as
    `timeout_s` (the worst the test can see)."""

    def __init__(self, url: str, period_s: float = 0.05, timeout_s: float = 5.0) -> None:
        self.url, self.period_s, self.timeout_s = url, period_s, timeout_s
        self.times: list[float] = []
        self.statuses: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="page-timer", daemon=True)

    def __enter__(self) -> PageTimer:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(self.timeout_s + 1)

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            self._one()
            next_at += self.period_s
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _one(self) -> None:
        started = time.monotonic()
        try:
            with urllib.request.urlopen(self.url, timeout=self.timeout_s) as resp:
                resp.read()
                status = resp.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            status = 0
        took = time.monotonic() - started if status else self.timeout_s
        self.times.append(took)
        self.statuses.append(status)

    def percentile(self, p: float) -> float:
        ordered = sorted(self.times)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    def summary(self) -> str:
        return (f"{len(self.times)} requests, p50 {self.percentile(50) * 1000:.1f} ms, p99 "
                f"{self.percentile(99) * 1000:.1f} ms, max {max(self.times) * 1000:.1f} ms, "
                f"statuses {sorted(set(self.statuses))}")
