"""Which channel layer the app uses, and how to configure channels_redis for it."""

from __future__ import annotations

from channels.layers import BaseChannelLayer, get_channel_layer
from django.core.exceptions import ImproperlyConfigured

from .conf import get_config


def channel_layer() -> BaseChannelLayer:
    """The layer named by ``SELECTOR_APP["CHANNEL_LAYER"]``, or a clear error."""
    alias = get_config().CHANNEL_LAYER
    layer = get_channel_layer(alias)
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
    host = {"address": url, "socket_timeout": None, "max_connections": 10_000}
    return {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [host], **config},
    }
