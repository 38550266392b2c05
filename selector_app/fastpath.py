"""Comet without Django's per-request machinery: an optional ASGI wrapper.

Django's ASGI handler runs each request in a fresh thread-sensitive context,
so the ``request_started``/``request_finished`` receivers and every
``MiddlewareMixin`` middleware hop to a thread made for that request. For a
page that is nothing; for a long-poll endpoint answered once a second per
client it is 2-3 ms of CPU per reply, twenty times the view itself
(docs/benchmarks.md). ``CometFastPath`` calls the very same Comet view
directly on the event loop, and hands every other request to Django. The
health endpoint (``GET health``), asked every second by every load
balancer, and the metrics endpoint (``GET metrics``), fetched by Prometheus
every few seconds, are served the same way: Django's path costs a scrape a
third of its CPU (docs/operations.md).

What the fast path keeps: the URL configuration decides what is Comet (so any
mount prefix works), ``ALLOWED_HOSTS`` is enforced (a bad ``Host`` goes to
Django, which answers 400 and logs it as usual), ``SecurityMiddleware``'s
redirect and headers are applied when it is installed, a disconnect cancels
the held view, and an exception becomes Django's 500 response. A request it
cannot even build (a query that is not UTF-8) is the protocol's 400, never a
traceback.

With ``SELECTOR_APP["AUTHORIZE"]`` set, the view must know the user: the
fast path then applies ``SessionMiddleware`` and ``AuthenticationMiddleware``
(those installed) to the request, so the user is loaded from the session
exactly as on Django's path, and only when the hook is asked. A client
without a session cookie costs no query. The metrics endpoint gets the same
when ``METRICS_PERMISSION`` is set, read only for a client outside
``METRICS_NETWORKS``.

What it skips, so use it only when your Comet endpoint needs none of it: the
rest of ``MIDDLEWARE`` (CORS headers, rate limiting...), the session's
response (a session is only read here, never saved), and the
``request_started``/``request_finished`` signals (the view does not use
the database connection those signals tidy).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from io import BytesIO
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest, get_script_prefix
from django.core.handlers.exception import response_for_exception
from django.http import HttpResponse, HttpResponseServerError
from django.middleware.security import SecurityMiddleware
from django.urls import Resolver404, ResolverMatch, get_resolver
from django.utils.module_loading import import_string

from . import events, events_select, views
from .conf import get_config
from .protocol import MalformedQuery, Refused

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SECURITY_MIDDLEWARE = "django.middleware.security.SecurityMiddleware"
#: What gives a request its user: the session, then the user from it.
IDENTIFICATION_MIDDLEWARE = (
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
)

#: The views served on the event loop: Comet, event streams, the health
#: endpoint and the metrics endpoint.
FAST_VIEWS = (
    views.comet,
    views.select,
    views.events,
    views.events_select,
    views.health,
    views.prometheus_metrics,
)

#: How many Comet paths the fast path remembers the resolution of, and the
#: longest it remembers: a resource's path is short, and a client sending
#: long or ever-new paths must not grow the process (or push /comet out).
MAX_CACHED_MATCHES = 1024
MAX_CACHED_PATH = 256

logger = logging.getLogger(__name__)


def _unused_get_response(request: Any) -> HttpResponse:  # pragma: no cover
    raise AssertionError("the fast path calls SecurityMiddleware's hooks only")


class CometFastPath:
    """ASGI middleware: serve ``selector_app.views.comet`` on the event loop.

    Wrap the HTTP application in your ``asgi.py``::

        "http": CometFastPath(get_asgi_application()),

    Only ``GET`` and ``HEAD`` requests whose path resolves to the Comet view
    (or the health or metrics view) are taken; everything else, other methods on Comet
    included (Django's 405), goes to ``app`` untouched.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = self._match(scope)
        if match is None:
            await self.app(scope, receive, send)
            return
        try:
            request = ASGIRequest(scope, BytesIO())
            request.get_host()
        except UnicodeDecodeError:
            # Django would answer 400 too, but log a traceback for it.
            response = views.refusal(
                MalformedQuery("The query string is not valid UTF-8.")
            )
        except Exception:
            # A bad Host (DisallowedHost) or anything else Django's handler
            # knows how to answer and log: it builds its own request.
            await self.app(scope, receive, send)
            return
        else:
            request.resolver_match = match
            if match.func in (views.events, views.events_select):
                await self._stream(request, match, receive, send)
                return
            response = await self._respond(request, match, receive)
            if response is None:
                return  # the client went away while the request was held
        await _send_response(response, send)

    def _match(self, scope: Scope) -> ResolverMatch | None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            return None
        prefix = get_script_prefix(scope)
        path_info = scope["path"].removeprefix(prefix) if prefix else scope["path"]
        return _comet_match(settings.ROOT_URLCONF, path_info)

    @functools.cached_property
    def security(self) -> SecurityMiddleware | None:
        """``SecurityMiddleware`` if the site installs it (read once)."""
        if SECURITY_MIDDLEWARE in settings.MIDDLEWARE:
            return SecurityMiddleware(_unused_get_response)
        return None

    @functools.cached_property
    def identification(self) -> list[Any]:
        """The session and authentication middleware the site installs, in its
        order (read once): what gives a request its user."""
        return [
            import_string(path)(_unused_get_response)
            for path in settings.MIDDLEWARE
            if path in IDENTIFICATION_MIDDLEWARE
        ]

    async def _respond(
        self, request: ASGIRequest, match: ResolverMatch, receive: Receive
    ) -> HttpResponse | None:
        """The response, or ``None`` if the client went away first; whatever
        fails on the way is Django's 500 (or its 400 for a suspicious
        request), as in Django's own handler."""
        security = self.security
        try:
            response = security.process_request(request) if security else None
            if response is not None:
                return response
            if self._needs_user(match):
                # Lazy: nothing is read until the hook asks for request.auser().
                for middleware in self.identification:
                    middleware.process_request(request)
            response = await self._respond_unless_gone(request, match, receive)
            if response is not None and security:
                response = security.process_response(request, response)
            return response
        except Exception as error:
            return await _exception_response(request, error)

    @staticmethod
    def _needs_user(match: ResolverMatch) -> bool:
        """Whether the view may ask who the user is: the authorization hook
        (Comet), or the permission that lets a user read the metrics."""
        config = get_config()
        if match.func is views.prometheus_metrics:
            return config.METRICS_PERMISSION is not None
        return config.AUTHORIZE is not None

    async def _stream(
        self, request: ASGIRequest, match: ResolverMatch, receive: Receive, send: Send
    ) -> None:
        """Serve an event stream (:mod:`selector_app.events`), or the response
        that refuses it (400, 403, 404, 503) like Comet's."""
        security = self.security
        try:
            response = security.process_request(request) if security else None
            if response is None:
                response = await self._open_stream(request, match, receive, send)
                if response is None:
                    return  # streamed until the end
                if security:
                    response = security.process_response(request, response)
        except Exception as error:
            response = await _exception_response(request, error)
        await _send_response(response, send)

    async def _open_stream(
        self, request: ASGIRequest, match: ResolverMatch, receive: Receive, send: Send
    ) -> HttpResponse | None:
        """Stream, and return ``None`` once it has ended; or the refusal to
        send instead. Only what comes before the headers may raise."""
        config = get_config()
        if config.AUTHORIZE is not None:
            for middleware in self.identification:
                middleware.process_request(request)
        try:
            if match.func is views.events_select:
                cursors = await events_select.check_stream(request, config)
                serve = functools.partial(events_select.serve, request, cursors)
            else:
                name = match.kwargs.get("name") or config.DEFAULT_RESOURCE
                cursor = await events.check_stream(request, name, config)
                serve = functools.partial(events.serve, request, name, cursor)
            headers = events.stream_headers()
            if self.security:
                headers = self.security.process_response(request, headers)
            events.try_open(config)
        except Refused as error:
            return views.refusal(error)
        try:
            await serve(receive, send, _header_list(headers))
        except Exception:
            # After the headers nothing else can be answered: the stream ends
            # (the server closes the connection) and the log says why.
            logger.exception("The event stream of %s failed.", request.path)
        return None

    async def _respond_unless_gone(
        self, request: ASGIRequest, match: ResolverMatch, receive: Receive
    ) -> HttpResponse | None:
        """Run the view; cancel it (its ``finally`` frees the waiter) if the
        client disconnects first."""
        answer = asyncio.ensure_future(_call_view(request, match))
        gone = asyncio.ensure_future(_disconnected(receive))
        try:
            await asyncio.wait((answer, gone), return_when=asyncio.FIRST_COMPLETED)
        finally:
            answer.cancel()
            gone.cancel()
            await asyncio.gather(answer, gone, return_exceptions=True)
        if answer.cancelled():
            return None
        return answer.result()


def _comet_match(urlconf: str, path_info: str) -> ResolverMatch | None:
    """What ``path_info`` resolves to, if that is a view of FAST_VIEWS.

    Resolving walks the URL patterns, a fifth of a reply's CPU; clients ask
    for the same few paths again and again, so matches are cached. Only
    matches: a client inventing paths (misses, or Comet paths too long to be
    a resource's) is resolved each time and costs no memory.
    """
    if len(path_info) > MAX_CACHED_PATH:
        return _resolve_comet(urlconf, path_info)
    try:
        return _cached_comet_match(urlconf, path_info)
    except _NotComet:
        return None


class _NotComet(Exception):
    """Raised so that ``lru_cache`` does not keep a miss (it keeps no
    exceptions)."""


@functools.lru_cache(maxsize=MAX_CACHED_MATCHES)
def _cached_comet_match(urlconf: str, path_info: str) -> ResolverMatch:
    # Keyed by the URL configuration too, so that changing ROOT_URLCONF
    # (tests do) cannot serve a stale answer; the match is never modified, so
    # sharing it is safe.
    match = _resolve_comet(urlconf, path_info)
    if match is None:
        raise _NotComet
    return match


def _resolve_comet(urlconf: str, path_info: str) -> ResolverMatch | None:
    try:
        match = get_resolver(urlconf).resolve(path_info)
    except Resolver404:
        return None
    return match if match.func in FAST_VIEWS else None


async def _call_view(request: ASGIRequest, match: ResolverMatch) -> HttpResponse:
    try:
        return await match.func(request, *match.args, **match.kwargs)
    except Exception as error:
        return await _exception_response(request, error)


async def _exception_response(request: ASGIRequest, error: Exception) -> HttpResponse:
    """What Django's handler does: log to django.request, then the 500 page
    (the debug page under DEBUG); a plain 500 if even that fails."""
    try:
        return await sync_to_async(response_for_exception, thread_sensitive=False)(
            request, error
        )
    except Exception:
        logger.exception("Rendering the error page for %s failed.", request.path)
        return HttpResponseServerError()


async def _disconnected(receive: Receive) -> None:
    """Return when the client disconnects; request body messages are ignored
    (Comet reads none)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _send_response(response: HttpResponse, send: Send) -> None:
    """The messages Django's ASGI handler would send for this response.

    With ``Content-Length``, as ``CommonMiddleware`` would add: without it the
    servers fall back to chunked encoding, which costs Daphne twice the CPU.
    """
    if response.streaming:  # pragma: no cover - the Comet view never streams
        raise TypeError("CometFastPath sends complete responses only")
    if not response.has_header("Content-Length"):
        response.headers["Content-Length"] = str(len(response.content))
    await send(
        {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": _header_list(response),
        }
    )
    await send({"type": "http.response.body", "body": response.content})


def _header_list(response: HttpResponse) -> list[tuple[bytes, bytes]]:
    """A response's headers and cookies as ASGI wants them."""
    headers = [
        (name.encode("ascii"), value.encode("latin1"))
        for name, value in response.items()
    ]
    headers.extend(
        (b"Set-Cookie", cookie.output(header="").encode("ascii").strip())
        for cookie in response.cookies.values()
    )
    return headers
