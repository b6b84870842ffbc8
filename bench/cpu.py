"""CPU seconds from /proc, for the benchmarks that print what a phase cost (Linux only)."""

from __future__ import annotations

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def machine_busy() -> float:
    """Seconds of CPU the machine spent not idle (user, nice, system, irq, softirq): every
    process, PostgreSQL's and RabbitMQ's included."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    return sum(int(fields[i]) for i in (0, 1, 2, 5, 6)) / TICK


SERVICES = {"postgres": "PostgreSQL", "beam.smp": "RabbitMQ"}  # process name → service


def services_cpu() -> dict[str, float]:
    """CPU seconds used so far by every process of each local service (by process name:
    PostgreSQL's backends and RabbitMQ's Erlang VM), so a phase can say where the machine's
    CPU went. Processes that ended meanwhile are not counted."""
    used = dict.fromkeys(SERVICES.values(), 0.0)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            head, tail = (entry / "stat").read_text().rsplit(")", 1)
        except OSError:
            continue
        service = SERVICES.get(head.split("(", 1)[1])
        if service is not None:
            fields = tail.split()
            used[service] += (int(fields[11]) + int(fields[12])) / TICK
    return used
