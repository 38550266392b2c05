"""The demo's settings, with ``SELECTOR_APP`` keys from the environment.

For server processes started by tests and benchmarks that need other limits
than the defaults: ``SELECTOR_TEST_OVERRIDES`` is a JSON object merged over
the demo's ``SELECTOR_APP`` (e.g. ``{"MAX_OPEN_SOCKETS": 3}``).
"""

import json
import os

from realtime_site.settings import *  # noqa: F403
from realtime_site.settings import SELECTOR_APP

SELECTOR_APP = {
    **SELECTOR_APP,
    # No grid unless a test asks: its embedded updater publishes `res` only.
    "GRID_RESOURCES": [],
    **json.loads(os.environ.get("SELECTOR_TEST_OVERRIDES", "{}")),
}
