"""Channel-layer configuration helpers for settings files."""

from __future__ import annotations


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
