"""``manage.py runupdater``: the periodic publisher for one resource."""

from __future__ import annotations

import asyncio
import signal

from channels.layers import InMemoryChannelLayer
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from selector_app.conf import get_config
from selector_app.layers import channel_layer
from selector_app.updater import Updater


def _positive(kind: type[int] | type[float]):
    def parse(raw: str) -> int | float:
        value = kind(raw)
        if value <= 0:
            raise ValueError(raw)
        return value

    parse.__name__ = f"positive {kind.__name__}"
    return parse


class Command(BaseCommand):
    help = (
        "Publish random printable data to a resource every interval, through "
        "the channel layer, to every server process. Only one runupdater per "
        "resource publishes; others wait as standbys and take over within "
        "SELECTOR_APP['LOCK_TTL'] seconds."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        config = get_config()
        parser.add_argument("--resource", default=config.UPDATER_RESOURCE)
        parser.add_argument(
            "--interval",
            type=_positive(float),
            default=config.UPDATE_INTERVAL,
            help="Seconds between publishes (default %(default)s).",
        )
        parser.add_argument(
            "--length",
            type=_positive(int),
            default=config.RESOURCE_LENGTH,
            help="Characters of data per publish (default %(default)s).",
        )
        parser.add_argument(
            "--count",
            type=_positive(int),
            default=None,
            help="Stop after this many publishes (default: run until stopped).",
        )

    def handle(self, *args, resource, interval, length, count, **options) -> None:
        if isinstance(channel_layer(), InMemoryChannelLayer):
            raise CommandError(
                "The channel layer is in-memory, so this process cannot reach the "
                "server processes. Set REDIS_URL (or point CHANNEL_LAYERS['default'] "
                "at channels_redis) for both the servers and runupdater; with the "
                "in-memory layer the server runs the updater itself "
                "(SELECTOR_APP['EMBEDDED_UPDATER'])."
            )
        updater = Updater(
            name=resource, interval=interval, length=length, exclusive=True
        )
        try:
            asyncio.run(self._run(updater, count))
        except ImproperlyConfigured as error:  # e.g. no Redis for the lock
            raise CommandError(str(error)) from error
        self.stdout.write(
            f"Stopped after {updater.published} publishes to {resource!r} "
            f"({updater.failed} failed)."
        )

    async def _run(self, updater: Updater, count: int | None) -> None:
        # SIGINT/SIGTERM let a publish in flight finish, then stop.
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, updater.stop)
        try:
            await updater.run(count)
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
