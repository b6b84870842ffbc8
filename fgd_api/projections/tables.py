"""The read-model tables: the spec's ``db_table`` names, columns and indexes, declared once
and rendered to DDL by a dialect (PostgreSQL or SQLite).

Column types are logical (``text int bool json ts uuid``); ``dialects.py`` maps them. Extra
columns beyond the spec (``*_position``, ``size``, ``blob_id``, ``archived_to`` …) carry
what the views in ``fgd_core/application/views.py`` show but the spec's models do not name.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[tuple[str, str], ...]
    key: tuple[str, ...]
    unique: tuple[tuple[str, ...], ...] = ()
    indexes: tuple[tuple[str, str], ...] = ()  # (index name, column list)

    @property
    def types(self) -> dict[str, str]:
        return dict(self.columns)

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.columns]


SYNC = Table(
    "netbox_hedgehog_fgd_sync_operation",
    (
        ("sync_id", "uuid"),
        ("fabric_id", "int"),
        ("trigger", "text"),
        ("state", "text"),
        ("started_at", "ts"),
        ("completed_at", "ts"),
        ("current_stage", "text"),
        ("stages_data", "json"),  # {stages_completed, stages_pending, summaries}
        ("files_processed", "int"),
        ("total_files", "int"),
        ("files_created", "int"),
        ("errors", "json"),
        ("warnings", "json"),
        ("correlation_id", "text"),
        ("options", "json"),
        ("updated_at", "ts"),
        ("current_file", "text"),
        ("started_position", "int"),  # history tie-break: the order syncs were started in
        ("last_position", "int"),  # last notification applied to this row (idempotence)
    ),
    key=("sync_id",),
    unique=(("correlation_id",),),
    indexes=(
        ("fgd_sync_fabric_started_idx", '"fabric_id", "started_at" DESC'),
        # A fabric's history filtered by status (the common page, ?status=…): the count is
        # one range of this index, the page a walk of it in the history's order (no sort).
        (
            "fgd_sync_fabric_state_started_idx",
            '"fabric_id", "state", "started_at" DESC, "started_position" DESC',
        ),
        ("fgd_sync_state_idx", '"state"'),
        ("fgd_sync_correlation_idx", '"correlation_id"'),
    ),
)

TRANSITION = Table(
    "netbox_hedgehog_fgd_sync_state_transition",
    (
        ("sync_id", "uuid"),
        ("position", "int"),  # the notification that made the transition: its order and key
        ("from_state", "text"),
        ("to_state", "text"),
        ("timestamp", "ts"),
        ("context", "json"),
    ),
    key=("sync_id", "position"),
)

FILE = Table(
    "netbox_hedgehog_fgd_file_record",
    (
        ("sync_id", "uuid"),
        ("file_path", "text"),
        ("file_type", "text"),
        ("status", "text"),
        ("size", "int"),
        ("blob_id", "text"),
        ("documents_found", "int"),
        ("documents_extracted", "int"),
        ("target_files", "json"),
        ("archived_to", "text"),
        ("error_message", "text"),
        ("validation_errors", "json"),
        ("discovered_at", "ts"),
        ("processed_at", "ts"),
        ("discovered_position", "int"),
        ("last_position", "int"),
    ),
    key=("sync_id", "file_path"),  # the spec's unique_together
)

AUDIT = Table(
    "netbox_hedgehog_fgd_audit_log",
    (
        ("id", "int"),  # the notification id of the audit.recorded event
        ("event_id", "uuid"),
        ("timestamp", "ts"),
        ("user", "text"),
        ("fabric_id", "int"),
        ("action", "text"),
        ("ip_address", "text"),
        ("user_agent", "text"),
        ("sync_id", "uuid"),
        ("details", "json"),
        ("success", "bool"),
        ("error_message", "text"),
        ("correlation_id", "text"),
    ),
    key=("id",),
    indexes=(
        ("fgd_audit_timestamp_idx", '"timestamp" DESC'),
        ("fgd_audit_user_timestamp_idx", '"user", "timestamp" DESC'),
        ("fgd_audit_fabric_timestamp_idx", '"fabric_id", "timestamp" DESC'),
    ),
)

FABRIC = Table(
    "netbox_hedgehog_fgd_fabric",
    (
        ("id", "int"),
        ("name", "text"),
        ("repository", "text"),
        ("branch", "text"),
        ("gitops_directory", "text"),
        ("gitops_initialized", "bool"),
        ("gitops_directory_status", "text"),
        ("raw_directory_path", "text"),
        ("managed_directory_path", "text"),
        ("last_sync_id", "uuid"),
        ("last_sync_at", "ts"),
        ("last_sync_status", "text"),
        ("running_sync_id", "uuid"),
        ("total_sync_count", "int"),
        ("successful_sync_count", "int"),
        ("failed_sync_count", "int"),
        ("sync_enabled", "bool"),
        ("auto_sync_on_change", "bool"),
        ("sync_interval_minutes", "int"),
        ("correlation_id", "text"),
        ("created_at", "ts"),
        ("updated_at", "ts"),
        ("last_position", "int"),
    ),
    key=("id",),
)

TABLES = (SYNC, TRANSITION, FILE, AUDIT, FABRIC)

# Short names for the SQL templates: "SELECT … FROM {sync}".
ALIASES = {"sync": SYNC, "transition": TRANSITION, "file": FILE, "audit": AUDIT, "fabric": FABRIC}
