"""Two processes start a sync for the same fabric at the same moment: exactly one wins, the
other gets FGD_3001 naming the winner's sync — on SQLite and on PostgreSQL."""

from __future__ import annotations

import multiprocessing as mp
from typing import Any

from fgd_core.application.app import FGDApplication
from fgd_core.errors import FGDError

ROUNDS = 4


def _contender(env: dict[str, str], barrier: Any, results: Any, fabric_ids: list[int]) -> None:
    app = FGDApplication(env=env)
    for fabric_id in fabric_ids:
        barrier.wait(timeout=30)
        try:
            sync = app.start_sync(fabric_id, "webhook")
            results.put((fabric_id, "won", sync.sync_id))
        except FGDError as exc:
            results.put((fabric_id, exc.code, exc.details.get("sync_id")))
    app.close()


def test_concurrent_starts_exactly_one_wins(app_env: dict[str, str]) -> None:
    app = FGDApplication(env=app_env)
    fabric_ids = [app.register_fabric(f"f{i}", f"/r/{i}").fabric_id for i in range(ROUNDS)]

    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(target=_contender, args=(app_env, barrier, results, fabric_ids))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=60) for _ in range(2 * ROUNDS)]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0

    for fabric_id in fabric_ids:
        mine = sorted((o[1], o[2]) for o in outcomes if o[0] == fabric_id)
        (loser_code, named), (won, winner_id) = mine
        assert (won, loser_code) == ("won", "FGD_3001"), mine
        assert named == winner_id
        fabric = app.get_fabric(fabric_id)
        assert fabric.running_sync_id == winner_id
        assert fabric.sync_ids == [winner_id]
    app.close()
