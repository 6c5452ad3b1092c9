"""Periodic progress lines with rate and ETA for loops whose length is known."""

from __future__ import annotations

import logging
import time


class Progress:
    """Log `what: done/total (pct) rate unit/s, eta H:MM:SS` at most every `interval` seconds."""

    def __init__(
        self,
        what: str,
        total: int,
        unit: str = "img",
        interval: float = 10.0,
        logger: logging.Logger | None = None,
    ) -> None:
        self.what, self.total, self.unit, self.interval = what, total, unit, interval
        self.logger = logger or logging.getLogger("tokes_bench")
        self.done = 0
        self.start = self.last = time.perf_counter()

    def update(self, n: int, note: str = "") -> None:
        """Count `n` more units; log (with `note`) when `interval` has passed or the loop is complete."""
        self.done += n
        now = time.perf_counter()
        if now - self.last >= self.interval or self.done >= self.total:
            self.last = now
            self.logger.info(self.line(now) + (f", {note}" if note else ""))

    def line(self, now: float | None = None) -> str:
        """The progress text (without the note)."""
        elapsed = max((now or time.perf_counter()) - self.start, 1e-9)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        eta_s = time.strftime("%H:%M:%S", time.gmtime(eta)) if eta != float("inf") else "?"
        pct = 100.0 * self.done / max(self.total, 1)
        return f"{self.what}: {self.done}/{self.total} ({pct:.0f}%) {rate:.1f} {self.unit}/s, eta {eta_s}"
