"""What ``SELECTOR_APP["AUTHORIZE"]`` costs a Comet reply, in process.

``python -m bench.authorize [--n 2000]`` serves ``GET /live/comet/<name>?seq=0``
(answered at once) from the host test site (tests/hostsite), in this process,
N times per row, and prints the CPU time per request (all threads) for:

- the fast path (``CometFastPath``) and Django's handler with its middleware;
- no hook, a hook with an anonymous client (no session cookie), and a hook
  with a signed-in staff user (session cookie: the session and user rows are
  read on every request);
- the host site's hook as a ``def`` (the user is loaded and the hook asked in
  one thread hop) and as an ``async def`` (no hop to ask it; the user is
  loaded by ``request.auser()``, one hop per query);

The numbers are printed, never asserted; they vary with the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path


async def async_can_read(user, name):
    """The host site's hook as ``async def``: no thread hop to call it."""
    from tests.hostsite.access import PUBLIC

    return name in PUBLIC or user.is_staff


def setup(directory: Path) -> str:
    """Django on a fresh SQLite file; returns a staff user's session key."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.hostsite.settings"
    os.environ["DATABASE_URL"] = f"sqlite:///{directory / 'db.sqlite3'}"
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    settings.SELECTOR_APP = {**settings.SELECTOR_APP, "EMBEDDED_UPDATER": False}
    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("staff", is_staff=True)
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def set_hook(path: str | None) -> None:
    from django.conf import settings

    from selector_app.conf import get_config

    settings.SELECTOR_APP = {**settings.SELECTOR_APP, "AUTHORIZE": path}
    get_config.cache_clear()


async def per_request(
    request: Callable[[], Awaitable[int]], n: int, expect: int
) -> float:
    """CPU microseconds per request, after a warm-up."""
    for _ in range(50):
        assert await request() == expect
    started = time.process_time()
    for _ in range(n):
        await request()
    return (time.process_time() - started) / n * 1e6


async def measure(n: int, session: str) -> list[tuple[str, float]]:
    from django.conf import settings
    from django.core.asgi import get_asgi_application

    from selector_app.fastpath import CometFastPath
    from selector_app.runtime import close_hub, get_hub
    from tests.support.asgi import AsgiClient

    django_app = get_asgi_application()
    apps = {"fast path": CometFastPath(django_app), "Django": django_app}
    cookie = (b"cookie", f"{settings.SESSION_COOKIE_NAME}={session}".encode())

    def get(app, name: str, signed_in: bool) -> Callable[[], Awaitable[int]]:
        client = AsgiClient(app)
        extra = {"headers": [(b"host", b"testserver"), cookie]} if signed_in else {}

        async def request() -> int:
            reply = await client.get(f"/live/comet/{name}?seq=0", **extra)
            return reply.status_code

        return request

    hooks = {
        "def hook": "tests.hostsite.access.can_read",
        "async def hook": "bench.authorize.async_can_read",
    }
    rows = []
    await asyncio.wait_for(get_hub().synced.wait(), 10)
    try:
        for label, app in apps.items():
            set_hook(None)
            micros = await per_request(get(app, "res", False), n, 200)
            rows.append((f"{label}, no hook", micros))
            for kind, path in hooks.items():
                set_hook(path)
                micros = await per_request(get(app, "res", False), n, 200)
                rows.append((f"{label}, {kind}, anonymous", micros))
                micros = await per_request(get(app, "staff-notes", True), n, 200)
                rows.append((f"{label}, {kind}, signed in", micros))
    finally:
        await close_hub()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="requests per row")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        session = setup(Path(directory))
        rows = asyncio.run(measure(args.n, session))
    width = max(len(label) for label, _ in rows)
    print(f"{'GET /live/comet/<name>?seq=0, CPU per request':{width}}  µs")
    for label, micros in rows:
        print(f"{label:{width}}  {micros:7.0f}")


if __name__ == "__main__":
    main()
