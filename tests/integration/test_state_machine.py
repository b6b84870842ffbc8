"""Random command sequences against the real event store (hypothesis state machine).

Whatever the order of commands: no illegal state is reached, a refused command stores
nothing, every stored event validates against its schema, and rebuilding the aggregates
from the store gives exactly the state the commands left in memory.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Any

import psycopg
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from fgd_core.adapters.persistence import postgres_env, sqlite_env
from fgd_core.application.app import FGDApplication
from fgd_core.application.replay import history
from fgd_core.domain.sync_operation import STAGES
from fgd_core.errors import FGDError
from tests.conftest import PG_URL

LEGAL = {
    ("", "pending"),
    ("pending", "processing"),
    *{(a, b) for a in ("pending", "processing") for b in ("failed", "cancelled", "timed_out")},
    ("processing", "completed"),
}
FILES = [f"gitops/raw/{n}.yaml" for n in ("a", "b", "c")]
CODES = st.sampled_from(["FGD_1001", "FGD_3004", "FGD_4003", "bad-code"])


class SyncMachine(RuleBasedStateMachine):
    backend = "sqlite"

    @initialize()
    def setup(self) -> None:
        if self.backend == "postgres":
            self.schema = f"sm_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{self.schema}"')
            env = postgres_env(f"{PG_URL}?schema={self.schema}")
        else:
            self.tmp = tempfile.TemporaryDirectory()
            env = sqlite_env(Path(self.tmp.name) / "sm.sqlite3")
        self.app = FGDApplication(env=env)
        self.fabric_ids = [self.app.register_fabric(n, f"/r/{n}").fabric_id for n in "xy"]
        self.syncs: dict[str, Any] = {}  # sync_id -> in-memory aggregate after last command

    def teardown(self) -> None:
        if not hasattr(self, "app"):
            return
        self.app.close()
        if self.backend == "postgres":
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{self.schema}" CASCADE')
        else:
            self.tmp.cleanup()

    def attempt(self, command: Any, *args: Any, **kwargs: Any) -> Any:
        before = self.app.recorder.max_notification_id() or 0
        try:
            result = command(*args, **kwargs)
        except FGDError:
            assert (self.app.recorder.max_notification_id() or 0) == before, "refused but stored"
            return None
        if hasattr(result, "sync_id"):
            self.syncs[result.sync_id] = result
        return result

    def a_sync(self, data: st.DataObject) -> str | None:
        if not self.syncs:
            return None
        # By start order, not by id: ids are random, the order of starts is not.
        return list(self.syncs)[data.draw(st.integers(0, len(self.syncs) - 1))]

    @rule(fabric=st.integers(0, 1), trigger=st.sampled_from(["manual", "webhook", "nope"]))
    def start(self, fabric: int, trigger: str) -> None:
        self.attempt(self.app.start_sync, self.fabric_ids[fabric], trigger)

    @rule(data=st.data(), stage=st.sampled_from(STAGES))
    def begin(self, data: st.DataObject, stage: str) -> None:
        if sid := self.a_sync(data):
            self.attempt(self.app.begin_stage, sid, stage)

    @rule(data=st.data(), stage=st.sampled_from(STAGES))
    def complete_stage(self, data: st.DataObject, stage: str) -> None:
        if sid := self.a_sync(data):
            self.attempt(self.app.complete_stage, sid, stage)

    @rule(data=st.data(), path=st.sampled_from(FILES))
    def discover(self, data: st.DataObject, path: str) -> None:
        if sid := self.a_sync(data):
            self.attempt(self.app.discover_files, sid, [(path, 10, None)])
            self.syncs[sid] = self.app.get_sync(sid)

    @rule(data=st.data(), path=st.sampled_from(FILES), outcome=st.integers(0, 2))
    def finish_file(self, data: st.DataObject, path: str, outcome: int) -> None:
        if not (sid := self.a_sync(data)):
            return
        if outcome == 0:
            self.attempt(self.app.process_file, sid, path, documents_extracted=1,
                         target_files=["gitops/managed/vpcs/v.yaml"], processing_time=0.1)
        elif outcome == 1:
            self.attempt(self.app.fail_file, sid, path, 1,
                         [{"code": "FGD_1003", "message": "bad", "index": 0, "line": 1}])
        else:
            self.attempt(self.app.skip_file, sid, path, "unchanged since it failed")

    @rule(data=st.data(), code=CODES)
    def warn(self, data: st.DataObject, code: str) -> None:
        if sid := self.a_sync(data):
            self.attempt(self.app.warn, sid, code, "something to know")
            self.syncs[sid] = self.app.get_sync(sid)

    @rule(data=st.data(), how=st.sampled_from(["complete", "fail", "cancel", "time_out"]))
    def end(self, data: st.DataObject, how: str) -> None:
        if not (sid := self.a_sync(data)):
            return
        if how == "complete":
            self.attempt(self.app.complete_sync, sid)
        elif how == "fail":
            self.attempt(self.app.fail_sync, sid, "FGD_3004", "it broke")
        elif how == "cancel":
            self.attempt(self.app.cancel_sync, sid)
        else:
            self.attempt(self.app.time_out_sync, sid, 300.0)

    @invariant()
    def only_legal_states_and_one_running_sync_per_fabric(self) -> None:
        if not hasattr(self, "app"):
            return
        for fid in self.fabric_ids:
            fabric = self.app.get_fabric(fid)
            active = [s for s in self.syncs.values() if s.fabric_id == fid and s.is_active]
            assert len(active) <= 1
            assert fabric.running_sync_id == (active[0].sync_id if active else None)
        for sync in self.syncs.values():
            pairs = {(t["from_state"], t["to_state"]) for t in sync.transitions}
            assert pairs <= LEGAL, pairs - LEGAL

    @invariant()
    def replay_rebuilds_the_same_state(self) -> None:
        if not hasattr(self, "app"):
            return
        for sid, in_memory in self.syncs.items():
            rebuilt = self.app.get_sync(sid)
            assert _state(rebuilt) == _state(in_memory)
        list(history(self.app))  # decodes and validates every stored envelope


def _state(aggregate: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}


class PostgresSyncMachine(SyncMachine):
    backend = "postgres"


TestSyncMachineSQLite = SyncMachine.TestCase
TestSyncMachineSQLite.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)
TestSyncMachinePostgres = PostgresSyncMachine.TestCase
TestSyncMachinePostgres.settings = settings(max_examples=25, stateful_step_count=30, deadline=None)
