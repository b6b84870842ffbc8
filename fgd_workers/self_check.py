"""``monitoring.health_check_interval``: every that many seconds a worker process checks that
it can reach its event store, and says so.

The API answers ``/api/plugins/hedgehog/health/`` on request; a worker has no such endpoint,
so it checks itself on this interval: ``fgd_worker_health_checks_total{outcome}`` counts the
checks on its metrics endpoint, ``fgd_worker_health_ok`` is 1 while the last one passed, and
the log has one WARNING per failed check and one INFO line when the store answers again.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from prometheus_client import Counter, Gauge

log = logging.getLogger("fgd_workers.health")

CHECKS = Counter("fgd_worker_health_checks_total",
                 "Self-checks of this worker process (monitoring.health_check_interval)",
                 ["outcome"])
HEALTHY = Gauge("fgd_worker_health_ok", "1 while this worker's last self-check passed")


class SelfCheck:
    def __init__(self, app: Any, name: str, interval: float) -> None:
        self.app, self.name, self.interval = app, name, interval
        self._healthy = True

    def check_once(self) -> bool:
        try:
            position = int(self.app.recorder.max_notification_id() or 0)
        except Exception as exc:  # noqa: BLE001 — any failure to reach the store is "down"
            CHECKS.labels("down").inc()
            HEALTHY.set(0)
            log.warning("%s health check: event store unreachable (%s)", self.name,
                        type(exc).__name__)
            self._healthy = False
            return False
        CHECKS.labels("ok").inc()
        HEALTHY.set(1)
        if not self._healthy:
            log.info("%s health check: event store answers again (position %d)", self.name,
                     position)
        self._healthy = True
        return True

    def run(self, stop: threading.Event) -> None:
        self.check_once()
        while not stop.wait(self.interval):
            self.check_once()

    def start(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(stop,), daemon=True,
                                  name=f"{self.name}-health")
        thread.start()
        log.info("%s health check every %ss (monitoring.health_check_interval)", self.name,
                 self.interval)
        return thread
