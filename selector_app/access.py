"""Who may read what: the ``AUTHORIZE`` hook, asked before a resource is served.

Every transport asks the same question, once per request, stream or socket,
and once per resource it adds to a watch set: :func:`authorize` with the
user of the request (:func:`request_user`) or of the socket
(:func:`scope_user`). It runs *before* the resource is looked up, and its
refusal reads the same for every name, so a client that may not read cannot
tell which names exist. Without a hook (the default) nothing is asked and
no user is loaded: everyone reads everything, at no cost.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction
from channels.db import database_sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.utils.module_loading import import_string

from .conf import SETTING_NAME, get_config
from .protocol import Forbidden

#: ``can_read(user, name)``, made awaitable.
Hook = Callable[[Any, str], Awaitable[object]]

#: The one reason every refusal gives: it names no resource and does not say
#: whether the one asked for exists.
REFUSAL = "You are not allowed to read this resource."


def import_hook(path: str) -> Callable[..., object]:
    """The function ``path`` names; ``ImproperlyConfigured`` if there is none."""
    try:
        hook = import_string(path)
    except ImportError as error:
        raise ImproperlyConfigured(
            f"{SETTING_NAME}['AUTHORIZE'] = {path!r} does not import: {error}. "
            "Set it to the dotted path of a function can_read(user, name) -> bool."
        ) from error
    if not callable(hook):
        raise ImproperlyConfigured(
            f"{SETTING_NAME}['AUTHORIZE'] = {path!r} is a "
            f"{type(hook).__name__}, not a function can_read(user, name) -> bool."
        )
    return hook


@functools.cache
def _awaitable_hook(path: str) -> Hook:
    hook = import_hook(path)
    if iscoroutinefunction(hook):
        return hook
    # A sync hook usually asks the database (groups, permissions, rows): run
    # it where the ORM may run, with its connection tidied like a request's.
    return database_sync_to_async(hook)


def current_hook() -> Hook | None:
    """The configured hook, imported once; ``None`` when there is none."""
    path = get_config().AUTHORIZE
    return None if path is None else _awaitable_hook(path)


async def authorize(user: Any, name: str) -> None:
    """Raise :class:`~selector_app.protocol.Forbidden` unless ``user`` may read
    ``name``. A hook that returns anything falsy (``None`` included) refuses."""
    hook = current_hook()
    if hook is not None and not await hook(user, name):
        raise Forbidden(REFUSAL)


def anonymous() -> Any:
    from django.contrib.auth.models import AnonymousUser

    return AnonymousUser()


async def request_user(request: HttpRequest) -> Any:
    """The request's user: what ``AuthenticationMiddleware`` (or the fast path,
    which applies it) loads from the session; anonymous without it."""
    auser = getattr(request, "auser", None)
    return anonymous() if auser is None else await auser()


def scope_user(scope: dict) -> Any:
    """The socket's user: ``scope["user"]`` as Channels' ``AuthMiddlewareStack``
    sets it; anonymous when the router has no such middleware."""
    user = scope.get("user")
    return anonymous() if user is None else user


async def authorize_request(request: HttpRequest, name: str) -> None:
    """:func:`authorize` with the request's user, loaded only if there is a hook."""
    if get_config().AUTHORIZE is not None:
        await authorize(await request_user(request), name)


async def authorize_scope(scope: dict, name: str) -> None:
    """:func:`authorize` with the socket's user, if there is a hook."""
    if get_config().AUTHORIZE is not None:
        await authorize(scope_user(scope), name)
