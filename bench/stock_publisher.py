"""Publisher for the stock-Channels comparison: ``group_send`` once a second.

Logs ``Published res #N`` right after each ``group_send`` returns, in the
same format as the app's updater, so the runner reads publish times the same
way. Stops after ``--count`` publishes or on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import signal

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
PRINTABLE = "".join(chr(code) for code in range(0x21, 0x7F))

logger = logging.getLogger("bench.stock_publisher")


async def publish(count: int, interval: float, length: int) -> None:
    from channels.layers import get_channel_layer

    from .stock_channels_asgi import GROUP

    layer = get_channel_layer()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    next_tick = loop.time()
    for sequence in range(1, count + 1):
        next_tick += interval
        try:
            await asyncio.wait_for(stop.wait(), max(0.0, next_tick - loop.time()))
            return
        except TimeoutError:
            pass
        data = "".join(random.choices(PRINTABLE, k=length))
        await layer.group_send(
            GROUP, {"type": "bench.publish", "message": f"{sequence} {data}"}
        )
        logger.debug("Published res #%s.", sequence)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=3600)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--length", type=int, default=1024)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    logger.setLevel(logging.DEBUG)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime_site.settings")
    import django

    django.setup()
    asyncio.run(publish(args.count, args.interval, args.length))


if __name__ == "__main__":
    main()
