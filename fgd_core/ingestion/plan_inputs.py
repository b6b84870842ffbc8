"""What a sync plan is made from: the ``fgd.ingestion`` rules, a raw file as git holds it,
and the error a document can carry (shared by the planner and the drafting of files)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from fgd_core.ingestion.hedgehog.fabric_config import DEFAULT_FABRIC_CONFIG, FabricConfig
from fgd_core.ingestion.kinds import KindInfo
from fgd_core.ingestion.resources import ValidatedResource, validate_resource
from fgd_core.ingestion.yaml_safe import DEFAULT_LIMITS, YamlLimits

if TYPE_CHECKING:
    from fgd_core.config import FGDConfig

FileStatus = Literal["processed", "failed", "skipped"]
ARCHIVE_SUFFIX = ".archived"


@dataclass(frozen=True)
class IngestionRules:
    """The spec's ``fgd.ingestion`` settings that shape a plan."""

    max_file_size_mb: float = 10
    max_documents_per_file: int = 100
    enforce_namespaces: bool = True
    require_labels: bool = False
    supported_extensions: tuple[str, ...] = (".yaml", ".yml")
    gitops_dir: str = "gitops"
    # The spec: "Other kinds: FGD_1002, unless configured."
    extra_kinds: tuple[KindInfo, ...] = ()
    yaml_limits: YamlLimits = DEFAULT_LIMITS
    # The fabric Hedgehog's rules run under (``fgd.hedgehog`` in fgd_config.yaml).
    fabric: FabricConfig = DEFAULT_FABRIC_CONFIG
    _extra_by_kind: Mapping[str, KindInfo] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_kind = MappingProxyType({k.kind: k for k in self.extra_kinds})
        object.__setattr__(self, "_extra_by_kind", by_kind)

    # Picklable (``fgd validate`` drafts files in worker processes): the derived map is
    # rebuilt, not sent.
    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_extra_by_kind"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            object.__setattr__(self, key, value)
        self.__post_init__()

    @classmethod
    def from_config(cls, config: FGDConfig, gitops_dir: str) -> IngestionRules:
        """The rules ``fgd_config.yaml`` sets (``fgd.ingestion`` and ``fgd.hedgehog``): the
        sync's and ``fgd validate``'s, so both judge a file alike."""
        ingestion = config.ingestion
        return cls(
            max_file_size_mb=ingestion.max_file_size_mb,
            max_documents_per_file=ingestion.validation_rules.max_documents_per_file,
            enforce_namespaces=ingestion.validation_rules.enforce_namespaces,
            require_labels=ingestion.validation_rules.require_labels,
            supported_extensions=tuple(ingestion.supported_extensions),
            gitops_dir=gitops_dir,
            fabric=config.hedgehog.fabric_config(),
        )

    def validate(self, data: Mapping[Any, Any], *, canonical: bool = True) -> ValidatedResource:
        """``validate_resource`` under these rules (namespaces, labels, extra kinds)."""
        return validate_resource(
            data,
            enforce_namespaces=self.enforce_namespaces,
            require_labels=self.require_labels,
            extra_kinds=self._extra_by_kind,
            fabric=self.fabric,
            canonical=canonical,
        )

    @property
    def base(self) -> str:
        d = self.gitops_dir.strip("/")
        return f"{d}/" if d else ""

    @property
    def raw_prefix(self) -> str:
        return f"{self.base}raw/"

    @property
    def managed_prefix(self) -> str:
        return f"{self.base}managed/"


@dataclass(frozen=True)
class RawFile:
    """A raw file as the git adapter saw it (plain ``bytes`` means a regular file)."""

    content: bytes
    is_symlink: bool = False


@dataclass(frozen=True)
class IngestError:
    code: str
    message: str
    index: int | None = None  # 0-based among the file's non-empty documents
    line: int | None = None  # 1-based
    field: str | None = None
    rule: str | None = None  # the Hedgehog rule it mirrors, e.g. "vpc.subnet.vlan-required"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "index": self.index,
            "line": self.line,
            "code": self.code,
            "message": self.message,
            "field": self.field,
            "rule": self.rule,
        }
        if self.rule is not None:
            out["rule"] = self.rule
        return out


def git_blob_id(content: bytes) -> str:
    """The id git gives this content, so failures can be matched to discovered blobs."""
    return hashlib.sha1(b"blob %d\x00" % len(content) + content, usedforsecurity=False).hexdigest()
