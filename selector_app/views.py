"""HTTP views: the page and Comet (long-polling). Thin: parse, call, answer."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from . import endpoints
from .access import authorize_request
from .conf import get_config
from .protocol import Refused, parse_cursor, parse_query
from .runtime import get_hub
from .shutdown import get_connections

TEXT = "text/plain; charset=utf-8"


def _text(status: int, body: str = "") -> HttpResponse:
    response = HttpResponse(body, status=status, content_type=TEXT)
    response["Cache-Control"] = "no-store"
    return response


def refusal(error: Refused) -> HttpResponse:
    """The response for a refusal: its status and its one-line reason."""
    response = _text(error.status, f"{error}\n")
    if error.retry_later:
        response["Retry-After"] = str(get_config().RETRY_AFTER)
    return response


# Read-only, so CSRF protection has nothing to protect; exempting it lets
# require_safe answer other methods with the protocol's 405 instead of 403.
@csrf_exempt
@require_safe
async def comet(request: HttpRequest, name: str | None = None) -> HttpResponse:
    """``GET /comet[/<name>]?seq=N``: answer when the sequence differs from N.

    Held among the loop's open connections, so that a drain answers it at
    once (503) instead of the server waiting out the long-poll timeout.
    """
    config = get_config()
    name = name or config.DEFAULT_RESOURCE
    try:
        # Not request.GET: Django raises TooManyFieldsSent (a 500 under DEBUG)
        # and hides bad escapes; the protocol's parser refuses them with 400.
        query = parse_query(request.META.get("QUERY_STRING", ""))
        cursor = parse_cursor(query.get("seq"))
        # Before the lookup: a refusal must not tell whether the name exists.
        await authorize_request(request, name)
        async with get_connections().hold("comet"):
            snapshot = await get_hub().poll(
                name, cursor, timeout=config.LONG_POLL_TIMEOUT
            )
    except Refused as error:
        return refusal(error)
    if snapshot is None:
        return _text(204)
    return _text(200, snapshot.message)


@csrf_exempt  # read-only too: other methods get 405, not CSRF's 403
@require_safe
@never_cache
def index(request: HttpRequest) -> HttpResponse:
    """The page with the live panels; endpoint URLs follow the mount prefix."""
    return render(request, "selector_app/index.html", page_context())


def page_context() -> dict[str, object]:
    """Endpoint paths for the page's script, wherever the app is mounted."""
    config = get_config()
    return {
        "base_template": config.BASE_TEMPLATE,
        "resource": config.DEFAULT_RESOURCE,
        "comet_url": endpoints.comet_url(),
        "websocket_path": endpoints.websocket_path(),
        "bidirectional_path": endpoints.bidirectional_path(),
    }
