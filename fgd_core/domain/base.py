"""What every FGD aggregate shares: each of its events carries the envelope's ``fabric_id``
and ``correlation_id``, so the event store can write the spec's envelope from the event alone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from fgd_core.domain.actor import ACTING_USER, EVENT_ATTRIBUTE

# Aggregate ids are derived (uuid5) from the integer ids users know, so every process
# finds the same aggregate without a lookup.
ID_NAMESPACE = uuid5(NAMESPACE_URL, "https://fgd-sync.invalid/aggregates")


def fabric_uuid(fabric_id: int) -> UUID:
    return uuid5(ID_NAMESPACE, f"fabric:{fabric_id}")


class FGDAggregate(Aggregate):
    """Base aggregate: injects the envelope fields into every event it triggers."""

    fabric_id: int
    correlation_id: str
    event_time: datetime  # the timestamp of the event being applied (see Event.mutate)

    class Event(Aggregate.Event):
        fabric_id: int
        correlation_id: str

        def __post_init__(self) -> None:
            super().__post_init__()
            # The user on whose behalf it is created (metadata.user_id); not a field, so
            # neither the payload nor a replayed event has it.
            user_id = ACTING_USER.get()
            if user_id is not None:
                object.__setattr__(self, EVENT_ATTRIBUTE, user_id)

        def mutate(self, aggregate: Any) -> Any:
            # eventsourcing sets ``modified_on`` only after apply(): expose the time of the
            # event being applied, so the state it stamps (completed_at …) is its own.
            if aggregate is not None:  # None: a creation event builds the aggregate
                aggregate.event_time = self.timestamp
            return super().mutate(aggregate)

    class Created(Event, Aggregate.Created):
        pass

    def trigger_event(self, event_class: type[Any], **kwargs: Any) -> None:
        kwargs.setdefault("fabric_id", self.fabric_id)
        kwargs.setdefault("correlation_id", self.correlation_id)
        super().trigger_event(event_class, **kwargs)
