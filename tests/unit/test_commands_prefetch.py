"""The intake consumer holds twice its largest batch: the next batch is delivered while one
is recorded. The CLI's default is the consumer's."""

from __future__ import annotations

from typing import Any

from fgd_core.cli.worker_commands import commands
from fgd_workers.commands import DEFAULT_PREFETCH, CommandConsumer


def consumer(**kwargs: Any) -> CommandConsumer:
    return CommandConsumer(None, lambda: None, **kwargs)  # type: ignore[arg-type, return-value]


def test_a_batch_is_half_the_prefetch_by_default() -> None:
    assert consumer().prefetch == DEFAULT_PREFETCH
    assert consumer().batch_size == DEFAULT_PREFETCH // 2
    assert consumer(prefetch=8).batch_size == 4
    assert consumer(prefetch=1).batch_size == 1  # never an empty batch
    assert consumer(prefetch=8, batch_size=8).batch_size == 8  # asked for: as asked
    assert consumer(prefetch=8, batch_size=100).batch_size == 8  # never beyond the prefetch


def test_the_command_line_default_is_the_consumers() -> None:
    [option] = [p for p in commands.params if p.name == "prefetch"]
    assert option.default == DEFAULT_PREFETCH
