"""What a fabric's repository, branch and GitOps directory may be: pure rules, no I/O.

* ``parse_location`` accepts what the git adapter can use — an ``https://`` or ``http://``
  URL, a ``file://`` URL or a filesystem path — and refuses every other transport
  (``ssh://``, ``git://``, ``ext::`` and other ``<helper>::`` forms, scp-like
  ``host:path``), URLs carrying credentials, a query or a fragment. It returns the
  location normalized: lower-case scheme and host, default port dropped, percent-decoded
  path with dot segments, repeated and trailing slashes removed, ``file://`` turned into
  its path. Symlinks are resolved by the caller (that needs the filesystem).
* ``branch_problem`` ports ``git check-ref-format --branch``.
* ``directory_problem``: a clean relative path, no ``.``, ``..`` or ``.git`` component.

Every refusal names the problem without echoing more than a bounded piece of the value.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

WEB_SCHEMES = ("https", "http")
DEFAULT_PORTS = {"http": 80, "https": 443}
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_HELPER = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*::")  # git's "<transport>::<address>"
_HOST = re.compile(r"^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$")
_SHOWN = 80  # characters of a refused value quoted in a message


class LocationError(ValueError):
    """A repository value the git adapter cannot or must not use."""


def shown(value: str) -> str:
    """``value`` quoted for a message, bounded (the rest elided)."""
    return repr(value if len(value) <= _SHOWN else value[:_SHOWN] + "…")


@dataclass(frozen=True)
class Location:
    """A normalized repository location: a web URL (``scheme``, ``host``) or a path."""

    scheme: str  # "https", "http", or "" for a filesystem path
    host: str  # lower-case host, ":port" when not the scheme's default; "" for a path
    path: str  # decoded and normalized; absolute for URLs, no trailing slash

    @property
    def is_path(self) -> bool:
        return self.scheme == ""

    def text(self) -> str:
        """The location as one string (what prefixes are matched against)."""
        return self.path if self.is_path else f"{self.scheme}://{self.host}{self.path}"

    def identity(self) -> str:
        """The key two fabrics may not share: http and https name the same repository on
        a host, and ``x.git`` is ``x`` there (git servers answer both); a path is itself."""
        if self.is_path:
            return self.path
        return f"//{self.host}{self.path.removesuffix('.git')}"


def _clean_path(path: str) -> str:
    if not path:
        return "/"
    cleaned = posixpath.normpath(re.sub(r"/+", "/", path))
    if cleaned.startswith("//"):  # normpath keeps a leading "//" (POSIX allows it)
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


def parse_location(value: str) -> Location:
    """The normalized location of ``value``; ``LocationError`` saying why it is refused."""
    if value != value.strip():
        raise LocationError("must not begin or end with whitespace")
    if not value:
        raise LocationError("must not be empty")
    if _HELPER.match(value):
        raise LocationError("git transport helpers ('<transport>::<address>') are not supported")
    scheme_match = _SCHEME.match(value)
    if scheme_match is None:
        return _parse_path(value)
    scheme = scheme_match.group(1).lower()
    if scheme == "file":
        return _parse_file_url(value)
    if scheme not in WEB_SCHEMES:
        raise LocationError(
            f"transport {shown(scheme)} is not supported (use https://, http://, file:// "
            "or a path)"
        )
    return _parse_web_url(value, scheme)


def _parse_path(value: str) -> Location:
    head = value.split("/", 1)[0]
    if ":" in head:  # git reads "host:path" (and "user@host:path") as ssh
        raise LocationError("scp-like 'host:path' addresses (ssh) are not supported")
    if value.startswith("/"):
        return Location("", "", _clean_path(value))
    return Location("", "", posixpath.normpath(value))


def _parse_file_url(value: str) -> Location:
    try:
        parts = urlsplit(value)
    except ValueError as exc:
        raise LocationError(f"not a valid file:// URL ({exc})") from None
    if parts.netloc not in ("", "localhost"):
        raise LocationError("file:// URLs must not name a host")
    if parts.query or parts.fragment or "?" in value or "#" in value:
        raise LocationError("must not have a query or a fragment")
    path = unquote(parts.path)
    if not path.startswith("/"):
        raise LocationError("file:// URLs must hold an absolute path")
    if "\x00" in path:
        raise LocationError("holds a NUL character")
    return Location("", "", _clean_path(path))


def _parse_web_url(value: str, scheme: str) -> Location:
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise LocationError(f"not a valid URL ({exc})") from None
    if "@" in parts.netloc:
        raise LocationError(
            "must not carry credentials (user:password@); the git token comes from "
            "configuration (HEDGEHOG_FGD_GITHUB_TOKEN)"
        )
    if parts.query or parts.fragment or "?" in value or "#" in value:
        raise LocationError("must not have a query or a fragment")
    if "\\" in value:
        raise LocationError("must not contain backslashes")
    host = (parts.hostname or "").rstrip(".")
    if host.startswith("[") or ":" in host:  # an IPv6 literal (urlsplit strips brackets)
        if not re.fullmatch(r"[0-9a-f:.]+", host):
            raise LocationError("has an invalid host")
        host = f"[{host}]"
    elif not _HOST.match(host):
        raise LocationError("has a missing or invalid host (ASCII host names only)")
    if port is not None and port != DEFAULT_PORTS[scheme]:
        if port == 0:
            raise LocationError("has an invalid port")
        host = f"{host}:{port}"
    path = unquote(parts.path)
    if "\x00" in path:
        raise LocationError("holds a NUL character")
    path = _clean_path(path)
    return Location(scheme, host, "" if path == "/" else path)


# --- branch names: git check-ref-format --branch -------------------------------------------

_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def branch_problem(name: str) -> str | None:
    """Why ``refs/heads/<name>`` is not a valid branch ref (git's rules), or None."""
    if not name:
        return "must not be empty"
    if name.startswith("-"):
        return "must not begin with '-'"
    if name in ("HEAD", "@"):
        return f"{name!r} is not a branch name"
    if match := _REF_FORBIDDEN.search(name):
        return f"must not contain {match.group()!r} (space, control characters, ~ ^ : ? * [ \\)"
    if ".." in name:
        return "must not contain '..'"
    if "@{" in name:
        return "must not contain '@{'"
    if name.startswith("/") or name.endswith("/") or "//" in name:
        return "must not begin or end with '/' or contain '//'"
    if name.endswith("."):
        return "must not end with '.'"
    for component in name.split("/"):
        if component.startswith("."):
            return "no component may begin with '.'"
        if component.endswith(".lock"):
            return "no component may end with '.lock'"
    return None


# --- the GitOps directory -----------------------------------------------------------------

DIRECTORY_PATTERN = r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$"
_DIRECTORY_RE = re.compile(DIRECTORY_PATTERN)


def directory_problem(directory: str) -> str | None:
    """Why ``directory`` is not a clean path inside the repository, or None."""
    if not _DIRECTORY_RE.match(directory):
        return (
            "must be a relative path of letters, digits, '_', '.', '-' separated by single "
            "'/' (not absolute, no empty component)"
        )
    for component in directory.split("/"):
        if component in (".", ".."):
            return f"must not have a {component!r} component"
        if component.lower() == ".git":  # git refuses .git in any case in a tree
            return "must not have a '.git' component"
    return None


# --- prefixes of the repository policy ----------------------------------------------------

_ANY_HOST = re.compile(r"(?i)(https?)://")


def parse_prefix(text: str) -> Location:
    """An allowed-repositories prefix: ``https://`` (any host), a URL prefix, a
    ``file://`` URL or an absolute path. ``host`` "" means any host."""
    if match := _ANY_HOST.fullmatch(text):
        return Location(match.group(1).lower(), "", "")
    prefix = parse_location(text)
    if prefix.is_path and not prefix.path.startswith("/"):
        raise LocationError("a path prefix must be absolute")
    return prefix


def within(location: Location, prefix: Location) -> bool:
    """Whether ``location`` is under ``prefix``, comparing whole host names and whole path
    components (``/srv/git`` holds ``/srv/git/x``, not ``/srv/gitx``)."""
    if location.scheme != prefix.scheme or (prefix.host and prefix.host != location.host):
        return False
    base = prefix.path.rstrip("/")
    return not base or location.path == base or location.path.startswith(base + "/")
