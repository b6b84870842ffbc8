"""The sync retry policy for transient git remote failures (``sync.retry_policy``).

Only two failures are worth another attempt: the remote could not be reached (FGD_4001)
and the remote rate-limited us (FGD_4003). Authentication (FGD_4002), a missing repository
(FGD_4004) and everything else fail at once: trying again cannot change the answer.

The n-th retry waits ``initial_delay × backoff_factor^(n-1)``, capped at ``max_delay``. A
rate-limited answer's ``retry_after_seconds`` (from ``Retry-After`` / ``X-RateLimit-Reset``)
is honoured — the wait is at least that long — when it fits within ``max_delay`` and before
the sync's deadline; a remote that asks for more than that is given up on with its own
error (FGD_4003), never waited out past the sync's timeout. ``max_attempts`` counts the
first attempt: ``fn`` runs at most that many times.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from fgd_core.adapters.git_repo import RemoteMovedError
from fgd_core.application.ports import GitRemotePort
from fgd_core.config import RetryPolicy
from fgd_core.errors import FGDError, FGDErrorCodes

log = logging.getLogger("fgd_core.retry")
T = TypeVar("T")
RETRYABLE = frozenset({FGDErrorCodes.GITHUB_CONNECTION_FAILED, FGDErrorCodes.GITHUB_RATE_LIMITED})
OnRetry = Callable[[FGDError, int, float], Any]


def is_transient(error: BaseException) -> bool:
    """Is ``error`` a failure another attempt may get past (FGD_4001, FGD_4003)?"""
    return isinstance(error, FGDError) and error.code in RETRYABLE


def backoff_delay(policy: RetryPolicy, retry: int) -> float:
    """Seconds before retry number ``retry`` (1 = the first retry), capped at max_delay."""
    try:
        delay = policy.initial_delay * policy.backoff_factor ** max(0, retry - 1)
    except OverflowError:
        delay = policy.max_delay
    return float(min(delay, policy.max_delay))


def retry_delay(
    error: FGDError,
    policy: RetryPolicy,
    retry: int,
    *,
    deadline: float | None = None,
    now: float | None = None,
) -> float | None:
    """Seconds to wait before retry number ``retry`` after ``error``; None: give up."""
    if not is_transient(error):
        return None
    delay = backoff_delay(policy, retry)
    if error.code == FGDErrorCodes.GITHUB_RATE_LIMITED:
        asked = error.details.get("retry_after_seconds")
        if isinstance(asked, int | float) and not isinstance(asked, bool):
            if asked > policy.max_delay:
                return None  # the remote wants a longer pause than the policy allows
            delay = max(delay, float(asked))
    if deadline is not None:
        now = time.monotonic() if now is None else now
        if now + delay >= deadline:
            return None  # the sync would time out while waiting
    return delay


def call_with_retry(
    fn: Callable[[], T],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], Any] = time.sleep,
    on_retry: OnRetry | None = None,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """``fn()``, tried again after transient FGD errors as ``policy`` says.

    ``on_retry(error, attempt, delay)`` runs before each wait (``attempt`` is the attempt
    that failed, from 1); it may raise to stop retrying (a cancelled sync, say).
    ``deadline`` is a ``clock()`` value (``time.monotonic`` by default) no wait may reach.
    The error that is finally raised is the last attempt's, its ``details["attempts"]``
    saying how many were made when there was more than one.
    """
    attempt = 1
    while True:
        try:
            return fn()
        except FGDError as error:
            if not is_transient(error):
                raise
            delay = None
            if attempt < policy.max_attempts:
                delay = retry_delay(error, policy, attempt, deadline=deadline, now=clock())
            if delay is None:
                if attempt > 1:
                    error.details.setdefault("attempts", attempt)
                raise
            log.warning(
                "%s (attempt %d of %d); retrying in %.2fs",
                error,
                attempt,
                policy.max_attempts,
                delay,
            )
            if on_retry is not None:
                on_retry(error, attempt, delay)
            if delay > 0:
                sleep(delay)
            attempt += 1


def retry_details(error: FGDError, attempt: int, delay: float) -> dict[str, Any]:
    """What a ``sync.error`` for a retried failure carries: the error's details, the
    attempt that failed and the wait before the next one."""
    return {
        **error.details,
        "attempt": attempt,
        "retry_in_seconds": round(delay, 3),
        "retrying": True,
    }


__all__ = [
    "RETRYABLE",
    "backoff_delay",
    "call_with_retry",
    "is_transient",
    "retry_delay",
    "retry_details",
]


def idempotent_push(
    remote: GitRemotePort, sha: str, branch: str, base_head: str | None
) -> Callable[[], None]:
    """A push to hand to ``call_with_retry``: a retried push whose earlier attempt did land
    (its answer was lost) finds the branch at ``sha`` — that is success, not a moved remote."""
    attempts = 0

    def push() -> None:
        nonlocal attempts
        attempts += 1
        try:
            remote.push(sha, branch, base_head)
        except RemoteMovedError as moved:
            if attempts > 1 and moved.details.get("actual_sha") == sha:
                return
            raise

    return push
