"""Where the app's endpoints are, wherever a site mounts it.

HTTP paths come from ``reverse()``. WebSocket routes have no reverse(), so
their paths are derived from the page's: the routes in
``selector_app.routing`` must be mounted at the same prefix as
``selector_app.urls`` (docs/embedding.md shows how).
"""

from __future__ import annotations

from django.urls import reverse

from .conf import get_config


def prefix() -> str:
    """The path the app is mounted at, with a trailing slash (e.g. ``/live/``)."""
    return reverse("selector_app:index")


def comet_url(name: str | None = None) -> str:
    """``/comet`` for the default resource, ``/comet/<name>`` for any other."""
    if name is None or name == get_config().DEFAULT_RESOURCE:
        return reverse("selector_app:comet")
    return reverse("selector_app:comet-resource", args=[name])


def events_url(name: str | None = None) -> str:
    """``/events`` for the default resource, ``/events/<name>`` for any other."""
    if name is None or name == get_config().DEFAULT_RESOURCE:
        return reverse("selector_app:events")
    return reverse("selector_app:events-resource", args=[name])


def websocket_path(name: str | None = None) -> str:
    if name is None or name == get_config().DEFAULT_RESOURCE:
        return f"{prefix()}websocket"
    return f"{prefix()}websocket/{name}"


def resource_paths(name: str | None = None) -> dict[str, str]:
    """The paths of resource ``name`` on each transport client.js knows."""
    return {
        "websocket": websocket_path(name),
        "sse": events_url(name),
        "comet": comet_url(name),
    }


def select_paths() -> dict[str, str]:
    """The ``/select`` paths, per transport client.js knows."""
    return {
        "websocket": f"{prefix()}select",
        "sse": reverse("selector_app:events-select"),
        "comet": reverse("selector_app:select"),
    }


def bidirectional_path() -> str:
    return f"{prefix()}bidirectional"
