"""The fault settings with persistent database connections.

Many host sites keep connections open (``CONN_MAX_AGE``) to save a connect
per request; the hubs' reader thread then reads through one long-lived
connection, which a fault can leave hanging for ever.
"""

from tests.support.fault_settings import *  # noqa: F403
from tests.support.fault_settings import DATABASES

DATABASES["default"]["CONN_MAX_AGE"] = None
