"""Hedgehog's fabric-wide rules: what its admission webhooks check against OTHER objects
(the part of each kind's ``Validate()`` that needs the cluster), run against the index of
the desired fabric instead of a cluster — the rules per kind are in ``fabric_vpc_rules`` and
``fabric_wiring_rules``, what they share in ``fabric_rule_base``.

Every rule has a stable id (``rule``), the field it blames and a message in a network
engineer's words. Policy for what Git does not hold: a reference to a kind of which the
fabric's Git holds no object at all cannot be checked — a warning naming it, not an error
(Hedgehog's GitOps demo keeps only VPCs, attachments and peerings in Git; the wiring lives
in the cluster). Built-in switch profiles are known without Git (``switch_profiles``).
"""

from __future__ import annotations

from collections.abc import Iterator

from fgd_core.ingestion.hedgehog.fabric_index import FabricIndex, FabricObject
from fgd_core.ingestion.hedgehog.fabric_rule_base import (
    DEFAULT_CONFIG,
    UNCHECKED,
    Check,
    FabricConfig,
    FabricIssue,
    Findings,
)
from fgd_core.ingestion.hedgehog.fabric_vpc_rules import (
    check_external,
    check_external_attachment,
    check_external_peering,
    check_vpc,
    check_vpc_attachment,
    check_vpc_peering,
)
from fgd_core.ingestion.hedgehog.fabric_wiring_rules import check_connection, check_switch

__all__ = ["DEFAULT_CONFIG", "UNCHECKED", "FabricIssue", "FabricConfig", "Findings",
           "check_object", "update_findings"]

_RULES = {
    "VPC": check_vpc,
    "VPCAttachment": check_vpc_attachment,
    "VPCPeering": check_vpc_peering,
    "External": check_external,
    "ExternalAttachment": check_external_attachment,
    "ExternalPeering": check_external_peering,
    "Connection": check_connection,
    "Switch": check_switch,
}


def check_object(obj: FabricObject, index: FabricIndex,
                 cfg: FabricConfig = DEFAULT_CONFIG) -> Findings:
    """The fabric-wide findings for one object of ``index``."""
    rule = _RULES.get(obj.kind)
    if rule is None:
        return Findings()
    check = Check(obj, index, cfg)
    rule(check)
    return check.out


def update_findings(old: FabricObject, new: FabricObject) -> Iterator[FabricIssue]:
    """Rules about replacing ``old`` by ``new`` (Hedgehog's ValidateUpdate)."""
    if old.kind == "Connection" and old.facts["type"] != new.facts["type"]:
        yield FabricIssue("connection.type-immutable", f"spec.{new.facts['type']}",
                          f"a connection's type cannot change (Git has {old.name!r} as "
                          f"{old.facts['type'] or 'no known type'})")
    elif old.kind == "Connection" and old.facts.get("within") != new.facts.get("within"):
        yield FabricIssue("connection.within-vpc-immutable", "spec.staticExternal.withinVPC",
                          "a static external connection's withinVPC cannot change")
    elif old.kind == "Switch" and (old.facts["roce"] or new.facts["roce"]) and (
        old.facts["breakouts"] != new.facts["breakouts"]
    ):
        yield FabricIssue("switch.breakouts-roce", "spec.portBreakouts",
                          "port breakouts cannot change while RoCEv2 is enabled")
