"""The managed index of a fabric kept on disk between processes, beside its git cache.

A fresh process (one ``fgd sync`` from a shell, a restarted worker) would otherwise read
every managed file before it could check one new file. The file holds, per kind
directory, the tree id and each file's blob id with the facts of its object — never
anything a check trusts blindly: ``move_to`` still compares every tree id with the
snapshot's and re-reads what differs, so a stale or foreign file only costs time. A file
that cannot be read, or of another format version, is ignored.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from fgd_core.adapters.fabric_tree import ManagedTreeIndex

FILE_NAME = "fgd-managed-index.json"
# Bumped whenever the facts' shape changes (fabric_index.object_facts).
FORMAT = 2  # 2: facts read off the spec after apply_defaults


def save(tree_index: ManagedTreeIndex, directory: Path, managed_prefix: str) -> None:
    dirs: dict[str, Any] = {}
    for name, (tree_id, entries) in tree_index.dirs.items():
        dirs[name] = [
            tree_id.decode() if tree_id else None,
            {
                file.decode("utf-8", "replace"): [blob.decode()] + (
                    [obj.kind, obj.name, obj.namespace, obj.facts] if obj is not None else []
                )
                for file, (blob, obj) in entries.items()
            },
        ]
    data = orjson.dumps({"format": FORMAT, "prefix": managed_prefix, "dirs": dirs})
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{FILE_NAME}.{os.getpid()}"
    tmp.write_bytes(data)
    os.replace(tmp, directory / FILE_NAME)  # readers see the old file or the new one


def load(directory: Path, managed_prefix: str) -> dict[str, Any] | None:
    """The saved directories, or None (no file, unreadable, another format or prefix)."""
    try:
        data = orjson.loads((directory / FILE_NAME).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    if data.get("prefix") != managed_prefix or not isinstance(data.get("dirs"), dict):
        return None
    return data["dirs"]
