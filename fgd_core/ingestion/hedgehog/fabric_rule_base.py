"""What every fabric-wide rule shares: the finding, the fabric config values the rules
need, and ``Check`` — one object's run of its rules against the index, with the policy
for references (missing: an error; a kind Git holds none of: a warning naming it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fgd_core.errors import FGDErrorCodes
from fgd_core.ingestion.hedgehog.fabric_config import DEFAULT_FABRIC_CONFIG, FabricConfig
from fgd_core.ingestion.hedgehog.fabric_index import FabricIndex, FabricObject
from fgd_core.ingestion.hedgehog.switch_profiles import Profile, catalog, profile_from_spec


@dataclass(frozen=True)
class FabricIssue:
    """One fabric-wide problem (an error, or a warning when the check could not be made)."""

    rule: str
    field: str
    message: str
    code: str = FGDErrorCodes.VALIDATION_FAILED
    target_kind: str = ""  # an unchecked reference's kind (warnings are grouped by it)

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "field": self.field, "rule": self.rule,
                "message": self.message}


# The fabric config both rule families run under (``fgd.hedgehog`` in fgd_config.yaml):
# the hydration subnets and ASNs the cross-object rules check are part of it.
DEFAULT_CONFIG = DEFAULT_FABRIC_CONFIG
UNCHECKED = "fabric.reference-unchecked"
# Objects every Hedgehog installation has (fabricator creates them), in Git or not.
INSTALLER_DEFAULTS = ("IPv4Namespace", "VLANNamespace")


@dataclass
class Findings:
    errors: list[FabricIssue] = field(default_factory=list)
    warnings: list[FabricIssue] = field(default_factory=list)


class Check:
    """Runs the rules of one object and collects what they find."""

    def __init__(self, obj: FabricObject, index: FabricIndex, cfg: FabricConfig) -> None:
        self.obj, self.index, self.cfg = obj, index, cfg
        self.out = Findings()
        self._warned: set[str] = set()

    def error(self, rule: str, field_path: str, message: str) -> None:
        self.out.errors.append(FabricIssue(rule, field_path, message))

    def ref(self, kind: str, name: str, field_path: str, rule: str,
            what: str | None = None) -> FabricObject | None:
        """The referenced object; or an error (missing), or a warning (kind not in Git)."""
        what = what or kind
        target = self.index.get(kind, name)
        if target is not None and target.namespace == self.obj.namespace:
            return target
        failing = self.index.withdrawn.get((kind, name))
        if failing is not None:
            self.error(rule, field_path,
                       f"{what} {name!r} is defined in {failing}, which fails validation")
            return None
        installer_made = name == "default" and kind in INSTALLER_DEFAULTS
        if not self.index.holds_kind(kind) or installer_made:
            if kind not in self._warned:
                self._warned.add(kind)
                why = (f"this fabric's Git holds no {kind} objects"
                       if not self.index.holds_kind(kind)
                       else f"Hedgehog's installer creates {kind} 'default' and this "
                            "fabric's Git does not hold it")
                self.out.warnings.append(FabricIssue(
                    UNCHECKED, field_path, f"{what} {name!r} not checked: {why}",
                    target_kind=kind,
                ))
            return None
        self.error(rule, field_path, f"{what} {name!r} not found")
        return None

    def profile(self, switch: FabricObject, field_path: str, rule: str) -> Profile | None:
        """The switch's profile: a SwitchProfile in Git, else Hedgehog's built-in one."""
        name = switch.facts["profile"]
        if not name:
            return None
        own = self.index.get("SwitchProfile", name)
        if own is not None:
            return profile_from_spec(name, own.facts.get("spec") or {})
        built_in = catalog().get(name)
        if built_in is not None:
            return built_in
        if self.cfg.allow_extra_switch_profiles:
            # Profiles of one's own may live in the cluster only: an ordinary reference
            # (an error when Git holds SwitchProfiles but not this one, else a warning).
            self.ref("SwitchProfile", name, field_path, rule, "switch profile")
            return None
        # Hedgehog's default fabric config allows only its built-in profiles (the catalog is
        # known here), so an unknown name is an error even when Git holds no SwitchProfile.
        self.error(rule, field_path, f"switch profile {name!r} is neither one of Hedgehog's "
                   "built-in profiles nor a SwitchProfile in this fabric's Git")
        return None


def config_nets(cfg: FabricConfig) -> dict[str, Any]:
    """The config's hydration prefixes and addresses as ints (parsed once per config)."""
    return cfg.address_plan
