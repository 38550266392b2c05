"""System checks (``manage.py check``) with stable ids.

Every id is listed in docs/settings.md ("System checks"); hints name the
setting to change and where to read about it, never a variable of the demo.
"""

from __future__ import annotations

import importlib.util
import inspect
import ipaddress

from channels.layers import InMemoryChannelLayer
from django.apps import apps
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.template import TemplateDoesNotExist, TemplateSyntaxError
from django.template.loader import get_template

from .access import import_hook
from .conf import (
    KNOWN_KEYS,
    SETTING_NAME,
    Config,
    get_config,
    unknown_keys,
    user_settings,
)
from .rules import DOCS_URL, RULES, SETTINGS_DOCS, problems


@checks.register(checks.Tags.compatibility)
def check_settings(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """E001: ``SELECTOR_APP`` is not a dict or has an unknown key;
    E005: a value of the wrong type or out of its range, one error per key."""
    try:
        user = user_settings()
    except ImproperlyConfigured as error:
        return [checks.Error(str(error), id="selector_app.E001")]
    messages: list[checks.CheckMessage] = []
    unknown = unknown_keys(user)
    if unknown:
        messages.append(
            checks.Error(
                f"{SETTING_NAME} has unknown key(s): {', '.join(unknown)}.",
                hint=f"Valid {SETTING_NAME} keys: {', '.join(sorted(KNOWN_KEYS))}. "
                f"See {SETTINGS_DOCS}",
                id="selector_app.E001",
            )
        )
    messages.extend(
        checks.Error(
            str(problem),
            hint=f"Set {SETTING_NAME}[{problem.key!r}] to {problem.expected}, or "
            f"leave the key out for its default. See {problem.key} in "
            f"{SETTINGS_DOCS}",
            id="selector_app.E005",
        )
        for problem in problems(user)
    )
    return messages


@checks.register(checks.Tags.templates)
def check_base_template(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """E006: the page's ``BASE_TEMPLATE`` cannot be loaded."""
    # Read on its own, so that it is reported beside other keys' errors.
    try:
        name = user_settings().get("BASE_TEMPLATE", Config.BASE_TEMPLATE)
    except ImproperlyConfigured:
        return []  # reported by E001
    if not RULES["BASE_TEMPLATE"].accepts(name):
        return []  # reported by E005
    try:
        get_template(name)
    except TemplateDoesNotExist as error:
        problem = f"no template engine finds it ({_tried(error)})"
    except TemplateSyntaxError as error:
        problem = f"it does not compile: {error}"
    else:
        return []
    return [
        checks.Error(
            f"{SETTING_NAME}['BASE_TEMPLATE'] = {name!r}: {problem}, so the live "
            "page answers 500.",
            hint="Create that template in one of TEMPLATES' DIRS (or an app's "
            "templates/ folder) with the blocks title, head and content, or leave "
            "BASE_TEMPLATE out for the app's own 'selector_app/base.html'. "
            f"See BASE_TEMPLATE in {SETTINGS_DOCS}",
            id="selector_app.E006",
        )
    ]


def _tried(error: TemplateDoesNotExist) -> str:
    """The files the loaders tried, as Django's debug page lists them."""
    tried = [
        str(origin.name)
        for engine_error in error.chain or [error]
        for origin, _ in engine_error.tried
    ]
    return "tried: " + ", ".join(tried) if tried else "no template loader is set up"


@checks.register(checks.Tags.compatibility)
def check_limits(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """W003: the byte burst is below the largest message, which then never fits."""
    try:
        config = get_config()
    except ImproperlyConfigured:
        return []  # reported by E001 or E005
    if not config.RECEIVE_BYTES_PER_SECOND or (
        config.RECEIVE_BYTE_BURST >= config.MAX_MESSAGE_SIZE
    ):
        return []
    return [
        checks.Warning(
            f"{SETTING_NAME}['RECEIVE_BYTE_BURST'] ({config.RECEIVE_BYTE_BURST}) is "
            f"below {SETTING_NAME}['MAX_MESSAGE_SIZE'] ({config.MAX_MESSAGE_SIZE}): "
            "a message larger than the burst closes its socket with 1008 although "
            "its size is allowed.",
            hint="Raise RECEIVE_BYTE_BURST to at least MAX_MESSAGE_SIZE, or lower "
            f"MAX_MESSAGE_SIZE. See RECEIVE_BYTE_BURST in {SETTINGS_DOCS}",
            id="selector_app.W003",
        )
    ]


@checks.register(checks.Tags.compatibility)
def check_channel_layer(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """E002: no channel layer; W001: an in-memory layer in production."""
    try:
        alias = get_config().CHANNEL_LAYER
    except ImproperlyConfigured:
        return []  # reported by E001 or E005
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
                hint=f"Point CHANNEL_LAYERS[{alias!r}] at channels_redis "
                "(selector_app.layers.redis_channel_layer(url)) when you run more "
                "than one process. For a single-process deployment, add "
                "'selector_app.W001' to SILENCED_SYSTEM_CHECKS. See "
                f"{DOCS_URL}deployment.md",
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
        return []  # reported by E001 or E005
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
            f"See {DOCS_URL}embedding.md#who-may-read-what",
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
    """E007: metrics on without prometheus_client; E008: a network that is not
    one; W004: metrics on, but nobody may read them."""
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
                id="selector_app.E007",
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
                    id="selector_app.E008",
                )
            )
    if not config.METRICS_NETWORKS and not config.METRICS_PERMISSION:
        problems.append(
            checks.Warning(
                "SELECTOR_APP['METRICS'] is on but neither METRICS_NETWORKS nor "
                "METRICS_PERMISSION lets anyone read them: every scrape gets 403.",
                hint="List your Prometheus servers' networks in METRICS_NETWORKS "
                "(e.g. ['10.0.0.0/8']), or name a permission.",
                id="selector_app.W004",
            )
        )
    return problems
