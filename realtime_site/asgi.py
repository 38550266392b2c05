"""ASGI entry point: HTTP through Django, WebSocket through Channels, and the
lifespan protocol (drain on SIGTERM; selector_app/shutdown.py).

Static files are WhiteNoise's (a middleware in settings.py), so a bare
``daphne`` or ``uvicorn`` serves the page's script with DEBUG off too.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime_site.settings")
# Django must be set up before anything imports models (the consumers do).
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from selector_app.fastpath import CometFastPath  # noqa: E402
from selector_app.routing import (  # noqa: E402
    websocket_fallback,
    websocket_urlpatterns,
)
from selector_app.security import OriginValidator  # noqa: E402
from selector_app.shutdown import lifespan  # noqa: E402

http_app = django_asgi_app
if settings.DEMO_COMET_FAST_PATH:  # SELECTOR_COMET_FAST_PATH, read by settings.py
    # Comet on the event loop, past Django's per-request threads and the
    # middleware stack (selector_app/fastpath.py says what that skips).
    http_app = CometFastPath(http_app)

application = ProtocolTypeRouter(
    {
        "http": http_app,
        # Browsers only from ALLOWED_HOSTS; clients without Origin (websocat) too.
        "websocket": OriginValidator(
            URLRouter([*websocket_urlpatterns, websocket_fallback])
        ),
        "lifespan": lifespan,
    }
)
