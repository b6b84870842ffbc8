"""``fgd serve``: the API (and, on the embedded default, every worker in-process)."""

from __future__ import annotations

import click


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option("--log-level", default="info", show_default=True,
              help="debug, info, warning or error (debug whenever fgd.debug_mode / "
              "HEDGEHOG_FGD_DEBUG is true).")
def serve(host: str, port: int, log_level: str) -> None:
    """Serve the REST API, the web console (/ui/), the WebSocket progress stream, webhooks
    and /metrics."""
    import logging

    import uvicorn

    from fgd_api.app import create_app
    from fgd_core.adapters.observability import configure_logging, configure_tracing
    from fgd_core.config import load_settings

    settings = load_settings()
    debug = settings.fgd.debug_mode
    configure_logging("debug" if debug else log_level)
    if debug:
        logging.getLogger("fgd_api").debug("logging at DEBUG: fgd.debug_mode (HEDGEHOG_FGD_DEBUG)")
        log_level = "debug"
    configure_tracing(settings.runtime.tracing)  # HEDGEHOG_FGD_TRACING
    uvicorn.run(
        create_app(embedded_scheduler=True),
        host=host,
        port=port,
        log_level=log_level,
        log_config=None,
    )
