"""Smart-HTTP transport for the git adapter: authentication, timeouts and error mapping.

dulwich's HTTP client raises bare protocol errors and hides the response headers, so
this subclass does the HTTP itself (urllib3, which dulwich already uses) and turns every
failure into the spec's GitHub errors (FGD_4001-4004). The token is sent like GitHub
expects it for git over HTTPS: basic auth ``x-access-token:<token>``, only to the origin
it was configured for. It never appears in a message, a ``details`` dict, a repr or a log.
"""

from __future__ import annotations

import base64
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import urllib3
from dulwich.client import (
    AbstractHttpGitClient,
    default_urllib3_manager,
    default_user_agent_string,
)

from fgd_core.adapters import rate_reserve
from fgd_core.errors import (
    GitHubAuthenticationError,
    GitHubConnectionError,
    GitHubError,
    GitHubNotFoundError,
    GitHubRateLimitError,
)

DEFAULT_USERNAME = "x-access-token"
MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
logger = logging.getLogger("fgd_core.git")


def redact_url(url: str) -> str:
    """The URL without any user:password part (safe to log and to put in messages)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> int | None:
    """Seconds to wait, from ``Retry-After`` (seconds or HTTP date) or ``X-RateLimit-Reset``."""
    now = time.time() if now is None else now
    value = headers.get("Retry-After")
    if value:
        value = value.strip()
        if value.isdigit():
            return int(value)
        try:
            return max(0, math.ceil(parsedate_to_datetime(value).timestamp() - now))
        except (TypeError, ValueError):
            pass
    reset = headers.get("X-RateLimit-Reset", "").strip()
    if reset.isdigit():
        return max(0, math.ceil(int(reset) - now))
    return None


def error_for_status(status: int, headers: Mapping[str, str], url: str) -> GitHubError:
    """The spec error for a non-200 answer of a git smart-HTTP endpoint."""
    details: dict[str, Any] = {"url": redact_url(url), "http_status": status}
    rate_limited = status == 429 or (
        status == 403 and headers.get("X-RateLimit-Remaining", "").strip() == "0"
    )
    if rate_limited:
        details["retry_after_seconds"] = retry_after_seconds(headers)
        return GitHubRateLimitError(f"rate limited by {details['url']}", details=details)
    if status in (401, 403, 407):
        return GitHubAuthenticationError(
            f"authentication failed for {details['url']} (HTTP {status})", details=details
        )
    if status == 404:
        return GitHubNotFoundError(f"repository not found: {details['url']}", details=details)
    return GitHubConnectionError(f"unexpected HTTP {status} from {details['url']}", details=details)


def connection_error(exc: BaseException, url: str) -> GitHubConnectionError:
    # The body says only "cannot reach": whether the port refused, reset, timed out or spoke
    # no TLS would turn the error into a port scanner for whoever sets the URL. The log
    # keeps the low-level reason for the operator.
    reason = getattr(exc, "reason", None) or exc
    logger.info("cannot reach %s: %s: %s", redact_url(url), type(reason).__name__, reason)
    return GitHubConnectionError(
        f"cannot reach {redact_url(url)}",
        details={"url": redact_url(url), "reason": "unreachable"},
    )


def redirect_refused(url: str) -> GitHubConnectionError:
    return GitHubConnectionError(
        f"{redact_url(url)} redirected to another origin (scheme, host or port): refused",
        details={"url": redact_url(url), "reason": "cross_origin_redirect"},
    )


class _Credential:
    """Holds the Authorization header value; its repr never shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def header(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<credential redacted>"


class GitHttpClient(AbstractHttpGitClient):
    """dulwich smart-HTTP client with spec error mapping and split timeouts."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        username: str = DEFAULT_USERNAME,
        connection_timeout: float = 30.0,
        read_timeout: float = 60.0,
        rate_limit_buffer: int = 0,
    ) -> None:
        super().__init__(redact_url(base_url), dumb=False)
        self._rate_limit_buffer = rate_limit_buffer  # see gitops.rate_reserve
        self._origin = _origin(self._base_url)
        self._credential: _Credential | None = None
        if token:
            raw = base64.b64encode(f"{username}:{token}".encode()).decode("ascii")
            self._credential = _Credential(f"Basic {raw}")
        self._timeout = urllib3.Timeout(connect=connection_timeout, read=read_timeout)
        # No retries of failed connections or reads: the sync worker owns retry policy.
        # Redirects are followed here, not by urllib3, and only within the origin the
        # remote was configured with (GitHub redirects renamed repositories on its own
        # host): a redirect to another scheme, host or port is refused, so the token never
        # follows one and a remote cannot send us to a host the policy did not allow.
        self._retries = urllib3.Retry(
            total=None,
            connect=0,
            read=0,
            status=0,
            other=0,
            redirect=False,
            raise_on_status=False,
        )
        self._pool = _pool_manager(self._base_url)

    def _http_request(
        self,
        url: str,
        headers: dict[str, str] | None = None,
        data: bytes | Iterator[bytes] | None = None,
        raise_for_status: bool = True,
    ) -> tuple[Any, Callable[[int], bytes]]:
        rate_reserve.check_reserve(self._origin, redact_url(url), self._rate_limit_buffer)
        resp, final_url = self._request_following(url, headers, data)
        rate_reserve.note_answer(self._origin, resp.headers, self._rate_limit_buffer,
                                 retry_after_seconds(resp.headers))
        if raise_for_status and resp.status != 200:
            error = error_for_status(resp.status, resp.headers, url)
            resp.drain_conn()  # a half-read body would poison the pooled connection
            resp.release_conn()
            raise error
        resp.content_type = resp.headers.get("Content-Type")
        resp.redirect_location = final_url if final_url != url else ""

        def read(amt: int) -> bytes:
            try:
                return resp.read(amt)
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise connection_error(exc, url) from exc

        return resp, read

    def _request_following(
        self, url: str, headers: dict[str, str] | None, data: bytes | Iterator[bytes] | None
    ) -> tuple[Any, str]:
        """The response and the URL that gave it, after same-origin redirects."""
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            req_headers = {"Pragma": "no-cache", **(headers or {})}
            if self._credential is not None and _origin(current) == self._origin:
                req_headers["Authorization"] = self._credential.header()
            try:
                resp = self._pool.request(
                    "GET" if data is None else "POST",
                    current,
                    body=data,
                    headers=req_headers,
                    preload_content=False,
                    timeout=self._timeout,
                    retries=self._retries,
                    redirect=False,
                )
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise connection_error(exc, url) from exc
            location = resp.headers.get("Location")
            if resp.status not in REDIRECT_STATUSES or not location:
                return resp, current
            resp.drain_conn()
            resp.release_conn()
            target = urljoin(current, location)
            # A POST body (a stream) cannot be sent twice; git redirects its GETs.
            if data is not None or _origin(target) != self._origin:
                raise redirect_refused(url)
            current = target
        raise GitHubConnectionError(
            f"too many redirects from {redact_url(url)}",
            details={"url": redact_url(url), "reason": "too_many_redirects"},
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._base_url!r})"


def _pool_manager(base_url: str) -> Any:
    # dulwich's manager honours https_proxy/no_proxy and verifies certificates; a loopback
    # remote (tests, a local mirror) never goes through a proxy.
    host = (urlsplit(base_url).hostname or "").lower()
    if host == "localhost" or host.startswith("127.") or host == "::1":
        return urllib3.PoolManager(headers={"User-Agent": default_user_agent_string()})
    return default_urllib3_manager(None, base_url=base_url)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return (parts.scheme, (parts.hostname or "").lower(), parts.port or default)
