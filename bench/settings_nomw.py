"""The demo settings without any middleware (bench only: what the handler costs)."""

from realtime_site.settings import *  # noqa: F403

MIDDLEWARE: list[str] = []
# The admin insists on its middleware; these benches never open it.
SILENCED_SYSTEM_CHECKS = ["admin.E408", "admin.E409", "admin.E410"]
