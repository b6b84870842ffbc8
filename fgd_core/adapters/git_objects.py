"""Raw git objects: ids, path encoding, raw tree entries, packs written and sent, ancestry.

The low-level helpers the snapshot reader (``git_snapshot``), the tree editor
(``git_tree_edit``) and ``GitRemote`` (``git_repo``) share. Objects travel as
``RawObject`` = (type number, raw bytes): no parsed dulwich objects kept alive.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from contextlib import suppress

from dulwich.file import GitFile
from dulwich.object_store import (
    PACK_MODE,
    BaseObjectStore,
    DiskObjectStore,
    MissingObjectFinder,
)
from dulwich.objects import (
    Commit,
    ObjectID,
    RawObjectID,
    Tree,
    hex_to_sha,
    sha_to_hex,
)
from dulwich.pack import (
    UnpackedObject,
    write_pack_data,
    write_pack_index,
)

MODE_FILE = 0o100644
MODE_EXECUTABLE = 0o100755
MODE_SYMLINK = 0o120000
MODE_SUBMODULE = 0o160000

RawObject = tuple[int, bytes]  # an object as (type number, raw bytes)


def to_object_id(sha: str) -> ObjectID:
    return ObjectID(sha.encode("ascii"))


def encode_path(path: str) -> bytes:
    return path.encode("utf-8", "surrogateescape")


def decode_path(path: bytes) -> str:
    return path.decode("utf-8", "surrogateescape")


def hash_object(type_name: bytes, raw: bytes) -> ObjectID:
    header = type_name + b" %d\x00" % len(raw)
    return ObjectID(hashlib.sha1(header + raw, usedforsecurity=False).hexdigest().encode())


def tree_index(raw: bytes) -> dict[bytes, int]:
    """name -> offset of its entry in a raw tree (entries: ``<mode> <name>\\0<20-byte id>``).

    An index of plain bytes and ints: parsing a 10,000-entry directory into tuples would
    hand the garbage collector 20,000 long-lived objects to scan again and again.
    """
    index: dict[bytes, int] = {}
    find, pos, end = raw.find, 0, len(raw)
    while pos < end:
        space = find(b" ", pos)
        nul = find(b"\x00", space)
        if space < 0 or nul < 0 or nul + 21 > end:
            raise ValueError("malformed tree object")
        index[raw[space + 1 : nul]] = pos
        pos = nul + 21
    return index


def tree_entry(raw: bytes, pos: int) -> tuple[int, ObjectID, int]:
    """(mode, id, end offset) of the entry of a raw tree that starts at ``pos``."""
    space = raw.index(b" ", pos)
    nul = raw.index(b"\x00", space)
    return int(raw[pos:space], 8), sha_to_hex(RawObjectID(raw[nul + 1 : nul + 21])), nul + 21


EMPTY_TREE_ID = Tree().id


def unpacked_object(oid: ObjectID, raw: RawObject) -> UnpackedObject:
    # One chunk per object: the pack writer compresses chunk by chunk.
    return UnpackedObject(
        raw[0], delta_base=None, crc32=None, decomp_chunks=[raw[1]], sha=hex_to_sha(oid)
    )


def write_pack(store: DiskObjectStore, objects: Mapping[ObjectID, RawObject]) -> None:
    """Add ``objects`` to an on-disk store as one pack, indexed from what was written.

    Like git's index-pack: the pack is moved in first, its index last (a pack is used
    only once its index is there). The index entries come from the writer itself,
    instead of re-reading and re-inflating the pack as dulwich's ``add_objects`` does.
    """
    fsync = store.fsync_object_files
    fd, tmp = tempfile.mkstemp(dir=store.pack_dir, prefix="tmp_pack_")
    try:
        with os.fdopen(fd, "wb") as f:
            entries, checksum = write_pack_data(
                f.write,
                (unpacked_object(oid, raw) for oid, raw in objects.items()),
                object_format=store.object_format,
                num_records=len(objects),
                compression_level=store.pack_compression_level,
            )
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, PACK_MODE)
        base = os.path.join(store.pack_dir, "pack-" + checksum.hex())
        os.replace(tmp, base + ".pack")
    except BaseException:
        with suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    index = sorted((sha, offset, crc) for sha, (offset, crc) in entries.items())
    with GitFile(base + ".idx", "wb", mask=PACK_MODE, fsync=fsync) as f:
        write_pack_index(f, index, checksum, version=store.pack_index_version)


def pack_data(
    store: BaseObjectStore, built: Mapping[ObjectID, RawObject]
) -> Callable[..., tuple[int, Iterator[UnpackedObject]]]:
    """``store.generate_pack_data`` without dulwich's delta reuse.

    Delta reuse scans every object of every local pack to find the few being sent; the
    objects a sync commits are fresh, undeltified blobs and trees, so there is nothing
    to reuse and the scan cost grew with the repository instead of with the change.
    """

    def generate(
        have: Iterable[ObjectID],
        want: Iterable[ObjectID],
        *,
        shallow: AbstractSet[ObjectID] | None = None,
        progress: Callable[..., None] | None = None,
        ofs_delta: bool = True,
    ) -> tuple[int, Iterator[UnpackedObject]]:
        missing = MissingObjectFinder(
            store, haves=have, wants=want, shallow=shallow, progress=progress
        )
        object_ids = list(missing)
        records = (
            unpacked_object(oid, built.get(oid) or store.get_raw(oid)) for oid, _hint in object_ids
        )
        return len(object_ids), records

    return generate


def descends_from(store: BaseObjectStore, sha: ObjectID, ancestor: ObjectID | None) -> bool:
    if sha not in store:
        raise ValueError(f"unknown commit {sha.decode()}: build it with commit() first")
    if ancestor is None:
        return True
    todo, seen = [sha], set[ObjectID]()
    while todo:
        current = todo.pop()
        if current == ancestor:
            return True
        if current in seen or current not in store:
            continue
        seen.add(current)
        commit = store[current]
        if isinstance(commit, Commit):
            todo.extend(commit.parents)
    return False
