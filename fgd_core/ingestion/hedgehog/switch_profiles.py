"""Hedgehog's built-in switch profiles (``switch_profiles.yaml``): which ports a switch has.

A Connection may only use a port its switch's profile allows, with the switch's breakouts
applied: ``E1/49`` always, ``E1/49/1`` … ``E1/49/4`` when the port is broken out 4 ways.
A SwitchProfile object in the fabric's Git overrides a catalog profile of the same name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True, eq=False)  # hashed by identity: cached per profile object
class Profile:
    name: str
    features: Mapping[str, bool]
    ports: frozenset[str]  # always present
    # breakout port → (default mode, mode → lanes)
    breakouts: Mapping[str, tuple[str, Mapping[str, int]]] = field(default_factory=dict)

    def supports(self, feature: str) -> bool:
        return bool(self.features.get(feature, False))

    def allowed_ports(self, breakouts: Mapping[str, str]) -> frozenset[str]:
        """Port names a switch with these ``portBreakouts`` has (Hedgehog's API names)."""
        return _allowed(self, tuple(sorted(breakouts.items())))


@lru_cache(maxsize=256)
def _allowed(profile: Profile, breakouts: tuple[tuple[str, str], ...]) -> frozenset[str]:
    chosen = dict(breakouts)
    out = set(profile.ports)
    for port, (default, modes) in profile.breakouts.items():
        out.add(port)
        lanes = modes.get(chosen.get(port, default), 0)
        out.update(f"{port}/{i}" for i in range(1, lanes + 1))
    return frozenset(out)


@cache
def catalog() -> Mapping[str, Profile]:
    """The built-in profiles, by name."""
    data = yaml.safe_load((Path(__file__).with_name("switch_profiles.yaml")).read_text())
    out: dict[str, Profile] = {}
    for name, body in data.items():
        breakouts: dict[str, tuple[str, Mapping[str, int]]] = {}
        for group in body.get("breakouts") or []:
            for port in group["ports"].split():
                breakouts[port] = (group["default"], dict(group["modes"]))
        out[name] = Profile(
            name, dict(body.get("features") or {}), frozenset(body["ports"].split()), breakouts
        )
    return out


def profile_from_spec(name: str, spec: Mapping[str, Any]) -> Profile:
    """A Profile from a SwitchProfile object's spec (user-defined profiles)."""
    features = spec.get("features") or {}
    ports = spec.get("ports") or {}
    port_profiles = spec.get("portProfiles")
    port_profiles = port_profiles if isinstance(port_profiles, Mapping) else {}
    plain: set[str] = set()
    breakouts: dict[str, tuple[str, Mapping[str, int]]] = {}
    for port, body in ports.items() if isinstance(ports, Mapping) else ():
        body = body if isinstance(body, Mapping) else {}
        prof = port_profiles.get(body.get("profile"))
        brk = prof.get("breakout") if isinstance(prof, Mapping) else None
        if isinstance(brk, Mapping) and isinstance(brk.get("supported"), Mapping):
            modes = {
                str(m): len((v or {}).get("offsets") or []) if isinstance(v, Mapping) else 0
                for m, v in brk["supported"].items()
            }
            breakouts[str(port)] = (str(brk.get("default", "")), modes)
        else:
            plain.add(str(port))
    feats = {str(k).lower(): bool(v) for k, v in features.items()} if isinstance(
        features, Mapping
    ) else {}
    return Profile(name, feats, frozenset(plain), breakouts)
