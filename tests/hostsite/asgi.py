"""The host site's own ASGI router, combining its WebSocket routes with the app's.

From ``application =`` on, the router is docs/embedding.md's step 3 verbatim
(tests/test_hostsite.py checks it); what follows it is for the tests only.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.hostsite.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.urls import path  # noqa: E402

from selector_app.fastpath import CometFastPath  # noqa: E402
from selector_app.routing import (  # noqa: E402
    websocket_fallback,
    websocket_urlpatterns,
)
from selector_app.security import OriginValidator  # noqa: E402
from selector_app.shutdown import lifespan  # noqa: E402

from .consumers import PingConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": OriginValidator(
            AuthMiddlewareStack(
                URLRouter(
                    [
                        path("ws/ping", PingConsumer.as_asgi()),  # your routes
                        path("live/", URLRouter(websocket_urlpatterns)),  # the app's
                        websocket_fallback,  # last: any other path gets 4404
                    ]
                )
            )
        ),
        "lifespan": lifespan,
    }
)

if os.environ.get("HOSTSITE_COMET_FAST_PATH") == "1":
    # The guide's optional CometFastPath, so that tests cover both paths.
    application = CometFastPath(application)
# A test site serves its own static files; production uses nginx.
application = ASGIStaticFilesHandler(application)
