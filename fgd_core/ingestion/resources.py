"""One Hedgehog document validated as Hedgehog would: schema, defaults, single-object rules.

Order: the CRD schema (``hedgehog.schema``: types, enums, bounds) on the document as
written — Hedgehog's webhooks decode it into typed Go structs first; then Hedgehog's
``Default()`` on a copy of the spec (``hedgehog.defaults``) and the rest of Hedgehog's
``Validate()`` that needs no other object on that copy (``hedgehog.rules``), so the rules
see what Hedgehog would see. Every problem is a
``FieldIssue`` with the field's path and, for Hedgehog's rules, a stable rule id.

The managed file is built from the *original* document (defaulted namespace, canonical key
order), not from the defaulted copy or ``model_dump()``: validation must never rewrite what
the user wrote.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError

from fgd_core.errors import ValidationError
from fgd_core.ingestion.hedgehog.defaults import apply_defaults, has_defaults
from fgd_core.ingestion.hedgehog.fabric_config import DEFAULT_FABRIC_CONFIG, FabricConfig
from fgd_core.ingestion.hedgehog.issues import FieldIssue, Path, format_path
from fgd_core.ingestion.hedgehog.rules import object_issues
from fgd_core.ingestion.hedgehog.schema import SPEC_REQUIRED, SPECS, AnySpec, Spec
from fgd_core.ingestion.kinds import KindInfo, lookup_kind, name_problem, resolve_namespace

__all__ = ["FieldIssue", "Path", "ValidatedResource", "format_path", "validate_resource"]


def _object_name(value: str) -> str:
    problem = name_problem(value)
    if problem:
        raise ValueError(problem.replace("metadata.name", "name"))
    return value


ObjectName = Annotated[str, AfterValidator(_object_name)]
_SCALAR_TYPES = frozenset({str, int, float, bool, type(None)})

# ---------------------------------------------------------------------------- documents

_LABEL_NAME = r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)"
_LABEL_KEY_RE = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?" + _LABEL_NAME + "$"
)
_LABEL_VALUE_RE = re.compile(r"^(" + _LABEL_NAME + ")?$")


def _label_map(value: dict[str, str]) -> dict[str, str]:
    for k, v in value.items():
        if not _LABEL_KEY_RE.match(k):
            raise ValueError(f"label key {k!r} is not a valid Kubernetes label key")
        if not _LABEL_VALUE_RE.match(v):
            raise ValueError(f"label value {v!r} (key {k!r}) is not a valid label value")
    return value


def _annotation_map(value: dict[str, str]) -> dict[str, str]:
    for k in value:
        if not _LABEL_KEY_RE.match(k):
            raise ValueError(f"annotation key {k!r} is not a valid Kubernetes key")
    return value


class Metadata(BaseModel):
    # Server-populated fields (uid, resourceVersion …) from "kubectl get -o yaml" are
    # tolerated here and dropped from the managed file (with a warning).
    model_config = ConfigDict(extra="allow")

    name: ObjectName
    namespace: str | None = None
    labels: Annotated[dict[str, str], AfterValidator(_label_map)] | None = None
    annotations: Annotated[dict[str, str], AfterValidator(_annotation_map)] | None = None


class HedgehogResource(BaseModel):
    """A whole document. Unknown top-level keys are typos ("specs:") and are errors."""

    model_config = ConfigDict(extra="forbid")
    spec_required: ClassVar[bool] = False

    apiVersion: str
    kind: str
    metadata: Metadata
    spec: AnySpec | None = None
    status: Any = None  # observed state; never written to managed files


def _resource(name: str, spec_model: type[Spec], required: bool) -> type[HedgehogResource]:
    annotation: Any = spec_model if required else spec_model | None
    namespace = {"__annotations__": {"spec": annotation}, "spec_required": required}
    if not required:
        namespace["spec"] = None
    return type(name, (HedgehogResource,), namespace)


MODELS: Mapping[str, type[HedgehogResource]] = {
    kind: _resource(kind, spec, kind in SPEC_REQUIRED) for kind, spec in SPECS.items()
}
_GENERIC = _resource("GenericResource", AnySpec, False)


@dataclass(frozen=True)
class ValidatedResource:
    info: KindInfo
    name: str
    namespace: str
    normalized: dict[str, Any]  # what the managed file holds, in canonical order
    warnings: tuple[str, ...] = ()
    # The spec the rules saw: after Hedgehog's Default(), lists as written (the fabric-wide
    # facts are read off it, so defaults are applied once per document). None: no rules.
    defaulted_spec: dict[str, Any] | None = None


def _fail(issues: list[FieldIssue]) -> ValidationError:
    first = issues[0]
    more = f" (+{len(issues) - 1} more)" if len(issues) > 1 else ""
    return ValidationError(
        f"{first.field or 'document'}: {first.message}{more}",
        details={
            "field": first.field,
            "issues": [_issue_dict(i) for i in issues],
        },
    )


def _issue_dict(issue: FieldIssue) -> dict[str, Any]:
    out: dict[str, Any] = {"path": list(issue.path), "field": issue.field, "message": issue.message}
    if issue.rule is not None:
        out["rule"] = issue.rule
    return out


def _by_key(item: tuple[Any, Any]) -> tuple[str, str]:
    return (type(item[0]).__name__, str(item[0]))


def _canonical(value: Any) -> Any:
    """Mappings with sorted keys, recursively: equal content ⇒ byte-equal managed file."""
    t = type(value)
    if t in _SCALAR_TYPES:
        return value
    if t is dict:
        # All-str keys (every Kubernetes object) sort as their text, which is what the
        # (type name, text) order gives them.
        if all(type(k) is str for k in value):
            # scalars (most values) are taken as they are, without a call: this runs for
            # every mapping of every document of a sync
            scalar = _SCALAR_TYPES
            out = {}
            for k in sorted(value):
                v = value[k]
                out[k] = v if type(v) in scalar else _canonical(v)
            return out
        return {k: _canonical(v) for k, v in sorted(value.items(), key=_by_key)}
    if t is list:
        return [v if type(v) in _SCALAR_TYPES else _canonical(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _canonical(v) for k, v in sorted(value.items(), key=_by_key)}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def validate_resource(
    doc: Mapping[Any, Any],
    *,
    enforce_namespaces: bool = True,
    require_labels: bool = False,
    extra_kinds: Mapping[str, KindInfo] | None = None,
    fabric: FabricConfig = DEFAULT_FABRIC_CONFIG,
    canonical: bool = True,
) -> ValidatedResource:
    """Validate one document; UnsupportedResourceError (FGD_1002) or ValidationError (1003).

    Validation errors carry ``details["issues"]``: every problem found, each with its path
    and, for Hedgehog's rules, its ``rule`` id. ``fabric`` is the fabric configuration
    Hedgehog's rules run under (reserved subnets and VLANs, MTU). ``canonical=False``
    keeps the spec in ``normalized`` as written, not in canonical order (``fgd validate``
    makes no managed file of it, and skips that walk of every document).
    """
    for key in ("apiVersion", "kind"):
        if not isinstance(doc.get(key), str) or not doc.get(key):
            raise _fail(
                [FieldIssue((key,), f"{key} is required and must be a string", "schema.missing")]
            )
    info = lookup_kind(doc["apiVersion"], doc["kind"], extra_kinds)
    model = MODELS.get(info.kind, _GENERIC)
    issues: list[FieldIssue] = []
    try:
        resource = model.model_validate(dict(doc))
    except PydanticValidationError as exc:
        for err in exc.errors(include_url=False):
            msg = err["msg"].removeprefix("Value error, ")
            issues.append(FieldIssue(tuple(err["loc"]), msg, _schema_rule(err["loc"], err["type"])))
        raise _fail(issues) from None
    meta = resource.metadata
    try:
        namespace = resolve_namespace(meta.namespace, enforce=enforce_namespaces)
    except ValidationError as exc:
        issues.append(FieldIssue(("metadata", "namespace"), exc.message, "metadata.namespace"))
        namespace = ""
    if require_labels and not meta.labels:
        issues.append(
            FieldIssue(
                ("metadata", "labels"), "labels are required (require_labels)", "fgd.require-labels"
            )
        )
    warnings: list[str] = []
    spec: dict[str, Any] | None = None
    if model is not _GENERIC:
        # Hedgehog's Default() on a copy, so the rules see what Hedgehog would see. The
        # schema was checked on the document as written: like Go's decoding, a wrongly typed
        # field is an error even where Default() would clear it.
        spec = doc.get("spec")
        if type(spec) is not dict:
            spec = {}
        elif has_defaults(info.kind):
            spec = apply_defaults(info.kind, spec, sort_lists=False)
        for issue in object_issues(info.kind, meta.name, spec, fabric, meta.annotations):
            if issue.warning:
                warnings.append(f"{issue.field}: {issue.message} ({issue.rule})")
            else:
                issues.append(issue)
    if issues:
        raise _fail(issues)

    dropped = sorted(str(k) for k in (meta.model_extra or {}))
    if dropped:
        warnings.append(f"metadata fields not kept in the managed file: {', '.join(dropped)}")
    if "status" in doc:
        warnings.append("status is observed state and is not kept in the managed file")
    raw_meta = doc["metadata"]
    out_meta: dict[str, Any] = {"name": meta.name, "namespace": namespace}
    for key in ("labels", "annotations"):
        if raw_meta.get(key):
            out_meta[key] = _canonical(raw_meta[key])
    normalized: dict[str, Any] = {
        "apiVersion": info.api_version,
        "kind": info.kind,
        "metadata": out_meta,
    }
    if "spec" in doc and doc["spec"] is not None:
        normalized["spec"] = _canonical(doc["spec"]) if canonical else doc["spec"]
    return ValidatedResource(info, meta.name, namespace, normalized, tuple(warnings), spec)


def _schema_rule(loc: tuple[int | str, ...], error_type: str) -> str:
    """A stable rule id for a schema problem: "metadata.name", "metadata.labels" or
    "schema.<kind of problem>" (missing, string_type, int_type, literal_error, too_short …)."""
    if loc[:1] == ("metadata",) and len(loc) > 1 and loc[1] in ("name", "labels", "annotations"):
        return f"metadata.{loc[1]}"
    return f"schema.{error_type}"
