"""GitOps layout and ingestion: pure planning (yaml_safe, kinds, resources, plan).

The git adapter (``git_repo``) applies a plan; nothing re-exported here does I/O.
"""

from fgd_core.ingestion.kinds import (
    KINDS,
    NAME_RE,
    SUPPORTED_API_VERSIONS,
    KindInfo,
    lookup_kind,
    managed_path,
    resolve_namespace,
)
from fgd_core.ingestion.plan import (
    Archive,
    FileResult,
    IngestError,
    IngestionRules,
    ManagedWrite,
    Provenance,
    RawFile,
    ResourceRef,
    SyncPlan,
    git_blob_id,
    plan_sync,
)
from fgd_core.ingestion.resources import ValidatedResource, validate_resource
from fgd_core.ingestion.yaml_safe import YamlDocument, YamlLimits, dump_document, load_documents

__all__ = [
    "KINDS",
    "NAME_RE",
    "SUPPORTED_API_VERSIONS",
    "Archive",
    "FileResult",
    "IngestError",
    "IngestionRules",
    "KindInfo",
    "ManagedWrite",
    "Provenance",
    "RawFile",
    "ResourceRef",
    "SyncPlan",
    "ValidatedResource",
    "YamlDocument",
    "YamlLimits",
    "dump_document",
    "git_blob_id",
    "load_documents",
    "lookup_kind",
    "managed_path",
    "plan_sync",
    "resolve_namespace",
    "validate_resource",
]
