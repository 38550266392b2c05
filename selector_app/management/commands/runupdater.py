"""``manage.py runupdater``: the periodic publisher for one resource or more
(``--resource`` given once per resource: one updater, with its own lock, each).

It says what it is doing through its own output, whatever the site's
logging: state changes (started, lock acquired, standby, lost, stopped) on
stdout at the default verbosity, every publish with ``-v 2``, problems on
stderr; ``-v 0`` leaves only errors. The same lines also go to the
``selector_app`` loggers for sites that collect logs.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from channels.layers import InMemoryChannelLayer
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from selector_app import services
from selector_app.conf import get_config
from selector_app.layers import channel_layer
from selector_app.models import Resource
from selector_app.updater import Updater

#: The least important level shown at each ``-v`` (2 and more: everything).
LEVELS = {0: logging.ERROR, 1: logging.INFO}


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
        parser.add_argument(
            "--resource",
            action="append",
            dest="resources",
            help=(
                "A resource to publish to (default "
                f"{config.UPDATER_RESOURCE}); it must exist. Give it once per "
                "resource to publish several (each with its own lock)."
            ),
        )
        parser.add_argument(
            "--create",
            action="store_true",
            help="Create the resource, with random data, if it does not exist.",
        )
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

    def handle(
        self, *args, resources, create, interval, length, count, verbosity, **options
    ) -> None:
        if isinstance(channel_layer(), InMemoryChannelLayer):
            raise CommandError(
                "The channel layer is in-memory, so this process cannot reach the "
                "server processes. Set REDIS_URL (or point CHANNEL_LAYERS['default'] "
                "at channels_redis) for both the servers and runupdater; with the "
                "in-memory layer the server runs the updater itself "
                "(SELECTOR_APP['EMBEDDED_UPDATER'])."
            )
        names = list(dict.fromkeys(resources or [get_config().UPDATER_RESOURCE]))
        for name in names:
            self._check_resource(name, create=create, length=length)
        self.shown = LEVELS.get(verbosity, logging.DEBUG)
        updaters = [
            Updater(
                name=name,
                interval=interval,
                length=length,
                exclusive=True,
                report=self.report,
            )
            for name in names
        ]
        try:
            asyncio.run(self._run(updaters, count))
        except ImproperlyConfigured as error:  # e.g. no Redis for the lock
            raise CommandError(str(error)) from error
        for updater in updaters:
            self.report(
                logging.INFO,
                f"Stopped after {updater.published} publishes to {updater.name!r} "
                f"({updater.failed} failed).",
            )

    def report(self, level: int, line: str) -> None:
        """Show one status line if ``-v`` asks for it; problems on stderr."""
        if level < self.shown:
            return
        if level >= logging.WARNING:
            style = self.style.ERROR if level >= logging.ERROR else self.style.WARNING
            self.stderr.write(line, style)
        else:
            self.stdout.write(line)

    def _check_resource(self, name: str, *, create: bool, length: int) -> None:
        if create:
            services.resource_ensure(name=name, length=length)
            return
        if services.resource_snapshot(name=name) is None:
            existing = list(Resource.objects.values_list("name", flat=True)[:10])
            known = (
                f"Resources that exist: {', '.join(map(repr, existing))}."
                if existing
                else "No resource exists yet."
            )
            raise CommandError(
                f"There is no resource named {name!r}. {known} Check the name, "
                "or pass --create to create it."
            )

    async def _run(self, updaters: list[Updater], count: int | None) -> None:
        # SIGINT/SIGTERM let a publish in flight finish, then stop.
        loop = asyncio.get_running_loop()

        def stop() -> None:
            for updater in updaters:
                updater.stop()

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop)
        try:
            # gather(), not a TaskGroup: an error (no Redis for the lock) is
            # raised as itself, and asyncio.run() cancels the other updaters.
            await asyncio.gather(*(updater.run(count) for updater in updaters))
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
