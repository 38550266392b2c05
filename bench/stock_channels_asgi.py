"""Stock Channels fan-out, for comparison only: one group membership per client.

``WS /websocket`` joins the group ``bench_stock`` and sends every
``bench.publish`` message it receives; ``bench.stock_publisher`` does the
``group_send``. This is what the per-process hub replaces: here an update
costs one channel-layer message per *client*. Serve as
``bench.stock_channels_asgi:application`` with ``REDIS_URL`` set.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime_site.settings")
django_asgi_app = get_asgi_application()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import path  # noqa: E402

from selector_app.runtime import tune_gc  # noqa: E402

GROUP = "bench_stock"


class StockPushConsumer(AsyncWebsocketConsumer):
    """Joins :data:`GROUP` on connect and forwards each published message."""

    groups = [GROUP]

    async def bench_publish(self, event: dict) -> None:
        await self.send(text_data=event["message"])


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            URLRouter([path("websocket", StockPushConsumer.as_asgi())])
        ),
    }
)

tune_gc()  # no hub here to do it; SELECTOR_GC_TUNING=0 turns it off
