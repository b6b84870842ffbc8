"""Editing a git tree as raw bytes: a set of path changes in, new tree objects out.

What ``GitRemote.commit`` builds its commit's tree with: untouched entries are copied as
they are, changed ones are spliced in at git's sorted places (a 10,000-entry directory is
never parsed into objects).
"""

from __future__ import annotations

import stat
from bisect import bisect_left
from collections.abc import Mapping

from dulwich.object_store import (
    BaseObjectStore,
)
from dulwich.objects import (
    Blob,
    ObjectID,
    Tree,
    hex_to_sha,
)

from fgd_core.adapters.git_objects import (
    EMPTY_TREE_ID,
    MODE_EXECUTABLE,
    MODE_FILE,
    MODE_SUBMODULE,
    RawObject,
    decode_path,
    encode_path,
    hash_object,
    tree_entry,
    tree_index,
)


def validate_path(path: str) -> bytes:
    parts = path.split("/")
    if (
        not path
        or "\0" in path
        or any(p in ("", ".", "..") for p in parts)
        or any(p.lower() == ".git" for p in parts)
    ):
        raise ValueError(f"invalid repository path {path!r}")
    return encode_path(path)


# A change tree: name -> (leaf, children). leaf: bytes = write, None = delete, _KEEP = only
# children below change.
_KEEP = object()
_Node = dict[bytes, list]


def nest_changes(changes: Mapping[bytes, bytes | None]) -> _Node:
    root: _Node = {}
    for path, data in changes.items():
        *dirs, name = path.split(b"/")
        node = root
        for d in dirs:
            node = node.setdefault(d, [_KEEP, {}])[1]
        node.setdefault(name, [_KEEP, {}])[0] = data
    return root


def _sort_key(name: bytes, mode: int) -> bytes:
    return name + b"/" if stat.S_ISDIR(mode) else name  # git's tree order


def apply_changes(
    store: BaseObjectStore,
    tree_id: ObjectID | None,
    node: _Node,
    new: dict[ObjectID, RawObject],
    present: set[ObjectID],
    where: bytes = b"",
) -> ObjectID:
    """The id of ``tree_id`` with ``node``'s changes; the objects it creates go to ``new``.

    ``present`` collects the blobs the changes overwrite or delete: the store has them.
    The tree is edited as raw bytes: untouched entries are copied as they are, the
    changed ones are dropped and their new versions spliced in at their sorted places.
    """
    if tree_id is None:
        raw = b""
    else:
        type_num, raw = store.get_raw(tree_id)
        if type_num != Tree.type_num:
            raise ValueError(f"{decode_path(where) or '/'!r}: {tree_id.decode()} is not a tree")
    index = tree_index(raw)
    drop: list[tuple[int, int]] = []  # (start, end) of replaced or deleted entries
    add: list[tuple[bytes, int, bytes, ObjectID]] = []  # (sort key, mode, name, id)
    for name, (leaf, children) in node.items():
        path = where + name
        existing: tuple[int, ObjectID] | None = None
        if name in index:
            start = index[name]
            mode_, sha_, end = tree_entry(raw, start)
            existing = (mode_, sha_)
            span = (start, end)
        is_dir = existing is not None and stat.S_ISDIR(existing[0])
        if isinstance(leaf, bytes):
            if children:
                raise ValueError(f"{decode_path(path)!r} written as a file and as a directory")
            if is_dir:
                raise ValueError(f"{decode_path(path)!r} is a directory")
            if existing is not None:
                if existing[0] != MODE_SUBMODULE:
                    present.add(existing[1])
                drop.append(span)
            blob_id = hash_object(b"blob", leaf)
            new[blob_id] = (Blob.type_num, leaf)
            mode = MODE_EXECUTABLE if existing and existing[0] == MODE_EXECUTABLE else MODE_FILE
            add.append((_sort_key(name, mode), mode, name, blob_id))
            continue
        if leaf is None and existing is not None:
            if is_dir:
                raise ValueError(f"{decode_path(path)!r} is a directory, not a file")
            if existing[0] != MODE_SUBMODULE:
                present.add(existing[1])
            drop.append(span)
            existing, is_dir = None, False
        if not children:
            continue
        if existing is not None and not is_dir:
            raise ValueError(f"{decode_path(path)!r} is a file, not a directory")
        sub = apply_changes(
            store, existing[1] if existing else None, children, new, present, path + b"/"
        )
        if existing is not None:
            drop.append(span)
        if sub != EMPTY_TREE_ID:
            add.append((name + b"/", stat.S_IFDIR, name, sub))
    if drop or add:
        raw = _splice(raw, index, drop, add)
    tree_id = hash_object(b"tree", raw)
    new[tree_id] = (Tree.type_num, raw)
    return tree_id


def _entry_key(raw: bytes, pos: int) -> bytes:
    space = raw.index(b" ", pos)
    name = raw[space + 1 : raw.index(b"\x00", space)]
    return _sort_key(name, int(raw[pos:space], 8))


def _splice(
    raw: bytes,
    index: dict[bytes, int],
    drop: list[tuple[int, int]],
    add: list[tuple[bytes, int, bytes, ObjectID]],
) -> bytes:
    """``raw`` without the ``drop`` spans and with the ``add`` entries at their places."""
    starts = list(index.values())  # entry offsets, in the tree's (git's) order
    # (offset, 0 = insert / 1 = drop, sort key, entry / end of the dropped entry): inserts
    # at one offset go in key order, before a drop there.
    edits: list[tuple[int, int, bytes, bytes | int]] = [(a, 1, b"", b) for a, b in drop]
    for key, mode, name, sha in add:
        i = bisect_left(starts, key, key=lambda pos: _entry_key(raw, pos))
        at = starts[i] if i < len(starts) else len(raw)
        edits.append((at, 0, key, b"%04o %s\x00%s" % (mode, name, hex_to_sha(sha))))
    edits.sort(key=lambda e: e[:3])
    out, cur = [], 0
    for at, kind, _key, payload in edits:
        if at > cur:
            out.append(raw[cur:at])
            cur = at
        if kind == 0:
            out.append(payload)  # type: ignore[arg-type]
        else:
            cur = payload  # type: ignore[assignment]
    out.append(raw[cur:])
    return b"".join(out)
