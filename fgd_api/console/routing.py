"""How console routes answer what goes wrong: HTML, not the API's JSON bodies.

No session → 303 to the sign-in form (the page asked for comes back after it); a refused
form (CSRF, too large) → its status; an FGD error (403 no permission, 404 unknown fabric or
sync, 409 a sync is running …) → an error page with the status the API would answer.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.responses import RedirectResponse, Response

from fgd_api.console.render import render
from fgd_api.console.session import NotSignedIn, Refused
from fgd_api.errors import status_for
from fgd_core.errors import FGDError


def error_page(request: Request, status: int, title: str, message: str,
               details: dict[str, Any] | None = None) -> Response:
    caller = getattr(request.state, "console_caller", None)
    return render(request, "error.html", status=status, caller=caller, title=title,
                  message=message, details=details or {})


class ConsoleRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except NotSignedIn:
                if request.method != "GET":
                    return error_page(request, 401, "Not signed in",
                                      "Sign in with an API token first.")
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/ui/login?next={quote(target)}", status_code=303)
            except Refused as exc:
                return error_page(request, exc.status, "Refused", str(exc))
            except RequestValidationError:  # e.g. /ui/fabrics/abc/: no such page
                return error_page(request, 404, "Not found", "There is no such page.")
            except FGDError as exc:
                status = status_for(exc)
                title = {403: "Permission denied", 404: "Not found"}.get(status, "Error")
                return error_page(request, status, title, f"{exc.code}: {exc.message}",
                                  exc.details)

        return console_handler
