"""Every kind's single-object rules behind one call: ``object_issues``.

The caller (``fgd_core.ingestion.resources.validate_resource``) has checked the CRD schema
(types, enums, bounds) on the defaulted spec; the rules here are the rest of Hedgehog's
``Validate()`` that needs no other object.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from fgd_core.ingestion.hedgehog.external_rules import (
    external_attachment_rules,
    external_peering_rules,
    external_rules,
)
from fgd_core.ingestion.hedgehog.fabric_config import FabricConfig
from fgd_core.ingestion.hedgehog.issues import FieldIssue
from fgd_core.ingestion.hedgehog.namespace_rules import ipv4_namespace_rules, vlan_namespace_rules
from fgd_core.ingestion.hedgehog.switchprofile_rules import switch_profile_rules
from fgd_core.ingestion.hedgehog.vpc_link_rules import vpc_attachment_rules, vpc_peering_rules
from fgd_core.ingestion.hedgehog.vpc_rules import vpc_rules
from fgd_core.ingestion.hedgehog.wiring_rules import connection_rules, switch_rules

Rules = Callable[[str, dict[str, Any], FabricConfig], Iterator[FieldIssue]]

RULES: Mapping[str, Rules] = {
    "VPC": vpc_rules,
    "VPCPeering": vpc_peering_rules,
    "External": external_rules,
    "ExternalAttachment": external_attachment_rules,
    "ExternalPeering": external_peering_rules,
    "IPv4Namespace": ipv4_namespace_rules,
    "VLANNamespace": vlan_namespace_rules,
    "Connection": connection_rules,
    "Switch": switch_rules,
    "SwitchProfile": switch_profile_rules,
    # Server, SwitchGroup, ServerProfile: Hedgehog checks only their metadata.
}


def object_issues(
    kind: str,
    name: str,
    spec: dict[str, Any],
    cfg: FabricConfig,
    annotations: Mapping[str, str] | None = None,
) -> list[FieldIssue]:
    """Hedgehog's single-object rules for one defaulted spec (paths from the document root)."""
    if kind == "VPCAttachment":
        return list(vpc_attachment_rules(name, spec, dict(annotations or {}), cfg))
    rules = RULES.get(kind)
    return list(rules(name, spec, cfg)) if rules is not None else []
