"""Which channel layer the app uses, and how to configure channels_redis for it."""

from __future__ import annotations

from channels.exceptions import InvalidChannelLayerError
from channels.layers import BaseChannelLayer, get_channel_layer
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from .conf import get_config
from .extras import EXTRA_OF, install_command, installed, missing_extra


def channel_layer() -> BaseChannelLayer:
    """The layer named by ``SELECTOR_APP["CHANNEL_LAYER"]``, or a clear error."""
    alias = get_config().CHANNEL_LAYER
    try:
        layer = get_channel_layer(alias)
    except InvalidChannelLayerError:
        module = _missing_backend_module(alias)
        if module is None:
            raise
        raise missing_extra(
            module, feature=f"The {alias!r} channel layer ({_backend(alias)})"
        ) from None
    if layer is None:
        raise ImproperlyConfigured(
            f"CHANNEL_LAYERS has no {alias!r} layer, which selector_app needs to "
            "reach every server process. Add one (InMemoryChannelLayer for a "
            "single process, channels_redis for several) or set "
            "SELECTOR_APP['CHANNEL_LAYER'] to an alias that exists."
        )
    return layer


def redis_channel_layer(url: str, **config: object) -> dict[str, object]:
    """A ``CHANNEL_LAYERS`` entry for channels_redis that survives idle periods.

    redis-py 8 defaults to a 5 s socket timeout, which kills a receiver idle
    on ``BLPOP`` every 5 s, and to a 100-connection pool; both are lifted
    here. Extra keyword arguments go into the layer's ``CONFIG``.
    """
    if not installed("channels_redis"):
        raise missing_extra("channels_redis", feature="A channels_redis layer")
    host = {"address": url, "socket_timeout": None, "max_connections": 10_000}
    return {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [host], **config},
    }


def _backend(alias: str) -> str:
    config = getattr(settings, "CHANNEL_LAYERS", {}).get(alias, {})
    return str(config.get("BACKEND", "")) if isinstance(config, dict) else ""


def _missing_backend_module(alias: str) -> str | None:
    """The optional module the layer's backend lives in, if it is not installed."""
    top = _backend(alias).split(".")[0]
    if top in EXTRA_OF and not installed(top):
        return top
    return None


@checks.register(checks.Tags.compatibility)
def check_layer_backend(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """E010: the channel layer's backend is in an extra that is not installed."""
    try:
        alias = get_config().CHANNEL_LAYER
    except ImproperlyConfigured:
        return []  # reported by E001
    module = _missing_backend_module(alias)
    if module is None:
        return []
    return [
        checks.Error(
            f"CHANNEL_LAYERS[{alias!r}] uses {_backend(alias)}, but the package "
            f"{module!r} is not installed.",
            hint=f"Install the {EXTRA_OF[module]!r} extra: "
            f"{install_command(EXTRA_OF[module])}",
            id="selector_app.E010",
        )
    ]
