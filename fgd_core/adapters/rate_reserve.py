"""``github.rate_limit_buffer``: keep that many requests of a git host's rate limit in reserve.

A host that meters requests says how many are left in ``X-RateLimit-Remaining`` (GitHub
does on its HTTP answers). Once an answer from a host leaves ``buffer`` requests or fewer,
no further request goes to that host (every remote of this process, whichever fabric)
until the limit resets (``X-RateLimit-Reset`` / ``Retry-After``; a minute when the host
gives neither): each is refused at once with FGD_4003 and ``retry_after_seconds``, which
the sync retry policy waits out or gives up on. A host that sends no such header (a plain
``git http-backend``) is never held back. The reserve is what other tools sharing the token
(CI, people) still have.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping

from fgd_core.errors import GitHubRateLimitError

DEFAULT_HOLD_SECONDS = 60
Origin = tuple[str, str, int | None]

_held: dict[Origin, tuple[float, int]] = {}  # origin → (until, requests left when held)
_lock = threading.Lock()


def note_answer(origin: Origin, headers: Mapping[str, str], buffer: int,
                retry_after: int | None, now: float | None = None) -> None:
    """Record an answer's ``X-RateLimit-Remaining``: hold the host when it is ≤ ``buffer``."""
    remaining = str(headers.get("X-RateLimit-Remaining", "")).strip()
    if not remaining.isdigit() or int(remaining) > buffer:
        return
    now = time.time() if now is None else now
    wait = retry_after if retry_after is not None else DEFAULT_HOLD_SECONDS
    with _lock:
        _held[origin] = (now + wait, int(remaining))


def check_reserve(origin: Origin, url: str, buffer: int, now: float | None = None) -> None:
    """FGD_4003 while ``origin`` is held back to keep ``buffer`` requests in reserve."""
    now = time.time() if now is None else now
    with _lock:
        until, left = _held.get(origin, (0.0, 0))
        if until and now >= until:
            del _held[origin]
    if now >= until:
        return
    raise GitHubRateLimitError(
        f"{url}: {left} requests left of the host's rate limit; keeping "
        f"{buffer} in reserve (fgd.github.rate_limit_buffer) until it resets",
        details={"url": url, "retry_after_seconds": max(1, math.ceil(until - now)),
                 "rate_limit_remaining": left, "rate_limit_buffer": buffer},
    )


def release_all() -> None:
    """Forget every hold (tests; a process that changed tokens)."""
    with _lock:
        _held.clear()
