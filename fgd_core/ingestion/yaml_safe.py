"""Loading untrusted multi-document YAML: bytes in, plain mappings (with their lines) out.

Raw files come from anyone who can push to the fabric's repository, so the loader assumes
hostility: it composes each document into a node graph first (libyaml, no Python objects
yet), checks that graph — tags, aliases, nesting depth, duplicate keys, shape — and only
then constructs plain ``dict``/``list``/scalars. Every rejection is an ``InvalidYAMLError``
(FGD_1001) whose details carry ``index`` (0-based position among non-empty documents,
``None`` when the problem is not inside a document) and ``line`` (1-based).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from fgd_core.errors import InvalidYAMLError

# libyaml when present (fast, and its scanner caps nesting depth); pure Python otherwise.
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_CORE = "tag:yaml.org,2002:"
# The JSON-compatible core: what a Kubernetes object can hold. Everything else — python/*,
# custom "!foo", and even YAML 1.1 extras (binary, set, omap, pairs, timestamp) — is refused,
# because the API server would refuse it too and because constructors are attack surface.
SAFE_TAGS = frozenset(
    _CORE + t for t in ("str", "int", "float", "bool", "null", "seq", "map", "merge")
)
_MERGE_TAG = _CORE + "merge"
_NULL_TAG = _CORE + "null"
_STR_TAG = _CORE + "str"


@dataclass(frozen=True)
class YamlLimits:
    """Caps that make hostile input fail fast and cheaply."""

    # Nodes after alias expansion, per document: a billion-laughs document reaches this
    # after a few memoized steps instead of after building 10**9 objects.
    max_nodes_per_document: int = 100_000
    # Hedgehog objects nest < 10 deep; a low cap also keeps every later recursive walk
    # (pydantic, normalization, the dumper) far from Python's recursion limit.
    max_depth: int = 64


DEFAULT_LIMITS = YamlLimits()


@dataclass(frozen=True)
class YamlDocument:
    """One non-empty document: its data, where it starts, and a way to find field lines."""

    index: int
    line: int
    data: dict[Any, Any]
    _root: Node = field(repr=False, compare=False)

    def line_of(self, path: Sequence[str | int]) -> int:
        """1-based line of the deepest node found along ``path`` (a pydantic-style loc).

        Lets validation errors point at the offending field instead of the document start.
        """
        node: Node = self._root
        line = node.start_mark.line + 1
        for part in path:
            nxt: Node | None = None
            if isinstance(node, MappingNode):
                for key_node, value_node in node.value:
                    if isinstance(key_node, ScalarNode) and key_node.value == str(part):
                        nxt = value_node
                        line = key_node.start_mark.line + 1
                        break
            elif (
                isinstance(node, SequenceNode)
                and isinstance(part, int)
                and 0 <= part < len(node.value)
            ):
                nxt = node.value[part]
            if nxt is None:
                break
            node = nxt
            line = node.start_mark.line + 1
        return line


def _without(resolvers: dict[Any, Any], drop: set[str]) -> dict[Any, Any]:
    return {
        ch: [(tag, rx) for tag, rx in entries if tag not in drop]
        for ch, entries in resolvers.items()
    }


# YAML 1.1 quirks that silently change what a network engineer wrote: "12:30" (sexagesimal
# int 750), "2024-01-01" (a datetime, not JSON-safe) and "=" (a "value" tag with no safe
# constructor). Kubernetes' YAML reader keeps all three as strings; so do we.
_INT_RX = re.compile(
    r"""^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$""",
    re.X,
)
_FLOAT_RX = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
    |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)


# Resolved tags are memoized per class for short scalars: with no path resolvers (neither
# class has any) ``resolve`` is a pure function of (kind, value, implicit[0]), and the same
# keys and small values ("port", "default", "true") recur in every document.
_RESOLVE_CACHE_MAX = 8192
_RESOLVE_CACHE_VALUE_MAX = 64


class _MemoResolve:
    """``resolve`` memoized for scalars (a mixin in front of a PyYAML resolver).

    libyaml calls back into Python for every node (``resolve``, ``descend_resolver``,
    ``ascend_resolver``), twice per scalar when dumping. Without path resolvers the last
    two do nothing, so C no-ops stand in for them (no Python frame per node), and
    ``resolve`` answers containers and non-plain scalars without PyYAML's dispatch.
    """

    _resolved: dict[str, str]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.yaml_path_resolvers:  # type: ignore[attr-defined]
            self.descend_resolver = operator.is_  # (current_node, current_index) -> ignored
            self.ascend_resolver = tuple  # () -> ignored

    def resolve(self, kind: type, value: Any, implicit: Any) -> Any:
        if self.yaml_path_resolvers:  # type: ignore[attr-defined]
            return super().resolve(kind, value, implicit)  # type: ignore[misc]
        if kind is not ScalarNode:
            return super().resolve(kind, value, implicit)  # type: ignore[misc]
        if not implicit[0]:  # no implicit resolution: the default scalar tag
            return self.DEFAULT_SCALAR_TAG  # type: ignore[attr-defined]
        cache = self._resolved
        tag = cache.get(value)
        if tag is None:
            tag = super().resolve(kind, value, implicit)  # type: ignore[misc]
            if len(value) <= _RESOLVE_CACHE_VALUE_MAX:
                if len(cache) >= _RESOLVE_CACHE_MAX:
                    cache.clear()
                cache[value] = tag
        return tag


class _SafeLoader(_MemoResolve, _BaseLoader):  # type: ignore[misc, valid-type]
    """The C (or pure) safe loader with a JSON-like implicit resolver set."""

    _resolved: dict[str, str] = {}
    yaml_implicit_resolvers = _without(
        dict(_BaseLoader.yaml_implicit_resolvers),
        {_CORE + "timestamp", _CORE + "value", _CORE + "int", _CORE + "float"},
    )


_SafeLoader.add_implicit_resolver(_CORE + "int", _INT_RX, list("-+0123456789"))
_SafeLoader.add_implicit_resolver(_CORE + "float", _FLOAT_RX, list("-+0123456789."))


class _Reject(Exception):
    """Internal: a check failed on a node (converted to InvalidYAMLError by the caller)."""

    def __init__(self, message: str, node: Node) -> None:
        super().__init__(message)
        self.message = message
        self.line = node.start_mark.line + 1


def _error(message: str, index: int | None, line: int | None) -> InvalidYAMLError:
    return InvalidYAMLError(message, details={"index": index, "line": line})


def _decode(data: bytes) -> str:
    try:
        # utf-8-sig: editors on Windows add a BOM; it is not content.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise _error(
            f"file is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            None,
            line,
        ) from None


_MAP_TAG = _CORE + "map"
_SEQ_TAG = _CORE + "seq"
_SCALAR_TAGS = frozenset(_CORE + t for t in ("null", "bool", "int", "float"))
_COMPLEX = object()  # _GraphCheck.run: "let the loader's constructor build this document"


class _GraphCheck:
    """One pass over a composed node graph, memoized per node so aliases cost nothing.

    Computes the expanded size and height of every node (what construction and every later
    walk would pay) without expanding anything, and checks tags, key shapes and duplicates.
    The same pass builds the plain value of a document made only of str-keyed mappings,
    sequences and core scalars (what Kubernetes objects are); anything else — merge keys,
    non-str keys, a scalar its constructor refuses — is left to the loader's constructor
    (``run`` returns ``_COMPLEX``), so every value and every error stays PyYAML's.
    """

    def __init__(self, loader: _SafeLoader, limits: YamlLimits) -> None:
        self.loader = loader
        self.limits = limits
        self.size: dict[int, int] = {}
        self.height: dict[int, int] = {}
        self.value: dict[int, Any] = {}
        self.on_stack: set[int] = set()
        self.simple = True

    def run(self, root: Node) -> Any:
        self._visit(root, 1)
        return self.value[id(root)] if self.simple else _COMPLEX

    def _scalar(self, node: ScalarNode) -> Any:
        if node.tag not in _SCALAR_TAGS:  # e.g. "!!map" on a scalar: the loader's error
            self.simple = False
            return None
        constructor = self.loader.yaml_constructors[node.tag]
        try:
            return constructor(self.loader, node)
        except Exception:  # noqa: BLE001 — the loader's constructor reports it, in its order
            self.simple = False
            return None

    def _visit(self, node: Node, depth: int) -> None:
        # The hot loop of ingestion (every node of every document): locals, no temporaries.
        nid = id(node)
        sizes, heights, limits = self.size, self.height, self.limits
        if nid in self.on_stack:
            raise _Reject("recursive alias (a node that contains itself)", node)
        if nid in sizes:  # an alias to a node already checked
            if depth + heights[nid] - 1 > limits.max_depth:
                raise _Reject(f"nesting deeper than {limits.max_depth} levels", node)
            return
        if depth > limits.max_depth:
            raise _Reject(f"nesting deeper than {limits.max_depth} levels", node)
        tag = node.tag
        if tag not in SAFE_TAGS:
            raise _Reject(f"YAML tag {tag!r} is not allowed (only the JSON core types)", node)
        values = self.value
        if isinstance(node, ScalarNode):
            sizes[nid] = heights[nid] = 1
            if tag == _STR_TAG:
                values[nid] = node.value
            elif self.simple:
                values[nid] = self._scalar(node)
            return
        self.on_stack.add(nid)
        size, height = 1, 1
        visit, max_nodes, child_depth = self._visit, limits.max_nodes_per_document, depth + 1
        if isinstance(node, MappingNode):
            self._check_keys(node)
            if tag != _MAP_TAG:  # e.g. "!!str" on a mapping: the loader's error
                self.simple = False
            mapping: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                for child in (key_node, value_node):
                    # A plain string scalar (most nodes) is taken here, without a call:
                    # size and height 1, its text its value (an alias to one costs 1 too).
                    if child.__class__ is ScalarNode and child.tag == _STR_TAG:
                        if child_depth > limits.max_depth:
                            raise _Reject(f"nesting deeper than {limits.max_depth} levels",
                                          child)
                        size += 1
                        if height < 2:
                            height = 2
                    else:
                        visit(child, child_depth)
                        cid = id(child)
                        size += sizes[cid]
                        if heights[cid] >= height:
                            height = heights[cid] + 1
                    if size > max_nodes:
                        raise _Reject(
                            f"document expands to more than {max_nodes} nodes (alias bomb?)",
                            node,
                        )
                if self.simple:
                    if key_node.tag != _STR_TAG:  # merge keys, 1 vs "1", null …: PyYAML's
                        self.simple = False
                    else:
                        mapping[key_node.value] = (
                            value_node.value
                            if value_node.__class__ is ScalarNode and value_node.tag == _STR_TAG
                            else values.get(id(value_node))
                        )
            values[nid] = mapping
        else:
            if tag != _SEQ_TAG:
                self.simple = False
            sequence: list[Any] = []
            for child in node.value:
                if child.__class__ is ScalarNode and child.tag == _STR_TAG:
                    if child_depth > limits.max_depth:
                        raise _Reject(f"nesting deeper than {limits.max_depth} levels", child)
                    size += 1
                    if height < 2:
                        height = 2
                    if size > max_nodes:
                        raise _Reject(
                            f"document expands to more than {max_nodes} nodes (alias bomb?)",
                            node,
                        )
                    sequence.append(child.value)
                    continue
                visit(child, child_depth)
                cid = id(child)
                size += sizes[cid]
                if heights[cid] >= height:
                    height = heights[cid] + 1
                if size > max_nodes:
                    raise _Reject(
                        f"document expands to more than {max_nodes} nodes (alias bomb?)", node
                    )
                if self.simple:
                    sequence.append(values[cid])
            values[nid] = sequence
        self.on_stack.discard(nid)
        sizes[nid], heights[nid] = size, height

    def _check_keys(self, node: MappingNode) -> None:
        # PyYAML keeps the last of two equal keys without a word; a network engineer who
        # wrote "vlan:" twice must hear about it. Checked on the composed graph, before merge
        # keys ("<<") are flattened into the mapping, so merged keys are not duplicates.
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.__class__ is ScalarNode and key_node.tag == _STR_TAG:
                # the common case: a str key is its text (a tuple below for other tags,
                # so "1" and 1 stay different keys)
                if key_node.value in seen:
                    raise _Reject(f"duplicate mapping key {key_node.value!r}", key_node)
                seen.add(key_node.value)
                continue
            if not isinstance(key_node, ScalarNode):
                raise _Reject("mapping keys must be scalars", key_node)
            if key_node.tag == _MERGE_TAG:
                continue
            if key_node.tag not in SAFE_TAGS:
                raise _Reject(f"YAML tag {key_node.tag!r} is not allowed", key_node)
            # A str key is its scalar text; only other tags (1 vs "1", null, bools) need
            # the constructor's value.
            value = (
                key_node.value
                if key_node.tag == _STR_TAG
                else (self.loader.construct_object(key_node))
            )
            key = (key_node.tag, value)
            if key in seen:
                raise _Reject(f"duplicate mapping key {key_node.value!r}", key_node)
            seen.add(key)


def iter_documents(data: bytes, limits: YamlLimits = DEFAULT_LIMITS) -> Iterator[YamlDocument]:
    """Yield each non-empty document of ``data``; raise InvalidYAMLError on the first problem.

    A generator so that a caller enforcing a document count can stop early.
    """
    text = _decode(data)
    loader = _SafeLoader(text)
    index = 0
    try:
        while True:
            try:
                if not loader.check_node():
                    return
                root = loader.get_node()
            except yaml.MarkedYAMLError as exc:
                mark = exc.problem_mark or exc.context_mark
                line = mark.line + 1 if mark is not None else None
                raise _error(f"invalid YAML: {exc.problem or exc}", index, line) from None
            except yaml.YAMLError as exc:  # reader errors (e.g. control characters)
                raise _error(f"invalid YAML: {exc}", index, None) from None
            if root is None or (isinstance(root, ScalarNode) and root.tag == _NULL_TAG):
                continue  # "---" alone, comments only, or an explicit null: nothing to ingest
            try:
                value = _GraphCheck(loader, limits).run(root)
                if not isinstance(root, MappingNode):
                    raise _Reject("document is not a mapping (expected apiVersion/kind/…)", root)
                if value is _COMPLEX:
                    value = loader.construct_document(root)
            except _Reject as exc:
                raise _error(exc.message, index, exc.line) from None
            except yaml.MarkedYAMLError as exc:  # e.g. a malformed "<<" merge
                mark = exc.problem_mark or exc.context_mark
                line = mark.line + 1 if mark is not None else root.start_mark.line + 1
                raise _error(f"invalid YAML: {exc.problem or exc}", index, line) from None
            except (ValueError, TypeError, OverflowError) as exc:  # e.g. "!!int abc"
                line = root.start_mark.line + 1
                raise _error(f"invalid YAML value: {exc}", index, line) from None
            yield YamlDocument(index=index, line=root.start_mark.line + 1, data=value, _root=root)
            index += 1
    finally:
        loader.dispose()


def load_documents(data: bytes, limits: YamlLimits = DEFAULT_LIMITS) -> list[YamlDocument]:
    """All non-empty documents of ``data`` (an empty list for a comments-only file)."""
    return list(iter_documents(data, limits))


# ---------------------------------------------------------------------------- output side

_BaseDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_INT_TAG = _CORE + "int"
_BOOL_TAG = _CORE + "bool"


class _Dumper(_MemoResolve, _BaseDumper):  # type: ignore[misc, valid-type]
    """The C (or pure) safe dumper with a direct representer for JSON-like data.

    ``represent_data`` builds, for dict / list / str / int / bool / None, exactly the nodes
    SafeRepresenter builds (same tags, styles, flow styles, and the same node for a
    container met twice, which the serializer turns into an alias), without its per-node
    type dispatch; other types, and other dumper settings, take SafeRepresenter's path.
    """

    _resolved: dict[str, str] = {}

    def represent_data(self, data: Any) -> Node:
        t = type(data)
        if t is str:
            if self.default_style is None:
                return ScalarNode(_STR_TAG, data)
        elif t is dict or t is list:
            if self.default_flow_style is not None and not self.sort_keys:
                node = self.represented_objects.get(id(data))
                if node is not None:
                    return node
                self.alias_key = None
                self.object_keeper.append(data)
                represent = self.represent_data
                if t is dict:
                    pairs: list[tuple[Node, Node]] = []
                    node = MappingNode(_MAP_TAG, pairs, flow_style=self.default_flow_style)
                    self.represented_objects[id(data)] = node
                    for key, value in data.items():
                        pairs.append((represent(key), represent(value)))
                else:
                    items: list[Node] = []
                    node = SequenceNode(_SEQ_TAG, items, flow_style=self.default_flow_style)
                    self.represented_objects[id(data)] = node
                    for item in data:
                        items.append(represent(item))
                return node
        elif t is bool:
            if self.default_style is None:
                return ScalarNode(_BOOL_TAG, "true" if data else "false")
        elif t is int:
            if self.default_style is None:
                return ScalarNode(_INT_TAG, str(data))
        elif data is None and self.default_style is None:
            return ScalarNode(_NULL_TAG, "null")
        return super().represent_data(data)


def dump_document(data: Any) -> bytes:
    """Deterministic block-style YAML for one document (key order is the caller's)."""
    text = yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=4096,  # never fold long strings: one value, one line, clean diffs
        explicit_start=False,
    )
    return text.encode("utf-8")
