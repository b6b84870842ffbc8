"""``fgd validate PATH… [--json]``: Hedgehog's rules on files, offline, for CI and pre-commit.

No database, no repository, no server: the files are read from disk and go through the
sync's own planner (``draft_files``: per-document rules, cross-file conflicts, fabric-wide
rules). A GitOps directory (holding ``managed/`` and/or ``raw/``) is one fabric, exactly
as a sync sees it: ``managed/`` is the fabric, ``raw/`` the incoming files. Plain files
(and directories of them) given together are validated as one set. Exit 0 when every
document is valid, 1 when any is not, 2 on usage errors.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import re
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from fgd_core.ingestion.hedgehog.fabric_check import check_fabric, fabric_of_objects
from fgd_core.ingestion.hedgehog.fabric_index import FabricObject
from fgd_core.ingestion.kinds import KINDS
from fgd_core.ingestion.plan import FileDraft, IngestionRules, RawFile, draft_files

EXTENSIONS = (".yaml", ".yml")
_DOC_PREFIX = re.compile(r"^documents? (\d+(?:, \d+)*): ")
_KIND_DIRS = {info.directory for info in KINDS.values()}


@dataclass
class _Report:
    """One file's verdict, document by document."""

    file: str
    documents: dict[int | None, dict[str, Any]] = field(default_factory=dict)

    def doc(self, index: int | None, line: int | None = None) -> dict[str, Any]:
        if index not in self.documents:
            self.documents[index] = {"index": index, "line": line, "kind": None, "name": None,
                                     "valid": True, "errors": [], "warnings": []}
        return self.documents[index]

    def error(self, index: int | None, line: int | None, entry: dict[str, Any]) -> None:
        d = self.doc(index, line)
        d["valid"] = False
        d["errors"].append(entry)

    def to_dict(self) -> dict[str, Any]:
        docs = sorted(self.documents.values(),
                      key=lambda d: -1 if d["index"] is None else d["index"])
        return {"file": self.file, "valid": all(d["valid"] for d in docs), "documents": docs}


# Worth worker processes from this much YAML on: each file is drafted on its own anyway
# (parse, per-document rules), only conflicts and the fabric-wide rules need them together.
PARALLEL_MIN_BYTES = 512 * 1024


