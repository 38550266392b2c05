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
import ipaddress
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction
from channels.db import database_sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.utils.module_loading import import_string

from .conf import SETTING_NAME, get_config
from .protocol import Forbidden

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
def _hook(path: str) -> tuple[Callable[..., Any], bool]:
    """The hook ``path`` names, and whether it is ``async def``; imported once."""
    hook = import_hook(path)
    return hook, iscoroutinefunction(hook)


def current_hook() -> tuple[Callable[..., Any], bool] | None:
    """The configured hook and whether it is async; ``None`` when there is none."""
    path = get_config().AUTHORIZE
    return None if path is None else _hook(path)


def _verdict(allowed: object) -> None:
    # Anything falsy, None included (a hook that forgot to return), refuses.
    if not allowed:
        raise Forbidden(REFUSAL)


async def authorize(user: Any, name: str) -> None:
    """Raise :class:`~selector_app.protocol.Forbidden` unless ``user`` may read
    ``name``. A ``def`` hook usually asks the database (groups, permissions,
    rows), so it runs where the ORM may, with its connection tidied like a
    request's."""
    hook = current_hook()
    if hook is None:
        return
    can_read, is_async = hook
    if is_async:
        _verdict(await can_read(user, name))
    else:
        _verdict(await database_sync_to_async(can_read)(user, name))


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
    """:func:`authorize` with the request's user, loaded only if there is a hook.

    For a ``def`` hook the user is loaded in the same thread hop as the hook
    runs in: one hop per request instead of one per query (see
    bench/authorize.py).
    """
    hook = current_hook()
    if hook is None:
        return
    can_read, is_async = hook
    if is_async:
        _verdict(await can_read(await request_user(request), name))
    else:
        _verdict(await database_sync_to_async(_ask)(can_read, request, name))


def _ask(can_read: Callable[..., Any], request: HttpRequest, name: str) -> object:
    # request.user is AuthenticationMiddleware's lazy user: loaded here, in
    # the database thread, as a sync view would load it.
    user = getattr(request, "user", None)
    return can_read(anonymous() if user is None else user, name)


async def authorize_scope(scope: dict, name: str) -> None:
    """:func:`authorize` with the socket's user, if there is a hook."""
    if get_config().AUTHORIZE is not None:
        await authorize(scope_user(scope), name)


async def may_read_metrics(request: HttpRequest) -> bool:
    """Whether ``request`` may read ``/metrics``: it comes from one of
    ``METRICS_NETWORKS`` (the address the server sees), or its user has
    ``METRICS_PERMISSION``."""
    config = get_config()
    try:
        client = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        client = None
    if client is not None and any(
        client in ipaddress.ip_network(network, strict=False)
        for network in config.METRICS_NETWORKS
    ):
        return True
    if config.METRICS_PERMISSION and hasattr(request, "auser"):
        user = await request.auser()
        return await user.ahas_perm(config.METRICS_PERMISSION)
    return False
