"""Who acts: the integer id of the known user (an API token's principal) on whose behalf
events are created, for the envelope's ``metadata.user_id`` (the spec's base schema).

Set with ``acting_as`` around the work a user's request does (the API does it for every
request with a valid token, ``fgd_api.deps.get_caller``); an event created inside takes the
id with it (``FGDAggregate.Event.__post_init__``), so it is kept even when the events are
saved later or together with other users' (the bus intake's batches). Events created by
the engine itself — a sync's stages and files, the scheduler's syncs, the CLI's own work —
carry none.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

ACTING_USER: ContextVar[int | None] = ContextVar("fgd_acting_user", default=None)
# The attribute an event keeps the id in (outside its payload; see events.envelope).
EVENT_ATTRIBUTE = "acting_user_id"


def current_user_id() -> int | None:
    return ACTING_USER.get()


@contextmanager
def acting_as(user_id: int | None) -> Iterator[None]:
    """Events created inside are on behalf of ``user_id`` (None: nobody in particular)."""
    token = ACTING_USER.set(user_id)
    try:
        yield
    finally:
        ACTING_USER.reset(token)
