"""WebSocket routes; mount them at the same prefix as ``selector_app.urls``."""

from django.urls import path

from . import consumers

websocket_urlpatterns = [
    path("websocket", consumers.PushConsumer.as_asgi()),
    path("websocket/<slug:name>", consumers.PushConsumer.as_asgi()),
    path("bidirectional", consumers.BidirectionalConsumer.as_asgi()),
]
