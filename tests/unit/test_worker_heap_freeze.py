"""A worker freezes what its start-up built (``gc.freeze``), so that the collector's full
collections no longer rescan it while the worker handles messages."""

from __future__ import annotations

import gc
import threading

from fgd_core.cli.worker import open_when_store_answers


def test_start_up_freezes_the_heap_it_built() -> None:
    gc.unfreeze()
    try:
        built = open_when_store_answers(lambda: [["app"]], threading.Event(), "test")
        assert gc.get_freeze_count() > 0
        assert built == [["app"]]
        assert gc.is_tracked(built)
        assert not any(o is built for o in gc.get_objects())  # frozen: not a collected one
    finally:
        gc.unfreeze()
