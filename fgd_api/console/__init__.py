"""The operator console at ``/ui/``: server-rendered pages (Jinja2) over the API's own
endpoint functions and read projections, a little plain JavaScript for live progress and
local times. See README.md, "Web console"."""

from fastapi import APIRouter

from fgd_api.console import actions, pages, signin

router = APIRouter()
for module in (signin, pages, actions):
    router.include_router(module.router)

__all__ = ["router"]
