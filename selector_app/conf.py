"""The app's settings: one ``SELECTOR_APP`` dict over a table of defaults.

Everything in the app reads its settings through :func:`get_config`, never
``getattr(settings, ...)``, so the defaults live in one place, an unknown
key (usually a typo) is reported instead of silently ignored, and a value of
the wrong type or range (:mod:`selector_app.rules`) is refused when the
settings are read, not deep inside a request.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from .rules import SETTINGS_DOCS, problems

SETTING_NAME = "SELECTOR_APP"


@dataclass(frozen=True, slots=True)
class Config:
    """The resolved settings; each field's default is the documented default."""

    #: The template the page extends; it must define the blocks ``title``,
    #: ``head`` and ``content`` (see selector_app/base.html).
    BASE_TEMPLATE: str = "selector_app/base.html"
    #: The resource served by ``/comet`` and ``/websocket`` without a name.
    DEFAULT_RESOURCE: str = "res"
    #: Seconds a long-poll request is held before it is answered with 204.
    LONG_POLL_TIMEOUT: float = 30.0
    #: Seconds of silence on an event stream (``/events``) before it is sent
    #: a ``: keep-alive`` comment, so that proxies keep it open.
    KEEP_ALIVE_INTERVAL: float = 15.0
    #: Held long-poll requests per server process before new ones get 503.
    MAX_HELD_REQUESTS: int = 10_000
    #: The ``Retry-After`` header (seconds) sent with a 503.
    RETRY_AFTER: int = 2
    #: Seconds a server process takes on SIGTERM to answer its held requests
    #: and close its sockets (spread over the window) before it exits; 0
    #: leaves SIGTERM to the server alone (see selector_app.shutdown).
    DRAIN_TIMEOUT: float = 5.0
    #: Seconds between the hub's re-reads of the resource rows.
    RESYNC_INTERVAL: float = 5.0
    #: Versions of resources no client of the process watches any more that
    #: its hub keeps (the most recently watched), besides the watched ones.
    SNAPSHOT_CACHE: int = 1000
    #: Seconds a hub waits for one database read (a re-read, or a resource it
    #: has not seen) before giving up on it: clients of that resource get 503.
    READ_TIMEOUT: float = 5.0
    #: Seconds a publish waits for the channel layer to take its announcement
    #: before giving up (the hubs' re-reads deliver it instead).
    ANNOUNCE_TIMEOUT: float = 1.0
    #: The channel layer alias the app publishes and listens on.
    CHANNEL_LAYER: str = "default"
    #: The channel-layer group every server process's hub joins.
    GROUP: str = "selector_app"
    #: Run the updater inside the server process when the channel layer is
    #: in-memory (it cannot reach another process). Off for host sites, which
    #: publish their own data; the demo project turns it on.
    EMBEDDED_UPDATER: bool = False
    #: What the updater publishes: resource, interval (seconds), data length.
    UPDATER_RESOURCE: str = "res"
    #: The resources of the page's grid panel (one ``/select`` socket), which
    #: the embedded updater creates and publishes too; empty: no grid.
    GRID_RESOURCES: tuple[str, ...] = ()
    UPDATE_INTERVAL: float = 1.0
    RESOURCE_LENGTH: int = 1024
    #: Seconds between ``server tick #N`` frames on ``/bidirectional``.
    TICK_INTERVAL: float = 1.0
    #: Largest text frame (bytes, UTF-8) ``/bidirectional`` accepts; larger
    #: frames close the socket with 1009.
    MAX_MESSAGE_SIZE: int = 64 * 1024
    #: Per-socket rate limit on incoming frames, on every socket (token
    #: bucket: this many a second on average, bursts of up to the burst);
    #: over it, the socket is closed with 1008. 0 turns a limit off.
    RECEIVE_FRAMES_PER_SECOND: float = 20.0
    RECEIVE_FRAME_BURST: int = 100
    #: The same for bytes (UTF-8 for text frames).
    RECEIVE_BYTES_PER_SECOND: float = 128 * 1024
    RECEIVE_BYTE_BURST: int = 512 * 1024
    #: Bytes a client may leave unread in the server's own buffer, on a
    #: server without back-pressure (Daphne), before its socket is closed
    #: with 1008. 0 turns the limit off.
    MAX_UNSENT_BYTES: int = 1024 * 1024
    #: Open WebSockets per server process; past it a handshake is refused
    #: (503, or close 1013 where the server cannot answer 503). 0: no limit.
    MAX_OPEN_SOCKETS: int = 10_000
    #: Resources one ``/select`` request, socket or stream may watch at once.
    MAX_SELECT_RESOURCES: int = 100
    #: Seconds a runupdater's lock lives without renewal: a standby takes over
    #: within about this long after the holder dies (renewed every third).
    LOCK_TTL: float = 2.0
    #: The Redis holding runupdater's lock; empty means the channel layer's
    #: first host (which must then be channels_redis).
    LOCK_REDIS_URL: str = ""
    #: Raise the garbage collector's thresholds and ``gc.freeze()`` start-up
    #: objects when the runtime starts (see selector_app.runtime.tune_gc).
    GC_TUNING: bool = True
    #: The thresholds ``gc.set_threshold()`` gets when GC_TUNING is on.
    GC_THRESHOLDS: tuple[int, int, int] = (50_000, 20, 100)
    #: Under Daphne, let autobahn build its debug-log arguments only when a
    #: debug line is written, not for every frame (selector_app.autobahn_logs).
    LAZY_AUTOBAHN_LOGS: bool = True
    #: Under Daphne, send a write to the socket at once when nothing is
    #: buffered before it, as asyncio does (selector_app.twisted_writes).
    EAGER_TWISTED_WRITES: bool = True
    #: Dotted path to ``can_read(user, name) -> bool`` (sync or async), asked
    #: before a resource is served; ``None``: everyone may read everything.
    AUTHORIZE: str | None = None
    #: The origins WebSocket handshakes are accepted from (patterns as in
    #: Channels' OriginValidator); ``None``: the hosts of ``ALLOWED_HOSTS``.
    ALLOWED_ORIGINS: tuple[str, ...] | None = None
    #: Refuse (403) handshakes without an ``Origin`` header too. Off: clients
    #: that are not browsers (websocat, scripts, native apps) send none.
    REQUIRE_ORIGIN: bool = False
    #: Offer the admin action "Publish new random data" (the demo's). Off:
    #: on a host site it would overwrite real data with noise.
    ADMIN_RANDOM_PUBLISH: bool = False
    #: Count frames, replies and delivery latency, and serve them in the
    #: Prometheus format at ``metrics`` (needs ``prometheus_client``).
    METRICS: bool = False
    #: Who may read ``metrics``: clients from these networks
    #: (``"10.0.0.0/8"``, ``"::1"``)...
    METRICS_NETWORKS: tuple[str, ...] = ()
    #: ...and users with this permission (``"selector_app.view_resource"``);
    #: ``None``: no user is let in for being one.
    METRICS_PERMISSION: str | None = None
    #: Write this process's heartbeat (server processes and runupdater) for
    #: the admin's status page and ``manage.py selector_status``.
    HEARTBEATS: bool = True


