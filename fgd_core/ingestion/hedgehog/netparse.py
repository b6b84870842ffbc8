"""Addresses, prefixes and MACs parsed the way Hedgehog's Go code parses them.

Go's ``netip.ParsePrefix`` / ``net.ParseCIDR`` accept host bits ("10.0.1.5/24") and IPv6,
and need an explicit "/bits"; Python's ``ip_network`` refuses host bits and ``ip_interface``
accepts a bare address or a netmask. These helpers give Go's verdict. Each string is parsed
once (LRU cache): a document names the same prefix several times and a fabric repeats them.
Failed parses raise ``ValueError`` and are not cached.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_CACHE = 8192
_BITS_RE = re.compile(r"^(0|[1-9][0-9]{0,2})$")


@lru_cache(maxsize=_CACHE)
def parse_addr(text: str) -> IPAddress:
    """An IPv4 or IPv6 address (``netip.ParseAddr``); ValueError otherwise."""
    if not isinstance(text, str) or not text or text != text.strip():
        raise ValueError(f"{text!r} is not an IP address")
    # A plain dotted quad (nearly every address a fabric holds) as an int: several times
    # cheaper than ipaddress's text parser; anything else gets that parser's verdict.
    parts = text.split(".")
    if len(parts) == 4:
        n = 0
        for part in parts:
            if not (part.isascii() and part.isdigit()) or len(part) > 3 or (
                len(part) > 1 and part[0] == "0"
            ):
                break
            octet = int(part)
            if octet > 255:
                break
            n = (n << 8) | octet
        else:
            return ipaddress.IPv4Address(n)
    return ipaddress.ip_address(text)


@lru_cache(maxsize=_CACHE)
def parse_prefix(text: str) -> tuple[IPAddress, IPNetwork]:
    """``netip.ParsePrefix``: (address as written, masked network); host bits allowed."""
    if not isinstance(text, str) or "/" not in text:
        raise ValueError(f"{text!r} is not a prefix (a.b.c.d/n)")
    addr_text, _, bits_text = text.rpartition("/")
    if not _BITS_RE.match(bits_text):
        raise ValueError(f"{text!r} has an invalid prefix length")
    addr = parse_addr(addr_text)
    if int(bits_text) > addr.max_prefixlen:
        raise ValueError(f"{text!r} has a prefix length over {addr.max_prefixlen}")
    if addr.version == 4:  # from the parsed address: no second parse of the text
        return addr, ipaddress.IPv4Network((int(addr), int(bits_text)), strict=False)
    return addr, ipaddress.ip_network(f"{addr}/{bits_text}", strict=False)


def is_prefix(text: object) -> bool:
    try:
        parse_prefix(text)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return False
    return True


def is_addr(text: object) -> bool:
    try:
        parse_addr(text)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return False
    return True


def overlaps(a: IPNetwork, b: IPNetwork) -> bool:
    return a.version == b.version and a.overlaps(b)  # type: ignore[arg-type]


def first_overlap(nets: list[IPNetwork]) -> tuple[int, int] | None:
    """Indexes (earlier, later) of the first overlapping pair, sorting instead of n² pairs."""
    order = sorted(range(len(nets)), key=lambda i: (nets[i].version, nets[i].network_address))
    for prev, cur in zip(order, order[1:], strict=False):
        a, b = nets[prev], nets[cur]
        if a.version == b.version and int(b.network_address) <= int(a.broadcast_address):
            return (min(prev, cur), max(prev, cur))
    return None


_HEX2 = r"[0-9A-Fa-f]{2}"
_HEX4 = r"[0-9A-Fa-f]{4}"
_MAC_RES = [
    re.compile(rf"^{_HEX2}(?:{sep}{_HEX2}){{{n - 1}}}$") for sep in (":", "-") for n in (6, 8, 20)
] + [re.compile(rf"^{_HEX4}(?:\.{_HEX4}){{{n // 2 - 1}}}$") for n in (6, 8, 20)]


def parse_mac(text: str) -> str:
    """``net.ParseMAC`` then ``String()``: the lower-case, colon-separated form."""
    if not isinstance(text, str) or not any(r.match(text) for r in _MAC_RES):
        raise ValueError(f"{text!r} is not a MAC address")
    digits = re.sub(r"[:.\-]", "", text).lower()
    return ":".join(digits[i : i + 2] for i in range(0, len(digits), 2))
