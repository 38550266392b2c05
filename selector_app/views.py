"""HTTP views: the page and Comet (long-polling). Thin: parse, call, answer."""

from __future__ import annotations

import time

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from . import endpoints, metrics
from . import events_select as events_select_module
from .access import authorize_request, may_read_metrics
from .conf import Config, get_config
from .events import check_stream
from .events_django import streaming_response
from .health import process_health
from .protocol import Refused, parse_cursor, parse_query
from .runtime import get_hub
from .select_wire import answer, query_cursors
from .shutdown import get_connections

TEXT = "text/plain; charset=utf-8"
JSON = "application/json"


def _text(status: int, body: str = "") -> HttpResponse:
    response = HttpResponse(body, status=status, content_type=TEXT)
    response["Cache-Control"] = "no-store"
    return response


def refusal(error: Refused) -> HttpResponse:
    """The response for a refusal: its status and its one-line reason."""
    metrics.refusals[type(error).__name__] += 1
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
    if config.METRICS:
        response = await _comet(request, name, config, since=time.time())
        metrics.comet_replies[response.status_code] += 1
        return response
    return await _comet(request, name, config)


async def _comet(
    request: HttpRequest, name: str | None, config: Config, since: float = 0.0
) -> HttpResponse:
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
    if since:
        metrics.sent["comet"] += 1
        metrics.delivered("comet", snapshot, since)
    return _text(200, snapshot.message)


@csrf_exempt  # read-only: other methods get 405, not CSRF's 403
@require_safe
async def select(request: HttpRequest) -> HttpResponse:
    """``GET /select?r=a:3&r=b:7``: a JSON array of every watched resource
    whose sequence differs from its cursor, at once or when one does; 204
    after the long-poll timeout. Held like a Comet request."""
    config = get_config()
    since = time.time()
    try:
        query = parse_query(request.META.get("QUERY_STRING", ""))
        cursors = query_cursors(query, limit=config.MAX_SELECT_RESOURCES)
        # Before the lookup: a refusal must not tell whether a name exists.
        for name in cursors:
            await authorize_request(request, name)
        async with get_connections().hold("comet"):
            snapshots = await get_hub().poll_many(
                cursors, timeout=config.LONG_POLL_TIMEOUT
            )
    except Refused as error:
        return refusal(error)
    if snapshots is None:
        return _text(204)
    if config.METRICS:
        metrics.sent["select"] += len(snapshots)
        for snapshot in snapshots:
            metrics.delivered("comet", snapshot, since)
    response = HttpResponse(answer(snapshots), content_type=JSON)
    response["Cache-Control"] = "no-store"
    return response


@csrf_exempt  # read-only: other methods get 405, not CSRF's 403
@require_safe
async def events(request: HttpRequest, name: str | None = None) -> HttpResponse:
    """``GET /events[/<name>]``: a Server-Sent Events stream.

    ``CometFastPath`` serves it at the ASGI level (selector_app/events.py),
    where a stream costs no thread and no task of its own; this view is
    Django's path, for sites without the fast path.
    """
    config = get_config()
    name = name or config.DEFAULT_RESOURCE
    try:
        cursor = await check_stream(request, name, config)
        return streaming_response(request, name, cursor, config)
    except Refused as error:
        return refusal(error)


@csrf_exempt  # read-only: other methods get 405, not CSRF's 403
@require_safe
async def events_select(request: HttpRequest) -> HttpResponse:
    """``GET /events/select?r=a:3&r=b:7``: one event stream over several
    resources (selector_app/events_select.py); this view is Django's path,
    ``CometFastPath`` serves it on the event loop."""
    config = get_config()
    try:
        cursors = await events_select_module.check_stream(request, config)
        return events_select_module.streaming_response(request, cursors, config)
    except Refused as error:
        return refusal(error)


@csrf_exempt  # read-only: other methods get 405, not CSRF's 403
@require_safe
async def health(request: HttpRequest) -> HttpResponse:
    """``GET health``: 200 when this process should get clients, else 503
    with the reason (JSON either way). Served on the event loop by
    ``CometFastPath`` like Comet; no database, no layer call."""
    report = process_health()
    response = JsonResponse(report.body, status=200 if report.healthy else 503)
    response["Cache-Control"] = "no-store"
    return response


@csrf_exempt  # read-only: other methods get 405, not CSRF's 403
@require_safe
async def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    """``GET metrics``: this process's metrics in the Prometheus text format,
    to the networks and users ``METRICS_NETWORKS`` and ``METRICS_PERMISSION``
    let in; 404 unless ``METRICS`` is on."""
    config = get_config()
    if not config.METRICS:
        raise Http404("Metrics are off (SELECTOR_APP['METRICS']).")
    if not await may_read_metrics(request):
        return _text(
            403,
            "Metrics are served to the networks in SELECTOR_APP['METRICS_NETWORKS'] "
            "and users with SELECTOR_APP['METRICS_PERMISSION'] only.\n",
        )
    from . import exposition

    response = HttpResponse(exposition.render(), content_type=exposition.CONTENT_TYPE)
    response["Cache-Control"] = "no-store"
    return response


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
        "events_url": endpoints.events_url(),
        "paths": endpoints.resource_paths(),
        "websocket_path": endpoints.websocket_path(),
        "bidirectional_path": endpoints.bidirectional_path(),
        "grid": config.GRID_RESOURCES,
        "select_paths": endpoints.select_paths(),
    }
