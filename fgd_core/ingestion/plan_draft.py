"""Drafting a sync's raw files: every rule a sync applies — per document, across files
(two definitions of one resource) and across the fabric (Hedgehog's fabric-wide rules) —
without deciding any write. ``plan_sync`` plans from the drafts; ``fgd validate`` reports
them."""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fgd_core.errors import FGDError, FGDErrorCodes
from fgd_core.ingestion.hedgehog.fabric_check import (
    ManagedFabric,
    fabric_verdict,
    remember_facts,
    warning_lines,
)
from fgd_core.ingestion.hedgehog.fabric_index import FabricObject, object_facts
from fgd_core.ingestion.kinds import managed_path
from fgd_core.ingestion.plan_inputs import (
    ARCHIVE_SUFFIX,
    FileStatus,
    IngestError,
    IngestionRules,
    RawFile,
    git_blob_id,
)
from fgd_core.ingestion.resources import ValidatedResource
from fgd_core.ingestion.yaml_safe import dump_document, iter_documents


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
                res = rules.validate(doc.data, canonical=dump)
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
    with collector_paused():
        drafts = list(map_files(_draft_item, items))
        _mark_conflicts([d for d in drafts if d.status is None])
        if managed_fabric is not None:
            _mark_fabric_breakers([d for d in drafts if d.status is None and not d.errors],
                                  managed_fabric, rules)
    return drafts


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while files are drafted.

    Drafting builds millions of short-lived containers (YAML nodes, documents) and keeps
    thousands (facts, claims), so the collector ran over and over — about 10 % of a
    10,000-resource plan — and found nothing: drafting makes no reference cycles (a
    10,000-resource plan with the collector off leaves none to collect). Reference counting
    frees everything as before; the collector runs again afterwards, and is left off if
    someone else had turned it off.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