@contextmanager
def _file_mapper(files: dict[str, RawFile]) -> Iterator[Callable[..., Iterable[FileDraft]]]:
    """``map``, or a process pool's map when there is enough to share among the CPUs."""
    workers = min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                  else (os.cpu_count() or 1), 8)
    size = sum(len(f.content) for f in files.values())
    if workers < 2 or len(files) < 2 * workers or size < PARALLEL_MIN_BYTES:
        yield map
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        def pooled(fn: Callable[..., FileDraft], items: list[Any]) -> Iterable[FileDraft]:
            return pool.map(fn, items, chunksize=max(1, len(items) // (workers * 4)))

        yield pooled


def _draft(files: dict[str, RawFile], rules: IngestionRules, fabric: Any) -> list[FileDraft]:
    with _file_mapper(files) as mapper:
        return draft_files(files, {}, rules, fabric, dump=False, map_files=mapper)


def _read(path: Path) -> RawFile:
    if path.is_symlink():
        return RawFile(b"", is_symlink=True)
    return RawFile(path.read_bytes())


def _yaml_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix in EXTENSIONS
                  and (p.is_file() or p.is_symlink()))


def _report_drafts(drafts: Iterable[FileDraft], names: dict[str, str]) -> list[_Report]:
    out = []
    for d in drafts:
        report = _Report(names[d.path])
        for index, line, kind, name in d.documents:
            doc = report.doc(index, line)
            doc["kind"] = kind if isinstance(kind, str) else None
            doc["name"] = name if isinstance(name, str) else None
        for e in d.errors:
            entry = {"code": e.code, "field": e.field, "rule": e.rule, "message": e.message}
            report.error(e.index, e.line, entry)
        for w in d.warnings:
            m = _DOC_PREFIX.match(w)
            at: list[int | None] = [int(i) for i in m.group(1).split(", ")] if m else [None]
            for doc_index in at:
                report.doc(doc_index)["warnings"].append({"message": w[m.end():] if m else w})
        out.append(report)
    return out


def _gitops_dir(root: Path, rules: IngestionRules) -> list[_Report]:
    """A GitOps directory, as a sync sees it: managed/ is the fabric, raw/ comes in."""
    managed_dir, raw_dir = root / "managed", root / "raw"
    managed_paths = [p for p in _yaml_files(managed_dir)
                     if p.parent.parent == managed_dir and p.parent.name in _KIND_DIRS] \
        if managed_dir.is_dir() else []
    # managed/ files through the same per-document rules (a hand edit can break them too)
    keys = {f"raw/managed/{p.relative_to(managed_dir).as_posix()}": p for p in managed_paths}
    managed_drafts = _draft({k: _read(p) for k, p in keys.items()}, rules, None)
    names = {k: str(p) for k, p in keys.items()}
    objects: list[FabricObject] = [
        c.fabric_object for d in managed_drafts if not d.errors for c in d.claims
        if c.fabric_object is not None
    ]
    reports = {r.file: r for r in _report_drafts(managed_drafts, names)}
    for obj, found in check_fabric(objects, rules.fabric).items():
        report = reports[names[obj.source]]
        for e in found.errors:
            report.error(obj.index, obj.line, e.to_dict() | {"message": f"{obj.kind} "
                                                               f"{obj.name!r}: {e.message}"})
    raw_paths = []
    if raw_dir.is_dir():
        raw_paths = [p for p in sorted(raw_dir.rglob("*"))
                     if (p.is_file() or p.is_symlink()) and p.suffix in rules.supported_extensions]
    raw_keys = {f"raw/{p.relative_to(raw_dir).as_posix()}": p for p in raw_paths}
    raw_drafts = _draft({k: _read(p) for k, p in raw_keys.items()}, rules,
                        fabric_of_objects(objects))
    raw_names = {k: str(p) for k, p in raw_keys.items()}
    return list(reports.values()) + _report_drafts(raw_drafts, raw_names)


def validate_paths(paths: Iterable[Path], rules: IngestionRules | None = None
                   ) -> list[dict[str, Any]]:
    """The per-file verdicts for ``paths`` (files, directories, GitOps directories) under
    ``rules`` (the sync's limits and fabric config; paths relative to the directory)."""
    rules = dataclasses.replace(rules or IngestionRules(), gitops_dir="")
    reports: list[_Report] = []
    plain: list[Path] = []
    for path in paths:
        if path.is_dir() and ((path / "managed").is_dir() or (path / "raw").is_dir()):
            reports += _gitops_dir(path, rules)
        elif path.is_dir():
            plain += _yaml_files(path)
        else:
            plain.append(path)
    if plain:
        keys = {f"raw/{i}/{p.name}": p for i, p in enumerate(plain)}
        drafts = _draft({k: _read(p) for k, p in keys.items()}, rules, fabric_of_objects(()))
        reports += _report_drafts(drafts, {k: str(p) for k, p in keys.items()})
    return [r.to_dict() for r in reports]


def _human(result: dict[str, Any]) -> str:
    lines = [f"{result['file']}: {'valid' if result['valid'] else 'INVALID'}"]
    for d in result["documents"]:
        what = f"{d['kind'] or '?'} {d['name'] or '?'}"
        where = f"document {d['index']} (line {d['line']})" if d["index"] is not None \
            else "file"
        said = f"{d['kind']} {d['name']!r}: "  # the sync's messages name their object
        for e in d["errors"]:
            rule = f" [{e['rule']}]" if e.get("rule") else ""
            message = e["message"].removeprefix(said)
            lines.append(f"  {where} {what}: {e.get('field') or '-'}: {message}{rule}")
        for w in d["warnings"]:
            lines.append(f"  {where} {what}: warning: {w['message']}")
    return "\n".join(lines)


@click.command("validate")
@click.argument("paths", nargs=-1, required=True,
                type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="one JSON line per file")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False,
                                                           path_type=Path),
              help="fgd_config.yaml to take the limits and fgd.hedgehog from (default: "
                   "$HEDGEHOG_FGD_CONFIG, else ./fgd_config.yaml if present, else defaults)")
def validate(paths: tuple[Path, ...], as_json: bool, config_path: Path | None) -> None:
    """Validate Hedgehog YAML offline, as a sync would (exit 1 if anything is invalid)."""
    from fgd_core.config import load_settings
    from fgd_core.errors import ConfigurationError

    try:  # the file only: no database, no server is contacted
        config = load_settings(config_path).fgd
    except ConfigurationError as exc:
        raise click.UsageError(f"configuration: {exc.message}") from None
    results = validate_paths(paths, IngestionRules.from_config(config, ""))
    for result in results:
        if as_json:
            click.echo(json.dumps(result))
        elif not result["valid"] or any(d["warnings"] for d in result["documents"]):
            click.echo(_human(result))  # a readable report names only files with findings
    if not as_json:
        bad = sum(not r["valid"] for r in results)
        click.echo(f"{len(results)} file(s), {bad} invalid")
    raise SystemExit(0 if all(r["valid"] for r in results) else 1)
