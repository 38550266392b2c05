"""ASGI entry point: HTTP through Django, WebSocket through Channels, and the
lifespan protocol (drain on SIGTERM; selector_app/shutdown.py)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime_site.settings")
# Django must be set up before anything imports models (the consumers do).
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from selector_app.fastpath import CometFastPath  # noqa: E402
from selector_app.routing import (  # noqa: E402
    websocket_fallback,
    websocket_urlpatterns,
)
from selector_app.security import OriginValidator  # noqa: E402
from selector_app.shutdown import lifespan  # noqa: E402

http_app = django_asgi_app
if os.environ.get("SELECTOR_COMET_FAST_PATH", "1") == "1":
    # Comet on the event loop, past Django's per-request threads and the
    # middleware stack (selector_app/fastpath.py says what that skips).
    http_app = CometFastPath(http_app)
if settings.DEBUG or os.environ.get("SELECTOR_SERVE_STATIC") == "1":
    # Lets a bare `daphne realtime_site.asgi:application` serve the page's
    # script; production puts nginx or WhiteNoise in front instead.
    http_app = ASGIStaticFilesHandler(http_app)

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
