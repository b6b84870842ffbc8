"""What a request of the API process needs, in one object: built from the composition root
(``fgd_core.bootstrap``: Application, in-process driver, executor) plus the read model,
which is fgd_api's own (the projections; fgd_core may not import fgd_api, so this thin
factory builds it from the Application bootstrap made).

Built once per process (``create_app`` builds one when none is given); tests build their
own around a test database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fgd_core.adapters.persistence import api_store_env
from fgd_core.application.app import FGDApplication
from fgd_core.application.gitops_ops import GitOpsService
from fgd_core.application.pipeline_local import LocalSyncDriver
from fgd_core.application.ports import SyncExecutor
from fgd_core.bootstrap import build_executor, build_runner
from fgd_core.config import Settings, load_settings


@dataclass
class Container:
    settings: Settings
    app: FGDApplication
    runner: LocalSyncDriver
    ops: GitOpsService
    executor: SyncExecutor  # in-process threads, or none when the bus workers run syncs
    read_model: Any  # fgd_api.projections.Projections, or what a test passes
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings | None = None, read_model: Any = None) -> Container:
        settings = settings or load_settings()
        # API callers are other people: their repositories are held to the policy.
        # Its store's pool leaves the async reads' share of the budget (persistence.py).
        app, runner = build_runner(settings, source="fgd_api", for_others=True,
                                   env=api_store_env(settings.runtime))
        executor = build_executor(settings, runner)
        if read_model is None:
            from fgd_api.read_model import build_read_model

            read_model = build_read_model(app)
        container = cls(settings, app, runner, GitOpsService(runner), executor, read_model)
        if settings.broker_url:
            from fgd_api.broker_probe import BrokerProbe, QueueStats

            container.extras["broker_health"] = BrokerProbe(settings.broker_url)
            container.extras["queue_stats"] = QueueStats(settings.broker_url)
        return container

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        for name in ("stop", "close"):
            closer = getattr(self.read_model, name, None)
            if closer:
                closer()
        self.app.close()
