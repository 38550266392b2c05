"""The demo project's settings, with the embedded updater off for unit tests.

Tests that want updates publish them themselves; end-to-end tests run real
server processes with the demo's own settings.
"""

import os
import tempfile
from pathlib import Path

# A developer's .env (read by the demo's settings) must not change the tests.
os.environ.setdefault("DJANGO_ENV_FILE", "")

from realtime_site.settings import *  # noqa: F403
from realtime_site.settings import DATABASES, SELECTOR_APP

ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
# No heartbeat rows written behind a test's back (tests/test_heartbeat.py
# turns them on where it wants them).
SELECTOR_APP = {
    **SELECTOR_APP,
    "EMBEDDED_UPDATER": False,
    "HEARTBEATS": False,
    "GRID_RESOURCES": [],  # tests that want a grid say so
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, as in production, not SQLite's shared-cache in-memory database:
    # that one vanishes with its last connection and locks single tables,
    # so it fails in ways a real deployment never does.
    DATABASES["default"]["TEST"] = {
        "NAME": str(Path(tempfile.gettempdir()) / f"selector_app_test_{os.getpid()}.db")
    }
