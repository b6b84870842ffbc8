"""Fabric-wide validation of a sync, a directory or a set of files: ONE implementation.

``fabric_verdict`` decides which incoming raw files would break the desired fabric
(``managed/`` as the sync leaves it plus the incoming documents). The embedded planner
(``plan_sync``) and the distributed publish step call it with the same inputs, and
``fgd validate`` calls ``plan_sync`` itself. A file whose documents break the fabric does
not land; it is then taken out of the desired fabric and the rest is checked again, so a
file that depends on a failing one fails too (naming it) and two new files that collide
with each other both fail. ``check_fabric`` checks every object of a fabric at once
(directory validation: a ``managed/`` tree broken by hand).

Only the incoming objects are checked during a sync (plus the managed objects that refer
to an object the sync replaces, blamed only for findings the replacement causes), each
with indexed lookups, so one new file costs the same in a fabric of 10 or 10,000 objects.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from fgd_core.errors import FGDError
from fgd_core.ingestion.hedgehog.fabric_index import (
    FabricIndex,
    FabricObject,
    Key,
    object_facts,
    references,
)
from fgd_core.ingestion.hedgehog.fabric_rules import (
    DEFAULT_CONFIG,
    FabricConfig,
    FabricIssue,
    Findings,
    check_object,
    update_findings,
)
from fgd_core.ingestion.kinds import DEFAULT_NAMESPACE, KINDS
from fgd_core.ingestion.yaml_safe import iter_documents

# The index of managed/ as the sync found them, lent for a ``with`` block, only when a
# check needs it (``fabric_tree.managed_index`` for a git snapshot, ``fabric_of_objects``).
ManagedFabric = Callable[[], AbstractContextManager[FabricIndex]]


def fabric_of_objects(objects: Iterable[FabricObject]) -> ManagedFabric:
    """A ManagedFabric of plain objects (files on disk, tests)."""
    def fabric() -> AbstractContextManager[FabricIndex]:
        index = FabricIndex.of(objects)
        index.disposable = True
        return nullcontext(index)

    return fabric


@dataclass
class FileVerdict:
    """What the fabric-wide checks found in one incoming file: (object, issue) pairs."""

    errors: list[tuple[FabricObject, FabricIssue]] = field(default_factory=list)
    warnings: list[tuple[FabricObject, FabricIssue]] = field(default_factory=list)


def warning_lines(verdict: FileVerdict) -> list[str]:
    """A file's fabric-wide warnings as the sync records them: one line per kind whose
    references could not be checked, naming the documents ("document 3: …",
    "documents 0, 2: …"), so 50 VPCs in a file make two warnings, not a hundred."""
    by_kind: dict[str, list[tuple[FabricObject, FabricIssue]]] = defaultdict(list)
    for obj, issue in verdict.warnings:
        by_kind[issue.target_kind or issue.message].append((obj, issue))
    lines = []
    for kind, found in by_kind.items():
        indexes = sorted({o.index for o, _ in found if o.index is not None})
        if len(found) == 1 or len(indexes) <= 1:
            obj, issue = found[0]
            lines.append(f"document {obj.index}: {issue.message} ({issue.rule})")
        else:
            lines.append(f"documents {', '.join(map(str, indexes))}: references to {kind} not "
                         f"checked: {found[0][1].message.split(': ', 1)[-1]} "
                         f"({found[0][1].rule})")
    return lines


def _signature(issue: FabricIssue) -> tuple[str, str, str]:
    return (issue.rule, issue.field, issue.message)


def _dependents(index: FabricIndex, key: Key, depth: int = 2) -> set[Key]:
    """Objects that refer to ``key``, directly or through one more object (an attachment
    depends on its connection's switches)."""
    out: set[Key] = set()
    frontier = {key}
    for _ in range(depth):
        nxt: set[Key] = set()
        for k in frontier:
            nxt |= index.referrers.get(k, set())
        nxt -= out
        out |= nxt
        frontier = nxt
    return out


def fabric_verdict(
    managed: FabricIndex | Iterable[FabricObject],
    incoming: Mapping[str, list[FabricObject]],
    cfg: FabricConfig = DEFAULT_CONFIG,
) -> dict[str, FileVerdict]:
    """Per incoming file, the fabric-wide errors and warnings of its documents.

    ``managed``: the fabric of ``managed/`` before the sync (an index is changed while
    the verdict is made and given back as it was). ``incoming``: raw path → the valid
    documents of that file (files that already fail on their own are left out).
    """
    if not isinstance(managed, FabricIndex):
        managed = FabricIndex.of(managed)
        managed.disposable = True
    index = managed
    replaced: dict[Key, FabricObject] = {}
    verdicts: dict[str, FileVerdict] = {}
    try:
        verdicts = _verdict(index, incoming, cfg, replaced)
        return verdicts
    finally:
        if not index.disposable:
            _give_back(index, incoming, replaced, verdicts)


def _give_back(index: FabricIndex, incoming: Mapping[str, list[FabricObject]],
               replaced: dict[Key, FabricObject], verdicts: dict[str, FileVerdict]) -> None:
    """Give a shared index back as it was — except that the objects of files that pass
    stay when the index follows a git tree (``landing``): the sync is about to write them."""
    landing = index.landing
    for path, objs in incoming.items():
        lands = landing is not None and path in verdicts and not verdicts[path].errors
        for obj in objs:
            index.withdrawn.pop(obj.key, None)
            if landing is not None and lands and obj.landing_at is not None:
                landing(obj)
            else:
                index.remove(obj)
    for old in replaced.values():
        if old.key not in index.objects:
            index.add(old)


def _verdict(
    index: FabricIndex,
    incoming: Mapping[str, list[FabricObject]],
    cfg: FabricConfig,
    replaced: dict[Key, FabricObject],
) -> dict[str, FileVerdict]:
    incoming_keys = {o.key: path for path, objs in incoming.items() for o in objs}
    # Managed objects whose checks an incoming replacement could change: their findings
    # before the sync are the baseline, so only what the replacement causes is blamed.
    dependents: dict[Key, set[str]] = defaultdict(set)
    for key, path in incoming_keys.items():
        if key in index.objects:
            for dep in _dependents(index, key):
                if dep not in incoming_keys and dep in index.objects:
                    dependents[dep].add(path)
    baseline = {
        dep: {_signature(i) for i in check_object(index.objects[dep], index, cfg).errors}
        for dep in dependents
    }
    for objs in incoming.values():
        for obj in objs:
            old = index.add(obj)
            if old is not None and old.key not in replaced:
                replaced[obj.key] = old

    verdicts = {path: FileVerdict() for path in incoming}
    alive = set(incoming)
    while alive:
        round_: dict[str, FileVerdict] = {path: FileVerdict() for path in alive}
        for path in sorted(alive):
            for obj in incoming[path]:
                found = check_object(obj, index, cfg)
                old = replaced.get(obj.key)
                if old is not None:
                    found.errors.extend(update_findings(old, obj))
                round_[path].errors += [(obj, e) for e in found.errors]
                round_[path].warnings += [(obj, w) for w in found.warnings]
        for dep, paths in dependents.items():
            blamed = sorted(paths & alive)
            dep_obj = index.objects.get(dep)
            if not blamed or dep_obj is None:
                continue
            needs = _depends_on(index, dep_obj)
            for issue in check_object(dep_obj, index, cfg).errors:
                if _signature(issue) in baseline[dep]:
                    continue
                for path in blamed:
                    culprit = next((o for o in incoming[path] if o.key in needs),
                                   incoming[path][0])
                    round_[path].errors.append((culprit, FabricIssue(
                        issue.rule, "spec",
                        f"this change breaks {dep_obj.kind} {dep_obj.name!r} "
                        f"({dep_obj.source}): {issue.message}",
                    )))
        verdicts.update(round_)
        failing = {path for path, v in round_.items() if v.errors}
        if not failing:
            break
        alive -= failing
        for path in sorted(failing):
            for obj in incoming[path]:
                index.remove(obj)
                index.withdrawn[obj.key] = path
                if obj.key in replaced:
                    index.add(replaced[obj.key])  # the managed version stays
    return verdicts


def _depends_on(index: FabricIndex, obj: FabricObject) -> set[Key]:
    """The objects ``obj`` refers to, directly or through one more object."""
    direct = set(references(obj))
    out = set(direct)
    for key in direct:
        target = index.objects.get(key)
        if target is not None:
            out.update(references(target))
    return out


def check_fabric(
    objects: Iterable[FabricObject], cfg: FabricConfig = DEFAULT_CONFIG
) -> dict[FabricObject, Findings]:
    """Every object's fabric-wide findings (objects without any are left out)."""
    index = FabricIndex.of(objects)
    out: dict[FabricObject, Findings] = {}
    for obj in list(index.objects.values()):
        found = check_object(obj, index, cfg)
        if found.errors or found.warnings:
            out[obj] = found
    return out


# ------------------------------------------------------------ objects from managed files

# Facts of managed contents by git blob id: content-addressed, so never stale. The planner
# adds what it writes, so the next sync (or the publish step) finds the fabric it left.
_FACTS_BY_BLOB: dict[str, tuple[str, str, str, dict[str, Any]] | None] = {}
_FACTS_CACHE_LIMIT = 50_000  # ~1 KB each; the tree indexes keep their own objects
DIRECTORY_KINDS = {info.directory: info.kind for info in KINDS.values()}


def remember_facts(blob_id: str, kind: str, name: str, namespace: str,
                   facts: dict[str, Any]) -> None:
    if len(_FACTS_BY_BLOB) >= _FACTS_CACHE_LIMIT:
        _FACTS_BY_BLOB.clear()
    _FACTS_BY_BLOB[blob_id] = (kind, name, namespace, facts)


def facts_of_content(content: bytes) -> tuple[str, str, str, dict[str, Any]] | None:
    """(kind, name, namespace, facts) of a managed file's content (one document), or None
    when it is not a readable object of a known kind (directory validation reports that)."""
    try:
        docs = list(iter_documents(content))
    except FGDError:
        return None
    if len(docs) != 1:
        return None
    data = docs[0].data
    kind = data.get("kind")
    meta = data.get("metadata")
    if not isinstance(kind, str) or kind not in KINDS or not isinstance(meta, Mapping):
        return None
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        return None
    namespace = meta.get("namespace")
    ns = namespace if isinstance(namespace, str) and namespace else DEFAULT_NAMESPACE
    return (kind, name, ns, object_facts(kind, data.get("spec")))


def facts_for_blob(
    blob_id: str, read: Callable[[str], bytes]
) -> tuple[str, str, str, dict[str, Any]] | None:
    """``facts_of_content`` of a blob, from the cache when this process has seen it."""
    if blob_id in _FACTS_BY_BLOB:
        return _FACTS_BY_BLOB[blob_id]
    try:
        hit = facts_of_content(read(blob_id))
    except (KeyError, OSError):
        hit = None
    if len(_FACTS_BY_BLOB) >= _FACTS_CACHE_LIMIT:
        _FACTS_BY_BLOB.clear()
    _FACTS_BY_BLOB[blob_id] = hit
    return hit


def managed_objects(
    entries: Iterable[tuple[str, str]],
    read: Callable[[str], bytes],
    managed_prefix: str,
) -> list[FabricObject]:
    """The objects of ``managed/``: ``entries`` are (path, blob id) of its files, ``read``
    gives a blob's bytes (only for blobs the cache has not seen)."""
    out: list[FabricObject] = []
    for path, blob_id in entries:
        rel = path[len(managed_prefix):] if path.startswith(managed_prefix) else path
        directory, _, filename = rel.partition("/")
        if directory not in DIRECTORY_KINDS or "/" in filename or not filename.endswith(
            (".yaml", ".yml")
        ):
            continue
        hit = facts_for_blob(blob_id, read)
        if hit is None or hit[0] != DIRECTORY_KINDS[directory]:
            continue
        kind, name, namespace, facts = hit
        out.append(FabricObject(kind, name, namespace, facts, source=path, index=0, line=1))
    return out


def tree_errors(objects: Iterable[FabricObject], cfg: FabricConfig = DEFAULT_CONFIG
                ) -> list[tuple[FabricObject, FabricIssue]]:
    """A whole fabric's errors, by source file (directory validation). References to a
    kind Git holds none of are left out: that is how such a repository is meant to be."""
    out: list[tuple[FabricObject, FabricIssue]] = []
    for obj, found in sorted(check_fabric(objects, cfg).items(), key=lambda i: i[0].source):
        out += [(obj, e) for e in found.errors]
    return out
