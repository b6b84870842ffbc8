"""Which Hedgehog kinds FGD Sync manages, where each one lives, and the naming rules.

The kind → directory table below uses the spec's hyphenated directory names (``vpcs/``,
``vpc-attachments/`` …). A resource's managed path is derived only from its kind and a name
that has passed ``NAME_RE``, so no document can place a file outside its kind's directory.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from fgd_core.errors import UnsupportedResourceError, ValidationError

VPC_API_VERSION = "vpc.githedgehog.com/v1beta1"
WIRING_API_VERSION = "wiring.githedgehog.com/v1beta1"
SUPPORTED_API_VERSIONS = (VPC_API_VERSION, WIRING_API_VERSION)

DEFAULT_NAMESPACE = "default"

# An RFC 1123 subdomain, as Kubernetes names are: lowercase alphanumerics, "-" and "." only, so a
# name can never contain "/", "..", or start with "." — it is always a plain file name.
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# Kubernetes allows 253; "<name>.yaml" must also fit a 255-byte file name on disk.
MAX_NAME_LENGTH = 250
# Namespaces are RFC 1123 labels in Kubernetes.
NAMESPACE_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
MAX_NAMESPACE_LENGTH = 63


@dataclass(frozen=True)
class KindInfo:
    """One supported kind: its apiVersion and its directory under ``managed/``."""

    kind: str
    api_version: str
    directory: str

    @property
    def group(self) -> str:
        return self.api_version.split("/", 1)[0]


def _table(rows: Iterable[tuple[str, str, str]]) -> Mapping[str, KindInfo]:
    return MappingProxyType({k: KindInfo(k, v, d) for k, v, d in rows})


KINDS: Mapping[str, KindInfo] = _table(
    [
        ("VPC", VPC_API_VERSION, "vpcs"),
        ("VPCAttachment", VPC_API_VERSION, "vpc-attachments"),
        ("VPCPeering", VPC_API_VERSION, "vpc-peerings"),
        ("External", VPC_API_VERSION, "externals"),
        ("ExternalAttachment", VPC_API_VERSION, "external-attachments"),
        ("ExternalPeering", VPC_API_VERSION, "external-peerings"),
        ("IPv4Namespace", VPC_API_VERSION, "ipv4-namespaces"),
        ("Connection", WIRING_API_VERSION, "connections"),
        ("Server", WIRING_API_VERSION, "servers"),
        ("Switch", WIRING_API_VERSION, "switches"),
        ("SwitchGroup", WIRING_API_VERSION, "switch-groups"),
        ("VLANNamespace", WIRING_API_VERSION, "vlan-namespaces"),
        ("SwitchProfile", WIRING_API_VERSION, "switch-profiles"),
        ("ServerProfile", WIRING_API_VERSION, "server-profiles"),
    ]
)


def lookup_kind(
    api_version: Any, kind: Any, extra_kinds: Mapping[str, KindInfo] | None = None
) -> KindInfo:
    """The KindInfo for (apiVersion, kind), or UnsupportedResourceError (FGD_1002).

    A known kind under the other group's apiVersion is unsupported too: the pair, not the
    kind alone, is what the fabric's API server would accept.
    """
    info = (extra_kinds or {}).get(kind) if isinstance(kind, str) else None
    if info is None and isinstance(kind, str):
        info = KINDS.get(kind)
    if info is None:
        raise UnsupportedResourceError(
            f"unsupported kind {kind!r} (apiVersion {api_version!r})",
            details={"field": "kind", "kind": kind, "api_version": api_version},
        )
    if api_version != info.api_version:
        raise UnsupportedResourceError(
            f"unsupported apiVersion {api_version!r} for kind {kind!r} "
            f"(expected {info.api_version!r})",
            details={"field": "apiVersion", "kind": kind, "api_version": api_version},
        )
    return info


def name_problem(name: Any) -> str | None:
    """Why ``name`` is not a valid metadata.name, or None if it is."""
    if not isinstance(name, str) or not name:
        return "metadata.name is required and must be a string"
    if len(name) > MAX_NAME_LENGTH:
        return f"metadata.name is longer than {MAX_NAME_LENGTH} characters"
    if not NAME_RE.match(name):
        return (
            f"metadata.name {name!r} must be lowercase letters, digits, '-' and '.', "
            "starting and ending with a letter or digit"
        )
    return None


def resolve_namespace(value: Any, *, enforce: bool) -> str:
    """The effective namespace: missing/empty means ``default``.

    With ``enforce`` (the spec's ``enforce_namespaces``) only ``default`` is accepted: the
    managed layout has no namespace level, so two namespaces would share one path.
    """
    if value is None or value == "":
        return DEFAULT_NAMESPACE
    if not isinstance(value, str):
        raise ValidationError(
            "metadata.namespace must be a string", details={"field": "metadata.namespace"}
        )
    if len(value) > MAX_NAMESPACE_LENGTH or not NAMESPACE_RE.match(value):
        raise ValidationError(
            f"metadata.namespace {value!r} is not a valid namespace name",
            details={"field": "metadata.namespace"},
        )
    if enforce and value != DEFAULT_NAMESPACE:
        raise ValidationError(
            f"metadata.namespace {value!r} is not allowed: resources must be in "
            f"namespace {DEFAULT_NAMESPACE!r} (enforce_namespaces)",
            details={"field": "metadata.namespace"},
        )
    return value


def managed_path(gitops_dir: str, info: KindInfo, name: str) -> str:
    """Repo-relative path of a resource's one managed file (never ``name-1.yaml``)."""
    base = f"{gitops_dir.strip('/')}/" if gitops_dir.strip("/") else ""
    return f"{base}managed/{info.directory}/{name}.yaml"
