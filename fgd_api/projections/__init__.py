"""Read projections for the REST API: the spec's tables (``netbox_hedgehog_fgd_*``) kept
from the event store, with tracking in the same transaction as every row written.

    projections = Projections(app)       # creates the tables beside the event store
    projections.start()                  # live (PostgreSQL) or polling (SQLite) runner
    projections.wait_for(position)       # read-your-writes after a save
    projections.sync_status(sync_id)     # the spec's shapes, as fgd_core.application.views
    derives them
"""

from fgd_api.projections.recorders import PostgresReadModel, ReadModelRecorder, SQLiteReadModel
from fgd_api.projections.runner import (
    PROJECTION_LAG,
    EventFeed,
    Projections,
    ProjectionTimeoutError,
    ReadModelProjection,
)

__all__ = [
    "PROJECTION_LAG",
    "EventFeed",
    "PostgresReadModel",
    "ProjectionTimeoutError",
    "Projections",
    "ReadModelProjection",
    "ReadModelRecorder",
    "SQLiteReadModel",
]
