"""WebSocket routes; mount them at the same prefix as ``selector_app.urls``."""

from django.urls import path, re_path

from . import consumers

websocket_urlpatterns = [
    path("websocket", consumers.PushConsumer.as_asgi()),
    path("websocket/<slug:name>", consumers.PushConsumer.as_asgi()),
    path("select", consumers.SelectConsumer.as_asgi()),
    path("bidirectional", consumers.BidirectionalConsumer.as_asgi()),
]

#: The last route of a site's WebSocket router (after the app's and the
#: site's own): a handshake to a path that no route matches is closed with
#: 4404 and a reason, where Channels' router alone raises (a 500 and a
#: traceback in the server's log).
websocket_fallback = re_path(r"", consumers.UnknownEndpointConsumer.as_asgi())
