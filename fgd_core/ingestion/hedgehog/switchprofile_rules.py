"""Hedgehog's single-object rules for SwitchProfile: a switch model's port catalog."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from fgd_core.ingestion.hedgehog.fabric_config import FabricConfig
from fgd_core.ingestion.hedgehog.issues import FieldIssue, Path

_SPEC: Path = ("spec",)
NOS_TYPES = (
    "sonic-bcm-base",
    "sonic-bcm-campus",
    "sonic-bcm-vs",
    "sonic-cls-plus-broadcom",
    "sonic-cls-plus-marvell",
    "sonic-cls-plus-vs",
    "cumulus-vx",
    "cumulus-mlx",
)
PORT_SPEEDS = (
    "1G",
    "2.5G",
    "5G",
    "10G",
    "20G",
    "25G",
    "40G",
    "50G",
    "100G",
    "200G",
    "400G",
    "800G",
)
BREAKOUT_COUNTS = ("1", "2", "4", "8")
MAX_OTHER_NAMES = 5
# Hedgehog's built-in switch profiles (its switch profile catalog).
BUILTIN_PROFILES = frozenset(
    {
        "celestica-ds2000",
        "celestica-ds3000",
        "celestica-ds4000",
        "celestica-ds4101",
        "celestica-ds5000",
        "celestica-ds2000-clsp",
        "celestica-ds3000-clsp",
        "celestica-ds4000-clsp",
        "celestica-ds4101-clsp",
        "celestica-ds5000-clsp",
        "dell-s5232f-on",
        "dell-s5248f-on",
        "dell-z9332f-on",
        "edgecore-dcs203",
        "edgecore-dcs204",
        "edgecore-dcs240",
        "edgecore-dcs501",
        "edgecore-eps202",
        "edgecore-eps203",
        "supermicro-sse-c4632sb",
        "vs",
        "vs-clsp",
        "cumulus-vx",
    }
)
_MGMT_NAME = re.compile(r"^M([0-9]+)$")
_MGMT_NOS = re.compile(r"^Management([0-9]+)$")
_ONIE = re.compile(r"^eth([0-9]+)$")
_DATA_NAME = re.compile(r"^E([0-9]+)/([0-9]+)$")
_DATA_NOS = re.compile(r"^Ethernet([0-9]+)$")
_BREAKOUT_NOS = re.compile(r"^1/-?[0-9]+$")
_POSITIVE_INT = re.compile(r"^\+?0*[1-9][0-9]*$")


def _issue(at: Path, message: str, rule: str) -> FieldIssue:
    return FieldIssue(_SPEC + at, message, f"switchprofile.{rule}")


def switch_profile_rules(
    name: str, spec: dict[str, Any], cfg: FabricConfig
) -> Iterator[FieldIssue]:
    if name not in BUILTIN_PROFILES and not cfg.allow_extra_switch_profiles:
        yield FieldIssue(
            ("metadata", "name"),
            f"{name!r} is not one of Hedgehog's built-in switch profiles, and this fabric "
            "allows no others (fgd.hedgehog.allow_extra_switch_profiles)",
            "switchprofile.not-built-in",
        )
    for key in ("displayName", "switchSilicon", "platform", "nosType"):
        if not spec.get(key):
            yield _issue((key,), f"a SwitchProfile needs {key}", "required")
    nos = spec.get("nosType")
    if nos and nos not in NOS_TYPES:
        yield _issue(("nosType",), f"nosType must be one of {', '.join(NOS_TYPES)}", "nos-type")
    others: list[str] = spec.get("otherNames") or []
    if len(others) > MAX_OTHER_NAMES:
        yield _issue(("otherNames",), f"at most {MAX_OTHER_NAMES} otherNames", "other-names")
    if any(not n for n in others) or len(set(others)) != len(others):
        yield _issue(("otherNames",), "otherNames must be non-empty and distinct", "other-names")
    ports: dict[str, dict[str, Any]] = spec.get("ports") or {}
    groups: dict[str, dict[str, Any]] = spec.get("portGroups") or {}
    profiles: dict[str, dict[str, Any]] = spec.get("portProfiles") or {}
    pipelines: dict[str, dict[str, Any]] = spec.get("pipelines") or {}
    used_profiles: set[str] = set()
    used_groups: set[str] = set()
    seen: dict[str, set[str]] = {"nos": set(), "base": set(), "label": set()}
    for port_name, port in ports.items():
        yield from _port_rules(port_name, port, spec, seen, used_profiles, used_groups)
    for group_name, group in groups.items():
        at: Path = ("portGroups", group_name)
        if group_name not in used_groups:
            yield _issue(at, f"port group {group_name!r} is not used by any port", "group")
        if not _POSITIVE_INT.match(group.get("nos") or ""):
            yield _issue(at + ("nos",), "a port group's nos must be a positive integer", "group")
        profile = group.get("profile") or ""
        used_profiles.add(profile)
        if profile not in profiles:
            yield _issue(at + ("profile",), f"unknown port profile {profile!r}", "group")
        elif (profiles[profile] or {}).get("speed") is None:
            yield _issue(at + ("profile",), "a port group needs a speed profile", "group")
        elif (profiles[profile] or {}).get("autoNegAllowed"):
            yield _issue(
                at + ("profile",), "a port group's profile must not allow auto-negotiation", "group"
            )
    for profile_name, profile in profiles.items():
        yield from _profile_rules(profile_name, profile or {}, used_profiles)
    for pipeline_name, pipeline in pipelines.items():
        if not (pipeline or {}).get("maxPorts"):
            yield _issue(
                ("pipelines", pipeline_name, "maxPorts"), "a pipeline needs maxPorts", "pipeline"
            )


def _port_rules(
    port_name: str,
    port: dict[str, Any],
    spec: dict[str, Any],
    seen: dict[str, set[str]],
    used_profiles: set[str],
    used_groups: set[str],
) -> Iterator[FieldIssue]:
    at: Path = ("ports", port_name)
    port = port or {}
    nos, base = port.get("nos") or "", port.get("baseNOSName") or ""
    if not nos:
        yield _issue(at + ("nos",), f"port {port_name!r} needs a NOS name", "port")
    elif nos in seen["nos"]:
        yield _issue(at + ("nos",), f"NOS name {nos!r} is used by two ports", "port-duplicate")
    seen["nos"].add(nos)
    if base:
        if base in seen["base"]:
            yield _issue(
                at + ("baseNOSName",), f"base NOS name {base!r} is used twice", "port-duplicate"
            )
        seen["base"].add(base)
    if port.get("management"):
        ok = (
            _MGMT_NAME.match(port_name)
            and int(port_name[1:]) > 0
            and _MGMT_NOS.match(nos)
            and _ONIE.match(port.get("oniePortName") or "")
            and not (port.get("group") or port.get("profile") or base)
        )
        if not ok:
            yield _issue(
                at,
                "a management port is named M<n>, has nos Management<n> and oniePortName "
                "eth<n>, and no group, profile or baseNOSName",
                "management-port",
            )
        return
    m = _DATA_NAME.match(port_name)
    if not m or int(m[1]) <= 0 or int(m[2]) <= 0:
        yield _issue(
            at, f"data port {port_name!r} must be named E<asic>/<port>, e.g. E1/1", "port-name"
        )
    label = port.get("label") or ""
    if not label:
        yield _issue(at + ("label",), f"port {port_name!r} needs a label", "port")
    elif label in seen["label"]:
        yield _issue(at + ("label",), f"label {label!r} is used by two ports", "port-duplicate")
    seen["label"].add(label)
    profile, group = port.get("profile") or "", port.get("group") or ""
    if bool(profile) == bool(group):
        yield _issue(at, f"port {port_name!r} needs either a profile or a group", "port")
    breakout = False
    profiles = spec.get("portProfiles") or {}
    if profile:
        used_profiles.add(profile)
        if profile not in profiles:
            yield _issue(at + ("profile",), f"unknown port profile {profile!r}", "port")
        elif (profiles[profile] or {}).get("breakout") is not None:
            breakout = True
            if not _BREAKOUT_NOS.match(nos) or not _DATA_NOS.match(base):
                yield _issue(
                    at, "a breakout port has nos 1/<n> and baseNOSName Ethernet<n>", "breakout-port"
                )
    pipeline = port.get("pipeline") or ""
    if pipeline and (pipeline not in (spec.get("pipelines") or {}) or not breakout):
        yield _issue(
            at + ("pipeline",),
            "only a breakout port can name a pipeline, and it must exist",
            "port",
        )
    if not breakout and nos and not _DATA_NOS.match(nos):
        yield _issue(at + ("nos",), "a data port's nos must be Ethernet<n>", "port")
    if group:
        used_groups.add(group)
        if group not in (spec.get("portGroups") or {}):
            yield _issue(at + ("group",), f"unknown port group {group!r}", "port")


def _profile_rules(name: str, profile: dict[str, Any], used: set[str]) -> Iterator[FieldIssue]:
    at: Path = ("portProfiles", name)
    speed, breakout = profile.get("speed"), profile.get("breakout")
    if name not in used:
        yield _issue(at, f"port profile {name!r} is not used by any port or group", "profile")
    if (speed is None) == (breakout is None):
        yield _issue(at, "a port profile has either a speed or a breakout", "profile")
    if profile.get("autoNegDefault") and not profile.get("autoNegAllowed"):
        yield _issue(at, "autoNegDefault needs autoNegAllowed", "profile")
    if speed is not None:
        supported = speed.get("supported") or []
        if not speed.get("default") or speed.get("default") not in supported:
            yield _issue(
                at + ("speed",), "the default speed must be one of the supported", "profile"
            )
        for s in supported:
            if s not in PORT_SPEEDS:
                yield _issue(
                    at + ("speed",), f"speed {s!r} is not one of {', '.join(PORT_SPEEDS)}", "speed"
                )
    if breakout is not None:
        modes: dict[str, Any] = breakout.get("supported") or {}
        if not breakout.get("default") or breakout.get("default") not in modes:
            yield _issue(
                at + ("breakout",), "the default breakout must be one of the supported", "profile"
            )
        for mode, offsets in modes.items():
            count, x, mode_speed = mode.partition("x")
            if not x or count not in BREAKOUT_COUNTS or mode_speed not in PORT_SPEEDS:
                yield _issue(
                    at + ("breakout", "supported", mode),
                    f"breakout mode {mode!r} must be <1|2|4|8>x<speed>, e.g. 4x25G",
                    "breakout",
                )
            if not (offsets or {}).get("offsets"):
                yield _issue(
                    at + ("breakout", "supported", mode),
                    "a breakout mode needs offsets",
                    "breakout",
                )
