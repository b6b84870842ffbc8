"""The events of one save, taken from its aggregates before they are stored.

``FGDApplication.save`` is ``collect`` (this) + ``record``: a record that conflicts stores
nothing and can be tried again with the same events, merged with others (a batch of starts
whose slots are taken again in other capacity shards — ``fgd_workers.command_batch``).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.application import ProcessingEvent
from eventsourcing.domain import BaseAggregate


class Collected(ProcessingEvent[UUID]):
    """The events of one save, taken from its aggregates (``FGDApplication.collect``):
    eventsourcing's ProcessingEvent, collecting without its two runtime-Protocol
    ``isinstance`` checks per object (tens of µs each: most of a small save's CPU)."""

    def collect_events(self, *objs: Any, **kwargs: Any) -> None:
        for obj in objs:
            if isinstance(obj, BaseAggregate):
                self.events.extend(obj.collect_events())
                self.aggregates[obj.id] = obj
            elif obj is not None:
                super().collect_events(obj)
        self.saved_kwargs.update(kwargs)

    def merged(self, other: Collected) -> Collected:
        """These events and ``other``'s, for one save (neither is changed)."""
        both = Collected()
        both.events = [*self.events, *other.events]
        both.aggregates = {**self.aggregates, **other.aggregates}
        both.saved_kwargs = {**self.saved_kwargs, **other.saved_kwargs}
        return both


__all__ = ["Collected"]
