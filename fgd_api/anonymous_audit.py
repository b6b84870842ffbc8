"""Refused anonymous requests are audited, but not one entry each: anyone can send them, so
one entry per client address and reason per second at most, carrying how many were left out
since the previous one. Anonymous traffic cannot grow the event store without bound, and the
audit log still tells who knocked, how often and why they were turned away.

A request left out is counted in ``fgd_audit_suppressed_total`` at once; its number is
recorded in the ``suppressed`` detail of the next entry for the same address and reason.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from prometheus_client import Counter

WINDOW_SECONDS = 1.0
MAX_KEYS = 4096  # addresses remembered; beyond, windows that ended are forgotten

audit_suppressed_total = Counter(
    "fgd_audit_suppressed_total",
    "Refused anonymous requests not audited one by one (one entry per address, reason and s)",
    ["reason"],
)


class AnonymousAuditThrottle:
    """``admit(address, reason)``: None to leave this refusal out of the audit log, else the
    number left out since the last entry for that address and reason (to record with it)."""

    def __init__(self, window: float = WINDOW_SECONDS, max_keys: int = MAX_KEYS) -> None:
        self.window, self.max_keys = window, max_keys
        self._last: dict[tuple[str, str], tuple[float, int]] = {}  # → (recorded at, left out)
        self._lock = threading.Lock()  # audits run in worker threads

    def admit(self, address: str | None, reason: str) -> int | None:
        key = (address or "", reason)
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last[0] < self.window:
                self._last[key] = (last[0], last[1] + 1)
                audit_suppressed_total.labels(reason).inc()
                return None
            if last is None and len(self._last) >= self.max_keys:
                self._forget(now)
            self._last[key] = (now, 0)
            return last[1] if last is not None else 0

    def _forget(self, now: float) -> None:
        # Windows that ended lose their count of left-out refusals (the counter has them);
        # if every window is still open (a flood from many addresses), all are forgotten.
        self._last = {k: v for k, v in self._last.items() if now - v[0] < self.window}
        if len(self._last) >= self.max_keys:
            self._last.clear()


def throttle_of(container: Any) -> AnonymousAuditThrottle:
    """The throttle of this API process (one per container)."""
    throttle = container.extras.get("anonymous_audit")
    if throttle is None:
        throttle = container.extras.setdefault("anonymous_audit", AnonymousAuditThrottle())
    return throttle  # type: ignore[no-any-return]
