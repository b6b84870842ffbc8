"""Which process holds which PostgreSQL connection: a backend's ``client_port`` (from
``pg_stat_activity``) matched with the TCP sockets each process has open (``/proc``, Linux).
Used by the connection-budget test and the fleet benchmark."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def _socket_inodes(pid: int) -> set[str]:
    inodes: set[str] = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        names = os.listdir(fd_dir)
    except OSError:  # gone
        return inodes
    for name in names:
        try:
            target = os.readlink(fd_dir / name)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _local_ports(pid: int) -> set[int]:
    """Local TCP ports of ``pid``'s sockets (IPv4 and IPv6)."""
    inodes = _socket_inodes(pid)
    ports: set[int] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def connections_by_pid(conn: Any, pids: Iterable[int], database: str | None = None
                       ) -> dict[int, int]:
    """pid → number of PostgreSQL backends connected from that process (this database)."""
    rows = conn.execute(
        "SELECT client_port FROM pg_stat_activity WHERE client_port IS NOT NULL"
        " AND backend_type = 'client backend' AND (%s::text IS NULL OR datname = %s)",
        (database, database),
    ).fetchall()
    backend_ports = {int(r[0]) for r in rows}
    return {pid: len(_local_ports(pid) & backend_ports) for pid in pids}


__all__ = ["connections_by_pid"]
