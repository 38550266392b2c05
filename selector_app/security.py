"""Which WebSocket handshakes a site accepts: browsers from its own origins,
and clients that are not browsers.

A browser always sends ``Origin``, and a page on another site could open a
socket to this one with the user's cookies: such a cross-site handshake must
be refused. A handshake without ``Origin`` does not come from a browser
(websocat, scripts, native apps, other servers), so it carries no visitor's
cookies to abuse and is served. Channels' ``AllowedHostsOriginValidator``
refuses those too, which is why the README's own ``websocat`` example got 403.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlparse

from channels.security.websocket import OriginValidator as ChannelsOriginValidator
from channels.security.websocket import WebsocketDenier
from django.conf import settings

from .conf import get_config

logger = logging.getLogger(__name__)

#: What Django accepts as ``Host`` under DEBUG with an empty ALLOWED_HOSTS.
DEBUG_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def allowed_origins() -> list[str]:
    """``SELECTOR_APP["ALLOWED_ORIGINS"]``, or else the site's own hosts."""
    configured = get_config().ALLOWED_ORIGINS
    if configured is not None:
        return list(configured)
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = list(DEBUG_HOSTS)
    return hosts


class OriginValidator(ChannelsOriginValidator):
    """ASGI middleware for WebSocket routes: refuse (HTTP 403) a handshake
    whose ``Origin`` is not one of the site's, accept one without ``Origin``.

    Wrap the ``websocket`` entry of your router::

        "websocket": OriginValidator(AuthMiddlewareStack(URLRouter(...))),

    The allowed origins are ``SELECTOR_APP["ALLOWED_ORIGINS"]`` if set, else
    ``ALLOWED_HOSTS``; ``SELECTOR_APP["REQUIRE_ORIGIN"]`` refuses handshakes
    without ``Origin`` as well. Both are read at each handshake, so
    ``override_settings`` applies. Patterns match as in Channels'
    ``OriginValidator`` (``"https://example.com"``, ``".example.com"``, ``"*"``).
    """

    def __init__(self, application: Any) -> None:
        # Not Channels' __init__: the allowed origins are a property here.
        self.application = application

    @property
    def allowed_origins(self) -> list[str]:
        """Read per handshake: cheap (the config is cached) and never stale."""
        return allowed_origins()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        origin = _origin(scope)
        if self._accepts(origin):
            await self.application(scope, receive, send)
            return
        logger.info(
            "Refused a WebSocket handshake for %s from origin %r: not in %s.",
            scope.get("path", "?"),
            origin,
            "SELECTOR_APP['ALLOWED_ORIGINS']"
            if get_config().ALLOWED_ORIGINS is not None
            else "ALLOWED_HOSTS",
        )
        await WebsocketDenier()(scope, receive, send)

    def _accepts(self, origin: str | None) -> bool:
        if origin is None:
            return not get_config().REQUIRE_ORIGIN or "*" in allowed_origins()
        try:
            return self.valid_origin(urlparse(origin))
        except ValueError:
            return False  # "http://[x", a port out of range: not a real origin


def _origin(scope: dict) -> str | None:
    """The handshake's ``Origin`` header (the last one, as Channels reads it)."""
    origin = None
    for name, value in scope.get("headers", ()):
        if name == b"origin":
            origin = value.decode("latin1")
    return origin
