"""Real Hedgehog documents for rule tests: look one up, change it, validate it.

``sample("demogitops_env-1_demo.yaml#VPC/demo-vpc-3")`` gives a fresh copy of that document
from ``fixtures/hedgehog/``; ``mutate`` sets or removes fields by path; ``verdict`` runs
``validate_resource`` and returns the rule ids of the refusal (empty when accepted).
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import yaml

from fgd_core.errors import ValidationError
from fgd_core.ingestion import validate_resource
from fgd_core.ingestion.hedgehog.fabric_config import (
    DEFAULT_FABRIC_CONFIG,
    FabricConfig,
    HedgehogConfig,
)
from fgd_core.ingestion.yaml_safe import load_documents
from tests.paths import FIXTURES_DIR, HEDGEHOG_FIXTURES

CASES_DIR = FIXTURES_DIR / "hedgehog_cases"


@cache
def _documents(file: str) -> tuple[dict[str, Any], ...]:
    return tuple(d.data for d in load_documents((HEDGEHOG_FIXTURES / file).read_bytes()))


def sample(ref: str) -> dict[str, Any]:
    """A copy of ``<file>#<Kind>/<name>`` from the real samples."""
    file, _, what = ref.partition("#")
    kind, _, name = what.partition("/")
    for doc in _documents(file):
        if doc.get("kind") == kind and (doc.get("metadata") or {}).get("name") == name:
            return copy.deepcopy(doc)
    raise LookupError(ref)


def _keys(path: str) -> list[str]:
    # "a.b.0.c"; "a > b > key.with.dots" where a key holds a dot
    return path.split(" > ") if " > " in path else path.split(".")


def _step(node: Any, key: Any) -> Any:
    if isinstance(node, list):
        return int(key)
    return key


def mutate(
    doc: dict[str, Any], set_: dict[str, Any] | None = None, unset: list[str] | None = None
) -> dict[str, Any]:
    """``doc`` changed in place: each path of ``set_`` gets its value (missing mappings are
    created; a list index one past the end appends), each path of ``unset`` is removed."""
    for path, value in (set_ or {}).items():
        keys = _keys(path)
        node = doc
        for key in keys[:-1]:
            key = _step(node, key)
            if isinstance(node, dict) and node.get(key) is None:
                node[key] = {}
            node = node[key]
        last = _step(node, keys[-1])
        if isinstance(node, list) and last == len(node):
            node.append(copy.deepcopy(value))
        else:
            node[last] = copy.deepcopy(value)
    for path in unset or []:
        keys = _keys(path)
        node = doc
        for key in keys[:-1]:
            node = node[_step(node, key)]
        del node[_step(node, keys[-1])]
    return doc


def verdict(doc: dict[str, Any], **kw: Any) -> list[str]:
    """The rule ids of the refusal, or [] when the document is accepted."""
    try:
        validate_resource(doc, **kw)
    except ValidationError as exc:
        return [i.get("rule") or "?" for i in exc.details["issues"]]
    return []


def load_cases() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for file in sorted(CASES_DIR.glob("*.yaml")):
        for case in yaml.safe_load(file.read_text()):
            out.append((f"{file.stem}: {case['case']}", case))
    return out


def case_fabric(case: dict[str, Any]) -> FabricConfig:
    """The fabric config a case runs under: fabricator's defaults, or its ``fabric:`` keys."""
    return (
        HedgehogConfig(**case["fabric"]).fabric_config()
        if "fabric" in case
        else DEFAULT_FABRIC_CONFIG
    )


def case_document(case: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(case["inline"]) if "inline" in case else sample(case["base"])
    return mutate(doc, case.get("set"), case.get("unset", []))
