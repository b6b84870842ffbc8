"""The ingestion planner: raw files in, a SyncPlan out. Pure: no I/O, no clock, no randomness.

The git adapter reads the tree, calls ``plan_sync`` and applies the plan in one commit; the
dry-run / ``validate_only`` answer is the very same plan, just not applied. DESIGN.md's
"Ingestion rules" in short: one managed path per resource, a raw file lands whole or not
at all, two definitions of one resource in a sync are a conflict on every file involved,
hostile input changes nothing, and an unchanged failed file is not re-failed every sync.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from fgd_core.errors import FGDError, FGDErrorCodes
from fgd_core.gitops.hedgehog.fabric_check import (
    ManagedFabric,
    fabric_verdict,
    remember_facts,
    warning_lines,
)
from fgd_core.gitops.hedgehog.fabric_config import DEFAULT_FABRIC_CONFIG, FabricConfig
from fgd_core.gitops.hedgehog.fabric_index import FabricObject, object_facts
from fgd_core.gitops.kinds import KindInfo, managed_path
from fgd_core.gitops.resources import ValidatedResource, validate_resource
from fgd_core.gitops.yaml_safe import DEFAULT_LIMITS, YamlLimits, dump_document, iter_documents

if TYPE_CHECKING:
    from fgd_core.config import FGDConfig

FileStatus = Literal["processed", "failed", "skipped"]
WriteAction = Literal["create", "update", "unchanged"]
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
    # DESIGN.md: "Other kinds: FGD_1002, unless configured."
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

    def validate(self, data: Mapping[Any, Any]) -> ValidatedResource:
        """``validate_resource`` under these rules (namespaces, labels, extra kinds)."""
        return validate_resource(
            data,
            enforce_namespaces=self.enforce_namespaces,
            require_labels=self.require_labels,
            extra_kinds=self._extra_by_kind,
            fabric=self.fabric,
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


@dataclass(frozen=True)
class ResourceRef:
    kind: str
    name: str
    managed_path: str
    document_index: int


@dataclass(frozen=True)
class FileResult:
    path: str
    status: FileStatus
    content_id: str  # git blob id of the content (what discovery records)
    documents_found: int = 0
    documents_extracted: int = 0  # documents that landed (0 unless processed)
    target_files: tuple[str, ...] = ()
    resources: tuple[ResourceRef, ...] = ()
    errors: tuple[IngestError, ...] = ()
    warnings: tuple[str, ...] = ()
    archived_to: str | None = None
    # Managed paths the file's valid documents define, kept for a FAILED file too: they
    # still take part in the cross-file conflict check (a distributed sync needs them).
    claimed: tuple[str, ...] = ()

    @property
    def error_message(self) -> str:
        return "; ".join(e.message for e in self.errors)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file_path": self.path,
            "status": self.status,
            "content_id": self.content_id,
            "documents_found": self.documents_found,
            "documents_extracted": self.documents_extracted,
            "target_files": list(self.target_files),
            "resources": [{"kind": r.kind, "name": r.name} for r in self.resources],
            "errors": [e.to_dict() for e in self.errors],
            "warnings": list(self.warnings),
            "archived_to": self.archived_to,
        }


@dataclass(frozen=True)
class ManagedWrite:
    path: str
    content: bytes
    action: WriteAction
    kind: str
    name: str


@dataclass(frozen=True)
class Archive:
    raw_path: str
    archived_path: str


@dataclass(frozen=True)
class Provenance:
    """One manifest entry: where a managed file's content came from."""

    managed_path: str
    raw_path: str
    document_index: int
    sync_id: str
    kind: str
    name: str
    raw_content_id: str


