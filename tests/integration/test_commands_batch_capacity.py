"""``CommandIntake.handle_batch`` keeps the SyncCapacity its last batch saved and brings it
up to date before the next (``fgd_core.adapters.batch_load.fast_forward``): starts recorded by
another process in between count against the limit — on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from fgd_core.application.app import FGDApplication
from fgd_core.application.auth import create_token
from fgd_workers.command_intake import Command, CommandIntake

LIMIT = 3


@pytest.fixture
def two(app_env: dict[str, str]) -> Iterator[tuple[FGDApplication, FGDApplication]]:
    first = FGDApplication(env=app_env, max_concurrent_syncs=LIMIT)
    second = FGDApplication(env=app_env, max_concurrent_syncs=LIMIT)
    yield first, second
    first.close()
    second.close()


def triggers(token: str, fabric_ids: list[int]) -> list[Command]:
    return [Command("sync.trigger", json.dumps({"fabric_id": f}).encode(),
                    headers={"authorization": f"Token {token}"},
                    message_id=str(uuid.uuid4()), correlation_id=f"cid-{uuid.uuid4()}",
                    reply_to="replies") for f in fabric_ids]


def test_starts_by_another_process_between_batches_count_against_the_limit(
        two: tuple[FGDApplication, FGDApplication]) -> None:
    first, second = two
    fabrics = [first.register_fabric(f"f{i}", f"https://github.com/o/f{i}.git").fabric_id
               for i in range(6)]
    token, _ = create_token(first, "ci", permissions=["trigger_fgd_sync"])
    mine, other = CommandIntake(first), CommandIntake(second)
    assert [r.kind for r in mine.handle_batch(triggers(token, fabrics[:2]))] == [
        "started", "started"]
    assert mine._held_capacity is not None  # kept for the next batch
    assert [r.kind for r in other.handle_batch(triggers(token, fabrics[2:3]))] == ["started"]
    # The held capacity says 2 slots; the store says 3 (the limit): both refused.
    assert [r.kind for r in mine.handle_batch(triggers(token, fabrics[3:5]))] == [
        "FGD_5004", "FGD_5004"]
    assert mine._held_capacity is not None  # read, untouched: kept for the next batch too
    capacity = first.sync_capacity()
    assert capacity is not None and capacity.active == LIMIT
    sync_id = next(iter(capacity.running))
    first.update_sync(sync_id, lambda s: s.cancel("done with it"))  # frees a slot
    assert [r.kind for r in mine.handle_batch(triggers(token, fabrics[5:6] + fabrics[3:4]))] \
        == ["started", "FGD_5004"]
    capacity = second.sync_capacity()
    assert capacity is not None and capacity.active == LIMIT
