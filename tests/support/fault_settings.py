"""The demo's settings with short intervals, for fault tests on real servers.

Everything else (the database options, the channel layer from REDIS_URL,
logging) is the demo's own, so the processes behave as deployed, only
sooner: a re-read every 0.5 s, reads given up after 1 s, announcements
after 0.5 s.
"""

from realtime_site.settings import *  # noqa: F403
from realtime_site.settings import SELECTOR_APP

SELECTOR_APP = {
    **SELECTOR_APP,
    "RESYNC_INTERVAL": 0.5,
    "READ_TIMEOUT": 1.0,
    "ANNOUNCE_TIMEOUT": 0.5,
}
