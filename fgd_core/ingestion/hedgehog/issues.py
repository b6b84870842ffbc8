"""One problem at one field, with the Hedgehog rule it mirrors.

Every per-object rule yields ``FieldIssue``s: a path from the document root (so the planner
can point at the line), a message a network engineer reads, and a stable ``rule`` id that
tools (``fgd validate --json``, CI) can match on.
"""

from __future__ import annotations

from dataclasses import dataclass

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class FieldIssue:
    """One problem at one field (path from the document root)."""

    path: Path
    message: str
    rule: str | None = None  # e.g. "vpc.subnet.vlan-required"; None: a schema/type problem
    warning: bool = False  # Hedgehog accepts the object but warns (e.g. deprecated MCLAG)

    @property
    def field(self) -> str:
        return format_path(self.path)

    def under(self, prefix: Path) -> FieldIssue:
        """The same issue with ``prefix`` in front of its path (rules work below ``spec``)."""
        return FieldIssue(prefix + self.path, self.message, self.rule, self.warning)


def format_path(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
