"""The demo project's settings, with the embedded updater off for unit tests.

Tests that want updates publish them themselves; end-to-end tests run real
server processes with the demo's own settings.
"""

from realtime_site.settings import *  # noqa: F403
from realtime_site.settings import SELECTOR_APP

ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
SELECTOR_APP = {**SELECTOR_APP, "EMBEDDED_UPDATER": False}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
