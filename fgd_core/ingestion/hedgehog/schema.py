"""The CRD schema of each kind, as pydantic models: field types, enums, bounds, required
fields and list sizes (the ``+kubebuilder:validation`` markers) — what the Kubernetes API
server checks before Hedgehog's webhooks run.

Types follow Hedgehog's Go structs: ``uint16`` fields take 0-65535, strings must be strings,
booleans booleans (no "yes" for true). Unknown fields are kept and never an error (Hedgehog
adds fields per release). Value rules (is this a prefix, is the gateway inside it …) are
not here but in the per-kind rule modules, which see the defaulted spec.
"""

from __future__ import annotations

from fgd_core.ingestion.hedgehog.schema_types import Spec
from fgd_core.ingestion.hedgehog.vpc_schema import (
    ExternalAttachmentSpec,
    ExternalPeeringSpec,
    ExternalSpec,
    IPv4NamespaceSpec,
    VPCAttachmentSpec,
    VPCPeeringSpec,
    VPCSpec,
)
from fgd_core.ingestion.hedgehog.wiring_schema import (
    ConnectionSpec,
    ServerSpec,
    SwitchProfileSpec,
    SwitchSpec,
    VLANNamespaceSpec,
)

__all__ = ["SPECS", "SPEC_REQUIRED", "AnySpec", "Spec"]


class AnySpec(Spec):
    """Kinds without a schema beyond metadata (SwitchGroup, ServerProfile, extra kinds)."""


SPECS: dict[str, type[Spec]] = {
    "VPC": VPCSpec,
    "VPCAttachment": VPCAttachmentSpec,
    "VPCPeering": VPCPeeringSpec,
    "External": ExternalSpec,
    "ExternalAttachment": ExternalAttachmentSpec,
    "ExternalPeering": ExternalPeeringSpec,
    "IPv4Namespace": IPv4NamespaceSpec,
    "Connection": ConnectionSpec,
    "Server": ServerSpec,
    "Switch": SwitchSpec,
    "SwitchGroup": AnySpec,
    "VLANNamespace": VLANNamespaceSpec,
    "SwitchProfile": SwitchProfileSpec,
    "ServerProfile": AnySpec,
}
# A missing spec is validated as an empty one: Hedgehog then refuses e.g. a VPC without
# subnets and accepts a SwitchGroup or Server without a spec.
SPEC_REQUIRED: frozenset[str] = frozenset()
