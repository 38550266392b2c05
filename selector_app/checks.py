"""System checks (``manage.py check``) with stable ids."""

from __future__ import annotations

import importlib.util
import inspect
import ipaddress

from channels.layers import InMemoryChannelLayer
from django.apps import apps
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from .access import import_hook
from .conf import KNOWN_KEYS, SETTING_NAME, get_config


@checks.register(checks.Tags.compatibility)
def check_settings(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """E001: ``SELECTOR_APP`` is not a dict or has an unknown key."""
    try:
        get_config()
    except ImproperlyConfigured as error:
        return [
            checks.Error(
                str(error),
                hint=f"Valid {SETTING_NAME} keys: {', '.join(sorted(KNOWN_KEYS))}. "
                "See docs/settings.md.",
                id="selector_app.E001",
            )
        ]
    return []


@checks.register(checks.Tags.compatibility)
def check_channel_layer(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """E002: no channel layer; W001: an in-memory layer in production."""
    try:
        alias = get_config().CHANNEL_LAYER
    except ImproperlyConfigured:
        return []  # reported by E001
    backend = getattr(settings, "CHANNEL_LAYERS", {}).get(alias, {}).get("BACKEND")
    if not backend:
        return [
            checks.Error(
                f"CHANNEL_LAYERS has no {alias!r} layer; selector_app needs one to "
                "reach every server process.",
                hint="Use channels.layers.InMemoryChannelLayer for one process or "
                "channels_redis.core.RedisChannelLayer for several.",
                id="selector_app.E002",
            )
        ]
    if backend == f"{InMemoryChannelLayer.__module__}.InMemoryChannelLayer" and (
        not settings.DEBUG
    ):
        return [
            checks.Warning(
                "The channel layer is in-memory with DEBUG=False: publishes from "
                "other processes (runupdater, a worker, another server) cannot "
                "reach this server.",
                hint="Set REDIS_URL / use channels_redis when you run more than "
                "one process. Ignore this for a single-process deployment.",
                id="selector_app.W001",
            )
        ]
    return []


@checks.register(checks.Tags.compatibility)
def check_daphne_order(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """E003: ``daphne`` after ``staticfiles`` loses its ASGI ``runserver``."""
    apps = list(settings.INSTALLED_APPS)
    static = "django.contrib.staticfiles"
    if (
        "daphne" in apps
        and static in apps
        and apps.index("daphne") > apps.index(static)
    ):
        return [
            checks.Error(
                "'daphne' is listed after 'django.contrib.staticfiles' in "
                "INSTALLED_APPS, so runserver serves WSGI and no WebSocket works.",
                hint="Move 'daphne' to the top of INSTALLED_APPS.",
                id="selector_app.E003",
            )
        ]
    return []


@checks.register(checks.Tags.security)
def check_origin_validator(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """W002: the ASGI application's WebSocket routes accept any origin."""
    websocket = _websocket_app()
    if websocket is None or _has_origin_validator(websocket):
        return []
    return [
        checks.Warning(
            f"The WebSocket routes of ASGI_APPLICATION ({settings.ASGI_APPLICATION}) "
            "are not wrapped in an origin validator, so any web page a user "
            "visits can open sockets to this site with the user's cookies.",
            hint="Wrap them: ProtocolTypeRouter({'websocket': "
            "OriginValidator(URLRouter(...))}) with OriginValidator from "
            "selector_app.security (serves clients that send no Origin, such as "
            "websocat) or AllowedHostsOriginValidator from "
            "channels.security.websocket (browsers only).",
            id="selector_app.W002",
        )
    ]


def _websocket_app() -> object | None:
    """The ``websocket`` entry of ``ASGI_APPLICATION``'s router, if it has one."""
    from channels.routing import ProtocolTypeRouter
    from django.utils.module_loading import import_string

    path = getattr(settings, "ASGI_APPLICATION", None)
    if not path:
        return None
    try:
        application = import_string(path)
    except Exception:
        return None  # daphne/runserver report a broken application themselves
    # Wrappers around the router (ASGIStaticFilesHandler, CometFastPath) keep
    # it in .application or .app.
    for _ in range(20):
        if isinstance(application, ProtocolTypeRouter):
            return application.application_mapping.get("websocket")
        application = getattr(application, "application", None) or getattr(
            application, "app", None
        )
    return None


def _has_origin_validator(app: object) -> bool:
    # selector_app.security.OriginValidator is a subclass of Channels' one.
    from channels.security.websocket import OriginValidator

    # Middleware (AuthMiddlewareStack, ...) keeps what it wraps in .inner.
    for _ in range(20):
        if isinstance(app, OriginValidator):
            return True
        app = getattr(app, "inner", None)
        if app is None:
            return False
    return False


@checks.register(checks.Tags.security)
def check_authorize(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """E004: ``AUTHORIZE`` does not name a usable ``can_read(user, name)``."""
    try:
        path = get_config().AUTHORIZE
    except ImproperlyConfigured:
        return []  # reported by E001
    if path is None:
        return []
    problem = _authorize_problem(path)
    if problem is None:
        return []
    return [
        checks.Error(
            f"{SETTING_NAME}['AUTHORIZE'] = {path!r}: {problem}",
            hint="Point it at a function can_read(user, name) -> bool (def or "
            "async def), e.g. 'myapp.access.can_read'; it gets the request's or "
            "socket's user (AnonymousUser if none) and the resource name. "
            "See docs/embedding.md.",
            id="selector_app.E004",
        )
    ]


def _authorize_problem(path: object) -> str | None:
    """What is wrong with the hook ``path`` names, or ``None``."""
    if not isinstance(path, str):
        return f"it must be a dotted path (a str), not a {type(path).__name__}."
    try:
        hook = import_hook(path)
    except ImproperlyConfigured as error:
        return str(error)
    try:
        inspect.signature(hook).bind(object(), "name")
    except TypeError as error:
        return f"it cannot be called as can_read(user, name): {error}."
    except ValueError:
        pass  # a builtin without a signature: assume it fits
    if not apps.is_installed("django.contrib.auth"):
        return (
            "the hook gets a user, which needs 'django.contrib.auth' in "
            "INSTALLED_APPS (the anonymous user is its AnonymousUser)."
        )
    return None


@checks.register(checks.Tags.compatibility)
def check_metrics(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """E005: metrics on without prometheus_client; E006: a network that is not
    one; W003: metrics on, but nobody may read them."""
    try:
        config = get_config()
    except ImproperlyConfigured:
        return []  # reported by E001
    if not config.METRICS:
        return []
    problems: list[checks.CheckMessage] = []
    if importlib.util.find_spec("prometheus_client") is None:
        problems.append(
            checks.Error(
                "SELECTOR_APP['METRICS'] is on but prometheus_client is not installed.",
                hint="pip install 'django-selector-app[metrics]' (or "
                "prometheus_client), or turn METRICS off.",
                id="selector_app.E005",
            )
        )
    for network in config.METRICS_NETWORKS:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            problems.append(
                checks.Error(
                    f"SELECTOR_APP['METRICS_NETWORKS'] has {network!r}, which is "
                    "not an IP network.",
                    hint="Use addresses or CIDR networks: '10.0.0.0/8', '::1'.",
                    id="selector_app.E006",
                )
            )
    if not config.METRICS_NETWORKS and not config.METRICS_PERMISSION:
        problems.append(
            checks.Warning(
                "SELECTOR_APP['METRICS'] is on but neither METRICS_NETWORKS nor "
                "METRICS_PERMISSION lets anyone read them: every scrape gets 403.",
                hint="List your Prometheus servers' networks in METRICS_NETWORKS "
                "(e.g. ['10.0.0.0/8']), or name a permission.",
                id="selector_app.W003",
            )
        )
    return problems