KNOWN_KEYS = frozenset(f.name for f in fields(Config))


def unknown_keys(user: dict) -> list[str]:
    """The keys of ``user`` that are not settings of this app, sorted."""
    return sorted(str(key) for key in user if key not in KNOWN_KEYS)


def user_settings() -> dict:
    """The site's ``SELECTOR_APP`` as written, a dict (``{}`` if unset)."""
    user = getattr(settings, SETTING_NAME, {})
    if not isinstance(user, dict):
        raise ImproperlyConfigured(
            f"{SETTING_NAME} must be a dict, not {type(user).__name__}. "
            f"See {SETTINGS_DOCS}"
        )
    return user


@cache
def get_config() -> Config:
    """Return the current settings, built once and cached until they change."""
    user = user_settings()
    bad = unknown_keys(user)
    if bad:
        raise ImproperlyConfigured(
            f"{SETTING_NAME} has unknown key(s): {', '.join(bad)}. "
            f"Valid keys are: {', '.join(sorted(KNOWN_KEYS))}."
        )
    wrong = problems(user)
    if wrong:
        raise ImproperlyConfigured(" ".join(map(str, wrong)) + f" See {SETTINGS_DOCS}")
    return Config(**user)


@receiver(setting_changed)
def _reload(*, setting: str, **kwargs: object) -> None:
    # override_settings() in tests and runtime changes take effect at once.
    if setting == SETTING_NAME:
        get_config.cache_clear()
