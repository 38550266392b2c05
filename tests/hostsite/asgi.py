"""The host site's own ASGI router, combining its WebSocket routes with the app's."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.hostsite.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.urls import path  # noqa: E402

from selector_app.routing import websocket_urlpatterns  # noqa: E402
from selector_app.shutdown import lifespan  # noqa: E402

from .consumers import PingConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {
        # A test site serves its own static files; production uses nginx.
        "http": ASGIStaticFilesHandler(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(
                URLRouter(
                    [
                        path("ws/ping", PingConsumer.as_asgi()),
                        # The same prefix as the URL include.
                        path("live/", URLRouter(websocket_urlpatterns)),
                    ]
                )
            )
        ),
        "lifespan": lifespan,
    }
)
