"""System checks (``manage.py check``) with stable ids."""

from __future__ import annotations

from channels.layers import InMemoryChannelLayer
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from .conf import KNOWN_KEYS, SETTING_NAME, get_config


@checks.register(checks.Tags.compatibility)
def check_settings(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """E001: ``SELECTOR_APP`` is not a dict or has an unknown key."""
    try:
        get_config()
    except (ImproperlyConfigured, TypeError) as error:
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