@dataclass(frozen=True)
class SyncPlan:
    sync_id: str
    files: tuple[FileResult, ...]
    writes: tuple[ManagedWrite, ...]
    archives: tuple[Archive, ...]
    provenance: tuple[Provenance, ...]
    # path → content id of files whose failure lies in the file itself; the caller persists
    # this and passes it back as ``failed_before``. Files that failed only because another
    # file defines the same resource are left out: fixing the other file must retry them.
    failures_to_record: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def file(self, path: str) -> FileResult:
        return next(f for f in self.files if f.path == path)

    @property
    def changed_writes(self) -> tuple[ManagedWrite, ...]:
        return tuple(w for w in self.writes if w.action != "unchanged")

    def summary(self) -> dict[str, int]:
        count = {
            s: sum(f.status == s for f in self.files) for s in ("processed", "failed", "skipped")
        }
        return {
            "files_processed": count["processed"],
            "files_failed": count["failed"],
            "files_skipped": count["skipped"],
            "files_created": sum(w.action == "create" for w in self.writes),
            "files_updated": sum(w.action == "update" for w in self.writes),
            "files_unchanged": sum(w.action == "unchanged" for w in self.writes),
            "errors": sum(len(f.errors) for f in self.files),
            "warnings": sum(len(f.warnings) for f in self.files),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dry-run answer (managed contents as sha256, not bytes)."""
        return {
            "sync_id": self.sync_id,
            "summary": self.summary(),
            "files": [f.to_dict() for f in self.files],
            "writes": [
                {
                    "path": w.path,
                    "action": w.action,
                    "kind": w.kind,
                    "name": w.name,
                    "sha256": hashlib.sha256(w.content).hexdigest(),
                }
                for w in self.writes
            ],
            "archives": [
                {"raw_path": a.raw_path, "archived_to": a.archived_path} for a in self.archives
            ],
            "provenance": [vars(p) for p in self.provenance],
        }


def git_blob_id(content: bytes) -> str:
    """The id git gives this content, so failures can be matched to discovered blobs."""
    return hashlib.sha1(b"blob %d\x00" % len(content) + content, usedforsecurity=False).hexdigest()


# ------------------------------------------------------------------------------ planning


@dataclass
class _Claim:
    """A valid document that wants a managed path."""

    raw_path: str
    index: int
    line: int
    kind: str
    name: str
    path: str
    # The managed file's bytes, dumped as soon as the document is valid: a plan keeps
    # bytes, not thousands of document trees. (``resource`` is kept only if that dump
    # failed, so that it fails again, as before, where the plan writes the file.)
    content: bytes | None
    resource: ValidatedResource | None = None
    fabric_object: FabricObject | None = None  # its facts, for the fabric-wide checks

    def managed_content(self) -> bytes:
        if self.content is None:
            assert self.resource is not None
            return dump_document(self.resource.normalized)
        return self.content


@dataclass
class _Draft:
    path: str
    content_id: str
    status: FileStatus | None = None  # None: undecided until conflicts are known
    documents_found: int = 0
    claims: list[_Claim] = field(default_factory=list)
    errors: list[IngestError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    intrinsic_failure: bool = False
    # (index, line, kind, name) of every document read, valid or not (``fgd validate``)
    documents: list[tuple[int, int, Any, Any]] = field(default_factory=list)


FileDraft = _Draft  # what ``draft_files`` returns


def _v(message: str, **kw: Any) -> IngestError:
    return IngestError(FGDErrorCodes.VALIDATION_FAILED, message, **kw)


def _path_problem(path: str, rules: IngestionRules) -> str | None:
    parts = path.split("/")
    if (
        not path
        or path.startswith("/")
        or "\\" in path
        or "\x00" in path
        or any(p in ("", ".", "..") for p in parts)
    ):
        return f"path {path!r} is not a clean repository-relative path"
    if not path.startswith(rules.raw_prefix):
        return f"path {path!r} is outside {rules.raw_prefix}"
    return None


def _draft_file(
    path: str, raw: RawFile, failed_before: Mapping[str, str], rules: IngestionRules,
    dump: bool = True,
) -> _Draft:
    draft = _Draft(path=path, content_id=git_blob_id(raw.content))

    def fail(error: IngestError) -> _Draft:
        draft.errors.append(error)
        draft.status, draft.intrinsic_failure, draft.claims = "failed", True, []
        return draft

    problem = _path_problem(path, rules)
    if problem:
        return fail(_v(problem))
    if path.endswith(ARCHIVE_SUFFIX) or not path.lower().endswith(rules.supported_extensions):
        what = "already archived" if path.endswith(ARCHIVE_SUFFIX) else "unsupported extension"
        draft.status = "skipped"
        supported = ", ".join(rules.supported_extensions)
        draft.warnings.append(f"skipped: {what} (supported: {supported})")
        return draft
    if failed_before.get(path) == draft.content_id:
        draft.status = "skipped"
        draft.warnings.append(
            "skipped: unchanged since it failed in an earlier sync; edit it to retry"
        )
        return draft
    if raw.is_symlink:
        return fail(_v("symlinks are not ingested (the target could be anywhere)"))
    limit = int(rules.max_file_size_mb * 1024 * 1024)
    if len(raw.content) > limit:
        return fail(_v(f"file is {len(raw.content)} bytes, over max_file_size_mb ({limit} bytes)"))

    try:
        for doc in iter_documents(raw.content, rules.yaml_limits):
            draft.documents_found += 1
            meta = doc.data.get("metadata")
            draft.documents.append((doc.index, doc.line, doc.data.get("kind"),
                                    meta.get("name") if isinstance(meta, Mapping) else None))
            if draft.documents_found > rules.max_documents_per_file:
                return fail(
                    _v(
                        f"more than max_documents_per_file ({rules.max_documents_per_file}) "
                        "documents",
                        index=doc.index,
                        line=doc.line,
                    )
                )
            try:
                res = rules.validate(doc.data)
            except FGDError as exc:
                draft.intrinsic_failure = True
                for issue in exc.details.get("issues") or [exc.details]:
                    loc = issue.get("path") or ([issue["field"]] if issue.get("field") else [])
                    draft.errors.append(
                        IngestError(
                            exc.code,
                            issue.get("message", exc.message),
                            index=doc.index,
                            line=doc.line_of(loc),
                            field=issue.get("field"),
                            rule=issue.get("rule"),
                        )
                    )
                continue
            draft.warnings.extend(f"document {doc.index}: {w}" for w in res.warnings)
            mpath = managed_path(rules.gitops_dir, res.info, res.name)
            try:
                content: bytes | None = dump_document(res.normalized) if dump else None
            except Exception:  # noqa: BLE001 — raised again where the plan writes it
                content = None
            if res.defaulted_spec is not None:
                facts = object_facts(res.info.kind, res.defaulted_spec, defaulted=True)
            else:
                facts = object_facts(res.info.kind, res.normalized.get("spec"))
            obj = FabricObject(res.info.kind, res.name, res.namespace, facts, path,
                               doc.index, doc.line)
            if content is not None:  # the next sync finds the fabric this one leaves
                blob = git_blob_id(content)
                obj.landing_at = (mpath, blob)
                remember_facts(blob, obj.kind, obj.name, obj.namespace, facts)
            draft.claims.append(
                _Claim(
                    path,
                    doc.index,
                    doc.line,
                    res.info.kind,
                    res.name,
                    mpath,
                    content,
                    None if content is not None or not dump else res,
                    obj,
                )
            )
    except FGDError as exc:  # InvalidYAMLError: the file cannot be trusted as a whole
        d = exc.details
        return fail(IngestError(exc.code, exc.message, index=d.get("index"), line=d.get("line")))
    return draft


def _archive_name(raw_path: str, taken: set[str], managed: Mapping[str, bytes]) -> str:
    # The spec's "<file>.archived"; if a sync already archived a file of that name, keep
    # both (lossless): "<file>.1.archived", "<file>.2.archived", …
    candidate, n = raw_path + ARCHIVE_SUFFIX, 0
    while candidate in taken or candidate in managed:
        n += 1
        candidate = f"{raw_path}.{n}{ARCHIVE_SUFFIX}"
    taken.add(candidate)
    return candidate


def _mark_conflicts(drafts: list[_Draft]) -> None:
    by_path: dict[str, list[tuple[_Draft, _Claim]]] = defaultdict(list)
    for draft in drafts:
        for claim in draft.claims:
            by_path[claim.path].append((draft, claim))
    for mpath, claims in sorted(by_path.items()):
        if len(claims) < 2:
            continue
        for draft, claim in claims:
            others = [
                f"document {c.index} (line {c.line})" + ("" if d is draft else f" of {d.path}")
                for d, c in claims
                if c is not claim
            ]
            draft.errors.append(
                _v(
                    f"conflict: {claim.kind} {claim.name!r} ({mpath}) is also defined by "
                    f"{', '.join(others)}; nothing from this file is written",
                    index=claim.index,
                    line=claim.line,
                    field="metadata.name",
                )
            )
            if any(d is draft for d, c in claims if c is not claim):
                draft.intrinsic_failure = True  # a duplicate inside the file itself


def _mark_fabric_breakers(drafts: list[_Draft], managed_fabric: ManagedFabric,
                          rules: IngestionRules) -> None:
    """Fail the files whose documents would break the desired fabric (not intrinsic: the
    verdict depends on other files and on managed/, so the file is retried next sync)."""
    incoming = {
        d.path: [c.fabric_object for c in d.claims if c.fabric_object is not None]
        for d in drafts
    }
    incoming = {path: objs for path, objs in incoming.items() if objs}
    if not incoming:
        return
    with managed_fabric() as index:
        verdicts = fabric_verdict(index, incoming, rules.fabric)
    for d in drafts:
        verdict = verdicts.get(d.path)
        if verdict is None:
            continue
        for obj, issue in verdict.errors:
            d.errors.append(IngestError(issue.code, f"{obj.kind} {obj.name!r}: {issue.message}",
                                        index=obj.index, line=obj.line, field=issue.field,
                                        rule=issue.rule))
        d.warnings.extend(warning_lines(verdict))


def _draft_item(item: tuple[str, RawFile, Mapping[str, str], IngestionRules, bool]) -> _Draft:
    path, raw = item[0], item[1]
    try:
        return _draft_file(*item)
    except Exception as exc:  # noqa: BLE001 — one bad file must not sink the sync
        d = _Draft(path=path, content_id=git_blob_id(raw.content), status="failed")
        d.errors.append(
            IngestError(FGDErrorCodes.INTERNAL_ERROR, f"internal error: {type(exc).__name__}")
        )
        return d


def draft_files(
    raw_files: Mapping[str, bytes | RawFile],
    failed_before: Mapping[str, str],
    rules: IngestionRules,
    managed_fabric: ManagedFabric | None = None,
    *,
    dump: bool = True,
    map_files: Callable[..., Iterable[_Draft]] = map,
) -> list[_Draft]:
    """Every rule a sync applies to its raw files — per document, across files (conflicts)
    and across the fabric — without deciding any write. ``plan_sync`` plans from these;
    ``fgd validate`` reports them (``dump=False``: no managed file is produced; its
    ``map_files`` drafts the files in worker processes, each file on its own as always)."""
    items = []
    for path in sorted(raw_files):
        item = raw_files[path]
        raw = item if isinstance(item, RawFile) else RawFile(bytes(item))
        items.append((path, raw, failed_before, rules, dump))
    drafts = list(map_files(_draft_item, items))
    _mark_conflicts([d for d in drafts if d.status is None])
    if managed_fabric is not None:
        _mark_fabric_breakers([d for d in drafts if d.status is None and not d.errors],
                              managed_fabric, rules)
    return drafts


def plan_sync(
    raw_files: Mapping[str, bytes | RawFile],
    managed_files: Mapping[str, bytes],
    existing_paths: Collection[str],
    failed_before: Mapping[str, str],
    sync_id: str,
    rules: IngestionRules | None = None,
    managed_fabric: ManagedFabric | None = None,
) -> SyncPlan:
    """Plan one sync.

    ``raw_files``: repo-relative path → content (``RawFile`` to flag a symlink).
    ``managed_files``: current managed path → content (decides create/update/unchanged).
    ``existing_paths``: every path in the tree (archive names must not overwrite any).
    ``failed_before``: path → content id of files that failed earlier (see
    ``SyncPlan.failures_to_record``); such a file, unchanged, is skipped with a warning.
    ``managed_fabric``: the objects of ``managed/`` (called once, only if needed); given,
    the fabric-wide checks run and a file that would break the fabric fails. Left out
    (one file planned alone by a distributed worker), the publish step runs them.
    """
    rules = rules or IngestionRules()
    drafts = draft_files(raw_files, failed_before, rules, managed_fabric)

    # ``managed_files`` may be a lazy view of a large tree (``Snapshot.blobs``): it is only
    # ever asked about paths this plan writes or archives to, never listed.
    taken = set(existing_paths) | set(raw_files)
    files: list[FileResult] = []
    writes: list[ManagedWrite] = []
    archives: list[Archive] = []
    provenance: list[Provenance] = []
    failures: dict[str, str] = {}
    for d in drafts:
        if d.status is None:
            d.status = "failed" if d.errors else "processed"
        if d.status == "failed" and d.intrinsic_failure:
            failures[d.path] = d.content_id
        if d.status != "processed":
            files.append(
                FileResult(
                    d.path,
                    d.status,
                    d.content_id,
                    d.documents_found,
                    0,
                    errors=tuple(d.errors),
                    warnings=tuple(d.warnings),
                    claimed=tuple(c.path for c in d.claims) if d.status == "failed" else (),
                )
            )
            continue
        refs = []
        for c in d.claims:
            content = c.managed_content()
            current = managed_files.get(c.path)
            action: WriteAction = (
                "create" if current is None else "unchanged" if current == content else "update"
            )
            kind, name = c.kind, c.name
            writes.append(ManagedWrite(c.path, content, action, kind, name))
            provenance.append(
                Provenance(c.path, d.path, c.index, sync_id, kind, name, d.content_id)
            )
            refs.append(ResourceRef(kind, name, c.path, c.index))
        archived = _archive_name(d.path, taken, managed_files)
        archives.append(Archive(d.path, archived))
        files.append(
            FileResult(
                d.path,
                "processed",
                d.content_id,
                d.documents_found,
                len(d.claims),
                target_files=tuple(r.managed_path for r in refs),
                resources=tuple(refs),
                warnings=tuple(d.warnings),
                archived_to=archived,
            )
        )
    return SyncPlan(
        sync_id=sync_id,
        files=tuple(files),
        writes=tuple(sorted(writes, key=lambda w: w.path)),
        archives=tuple(archives),
        provenance=tuple(sorted(provenance, key=lambda p: p.managed_path)),
        failures_to_record=MappingProxyType(failures),
    )
