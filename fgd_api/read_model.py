"""The read model the REST views are served from: the projections beside the event store."""

from __future__ import annotations

from typing import Any

from fgd_core.application.app import FGDApplication


def build_read_model(app: FGDApplication) -> Any:
    from fgd_api.projections import Projections

    return Projections(app)
