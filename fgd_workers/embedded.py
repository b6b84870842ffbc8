"""Embedded mode's executors now live in ``fgd_core.application.executors`` (the composition
root, ``fgd_core.bootstrap``, picks one); re-exported here for existing imports."""

from fgd_core.application.executors import BusExecutor, EmbeddedExecutor

__all__ = ["BusExecutor", "EmbeddedExecutor"]
