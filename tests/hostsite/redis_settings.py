"""The host site scaled out: the same settings, with channels_redis from REDIS_URL.

Like most host sites, it configures no logging: runupdater must still say
what it is doing.
"""

import os

from selector_app.layers import redis_channel_layer
from tests.hostsite.settings import *  # noqa: F403

CHANNEL_LAYERS = {"default": redis_channel_layer(os.environ["REDIS_URL"])}
SELECTOR_APP = {**SELECTOR_APP, "EMBEDDED_UPDATER": False}  # noqa: F405
