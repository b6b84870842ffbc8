"""Module boundaries the review enforces, checked on the source (AST; no import, no service):

* Only ``fgd_core/config.py`` and ``fgd_core/config_env.py`` read ``HEDGEHOG_FGD_*``
  variables from the environment; everything else gets them from the settings object
  (``Settings`` / ``Settings.runtime``), so every variable is listed, checked and redacted
  in one place.
* No module imports another module's private (``_underscore``) names.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("fgd_core", "fgd_api", "fgd_workers")
ENV_READERS = {Path("fgd_core/config.py"), Path("fgd_core/config_env.py")}
PREFIX = "HEDGEHOG_FGD_"


def _modules() -> Iterator[tuple[Path, ast.Module]]:
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path.relative_to(ROOT), ast.parse(path.read_text(encoding="utf-8"))


def _docstrings(tree: ast.Module) -> set[int]:
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def env_reads(tree: ast.Module) -> list[str]:
    """Where ``tree`` reads a HEDGEHOG_FGD_* variable: a click ``envvar=``, or a reference to
    the environment (``os.environ``, ``getenv``) in a module that names such a variable
    outside its docstrings (directly or through a constant)."""
    found: list[str] = []
    docstrings = _docstrings(tree)
    names: list[ast.Constant] = [
        node for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        and node.value.startswith(PREFIX) and id(node) not in docstrings
    ]
    touches_environ = [
        node for node in ast.walk(tree)
        if (isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb"))
        or (isinstance(node, ast.Name) and node.id in ("environ", "getenv"))
        or (isinstance(node, ast.alias) and node.name in ("environ", "getenv"))
    ]
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg in ("envvar", "auto_envvar_prefix"):
            value = node.value
            texts = [value] if isinstance(value, ast.Constant) else getattr(value, "elts", [])
            if any(isinstance(t, ast.Constant) and str(t.value).startswith(PREFIX)
                   for t in texts):
                found.append(f"line {node.value.lineno}: click {node.arg}=")
    if names and touches_environ:
        found.append(f"line {touches_environ[0].lineno}: reads the environment and names "
                     f"{names[0].value} (line {names[0].lineno})")
    return found


def private_imports(tree: ast.Module) -> list[str]:
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.split(".")[0] in PRODUCT:
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"line {node.lineno}: from {node.module} import {alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] in PRODUCT and any(p.startswith("_") and not p.startswith("__")
                                               for p in parts):
                    found.append(f"line {node.lineno}: import {alias.name}")
    return found


def test_only_the_config_modules_read_hedgehog_fgd_variables() -> None:
    offenders = {str(path): reads for path, tree in _modules()
                 if path not in ENV_READERS and (reads := env_reads(tree))}
    assert offenders == {}, "read HEDGEHOG_FGD_* through fgd_core.config (Settings.runtime)"


def test_no_module_imports_another_modules_private_names() -> None:
    offenders = {str(path): found for path, tree in _modules()
                 if (found := private_imports(tree))}
    assert offenders == {}, "make the name public (or an alias) where it is defined"


def test_the_checks_catch_what_they_look_for() -> None:
    # The detectors themselves: each flags a sample of what it forbids, and not its fix.
    read = ast.parse('import os\nTOKEN = "HEDGEHOG_FGD_TOKEN"\nos.environ.get(TOKEN)\n')
    option = ast.parse('import click\nclick.option("--q", envvar="HEDGEHOG_FGD_Q")\n')
    settled = ast.parse('"""Reads HEDGEHOG_FGD_TOKEN."""\nimport os\nos.environ.get("HOME")\n')
    assert env_reads(read) and env_reads(option) and not env_reads(settled)
    assert private_imports(ast.parse("from fgd_core.adapters.git_repo import _oid\n"))
    assert private_imports(ast.parse("import fgd_core._hidden\n"))
    assert not private_imports(ast.parse("from fgd_core.errors import FGDError as _E\n"))
    assert not private_imports(ast.parse("from fgd_core import __version__\n"))
