"""A lock in Redis that lets exactly one ``runupdater`` publish per resource.

The lock expires unless renewed (a time-to-live, so a dead holder cannot keep
it). It is a Redis key set with ``SET key token NX PX ttl``, renewed with a
compare-and-expire script and released with a compare-and-delete script, so
a process only ever extends or deletes its own lock. It works across hosts:
every ``runupdater`` talks to the same Redis (by default the channel layer's
first host).

Safety does not depend on the holder noticing anything: a lock is *proven*
from the moment its ``SET``/renewal was **sent** until ``ttl`` later (Redis
starts the expiry only when it runs the command, which is after that), and
the holder publishes only while more than ``margin`` of that proof is left.
Any error from the lock store ends the proof at once, because the error may
mean Redis restarted and forgot the key. A standby can only acquire once the
key has expired, which is after the holder has stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
from collections.abc import AsyncIterator

from django.core.exceptions import ImproperlyConfigured

from .extras import is_missing, missing_extra

try:
    from redis import asyncio as aioredis
    from redis.exceptions import RedisError
except ModuleNotFoundError as error:  # imported only by an exclusive updater
    if not is_missing(error, "redis"):
        raise
    raise missing_extra(
        "redis", feature="runupdater's lock (one publisher per resource)"
    ) from error

from .conf import get_config
from .layers import channel_layer
from .outages import Report, say

logger = logging.getLogger(__name__)

#: KEYS[1] is ours (ARGV[1]): extend it to ARGV[2] ms. 1 if extended, else 0.
RENEW_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

#: KEYS[1] is ours (ARGV[1]): delete it. 1 if deleted, else 0.
RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

#: What talking to the lock store can raise besides a timeout.
STORE_ERRORS = (RedisError, OSError)


class RedisLock:
    """One named lock in Redis: single attempts to acquire, renew and release.

    Every command is bounded by ``ttl / 4``, whatever the client's own socket
    timeout, so a hung connection can never outlive the proof of the lock.
    """

    def __init__(self, client: aioredis.Redis, key: str, *, ttl: float) -> None:
        if ttl <= 0:
            raise ValueError("The lock TTL must be a positive number of seconds.")
        self.client = client
        self.key = key
        self.ttl = ttl
        #: Identifies this holder; only its owner can renew or release the key.
        self.token = secrets.token_hex(16)
        self._proven_until = -math.inf

    @property
    def op_timeout(self) -> float:
        return self.ttl / 4

    def remaining(self) -> float:
        """Seconds for which this process can still prove it holds the lock."""
        return max(0.0, self._proven_until - asyncio.get_running_loop().time())

    async def acquire(self) -> bool:
        """Take the lock if nobody holds it (one attempt)."""
        return await self._command(
            self.client.set, self.key, self.token, nx=True, px=self._ttl_ms()
        )

    async def renew(self) -> bool:
        """Extend the lock if it is still ours (one attempt)."""
        script = self.client.register_script(RENEW_SCRIPT)
        return await self._command(
            script, keys=[self.key], args=[self.token, self._ttl_ms()]
        )

    async def release(self) -> None:
        """Give the lock up if it is still ours, so a standby takes over at once."""
        self._proven_until = -math.inf  # first: no publish once releasing began
        script = self.client.register_script(RELEASE_SCRIPT)
        async with asyncio.timeout(self.op_timeout):
            await script(keys=[self.key], args=[self.token])

    async def _command(self, command, *args, **kwargs) -> bool:
        sent = asyncio.get_running_loop().time()
        try:
            # Cancelling a redis-py command drops its connection, so a late
            # reply can never be read as the answer to a later command.
            async with asyncio.timeout(self.op_timeout):
                ok = bool(await command(*args, **kwargs))
        except BaseException:
            self._proven_until = -math.inf
            raise
        self._proven_until = sent + self.ttl if ok else -math.inf
        return ok

    def _ttl_ms(self) -> int:
        return max(1, round(self.ttl * 1000))


class LockKeeper:
    """Keeps a :class:`RedisLock` held: waits as a standby, renews, re-acquires.

    Run :meth:`run` as a task; ask :meth:`held` right before every publish.
    """

    def __init__(
        self, lock: RedisLock, *, what: str, report: Report | None = None
    ) -> None:
        self.lock = lock
        self.what = what
        #: Also shows each change of state (runupdater's output).
        self.report = report
        #: Proof that must be left to start a publish (it must finish in it).
        self.margin = lock.ttl / 3
        self.renew_every = lock.ttl / 3
        self.retry_every = lock.ttl / 4
        self._acquired = asyncio.Event()

    def held(self) -> bool:
        """Whether a publish may start now: the lock is proven long enough."""
        return self.lock.remaining() > self.margin

    async def wait_held(self) -> None:
        """Return once the lock is held (at once if it is)."""
        while not self.held():
            self._acquired.clear()
            await self._acquired.wait()

    async def run(self) -> None:
        """Hold the lock until cancelled, then release it."""
        try:
            await self._keep()
        finally:
            await self._release()

    async def _keep(self) -> None:
        state = "start"
        while True:
            try:
                ok, error = await self._attempt(state), None
            except (*STORE_ERRORS, TimeoutError) as caught:
                ok, error = False, caught
            state = self._report(state, ok, error)
            if ok:
                self._acquired.set()
                await asyncio.sleep(self.renew_every)
            else:
                self._acquired.clear()
                await asyncio.sleep(self.retry_every)

    async def _attempt(self, state: str) -> bool:
        # After an outage the key may still be ours (a short blip): renew it
        # rather than wait for it to expire; otherwise take it if it is free.
        if state in ("held", "unreachable") and await self.lock.renew():
            return True
        return await self.lock.acquire()

    def _report(self, state: str, ok: bool, error: BaseException | None) -> str:
        """Log each change of state once; return the new state."""
        if ok:
            if state != "held":
                self._say(
                    logging.INFO, "acquired the lock on %s; publishing.", self.what
                )
            return "held"
        if error is not None:
            reason = str(error) or type(error).__name__
            if state == "held":
                self._say(
                    logging.ERROR,
                    "Lost the lock on %s: the lock store is unreachable (%s). "
                    "Stopped publishing; retrying every %.2f s.",
                    self.what,
                    reason,
                    self.retry_every,
                )
            elif state != "unreachable":
                self._say(
                    logging.WARNING,
                    "Cannot reach the lock store for %s (%s); not publishing, "
                    "retrying every %.2f s.",
                    self.what,
                    reason,
                    self.retry_every,
                )
            return "unreachable"
        if state == "held":
            self._say(
                logging.ERROR,
                "Lost the lock on %s: another process holds it now (this one "
                "could not renew in time). Stopped publishing; standing by.",
                self.what,
            )
        elif state != "standby":
            self._say(logging.INFO, "standby: waiting for the lock on %s", self.what)
        return "standby"

    def _say(self, level: int, message: str, *args: object) -> None:
        say(logger, self.report, level, message, *args)

    async def _release(self) -> None:
        try:
            await self.lock.release()
        except (*STORE_ERRORS, TimeoutError) as error:
            # Expected when Redis goes first (a shutdown): one line, no trace.
            logger.warning(
                "Could not release the lock on %s (%s); a standby takes over "
                "when it expires (within %s s).",
                self.what,
                error or type(error).__name__,
                self.lock.ttl,
            )


def lock_client() -> aioredis.Redis:
    """A Redis client for locks: ``LOCK_REDIS_URL``, else the layer's first host."""
    config = get_config()
    if config.LOCK_REDIS_URL:
        return aioredis.Redis.from_url(config.LOCK_REDIS_URL)
    layer = channel_layer()
    hosts = getattr(layer, "hosts", None)
    if type(layer).__module__.startswith("channels_redis") and hosts:
        from channels_redis.utils import create_pool

        return aioredis.Redis(connection_pool=create_pool(hosts[0]))
    raise ImproperlyConfigured(
        "runupdater keeps a lock in Redis so that only one process publishes to "
        f"a resource, but the {config.CHANNEL_LAYER!r} channel layer is not "
        "channels_redis. Use channels_redis (set REDIS_URL in the demo) or set "
        "SELECTOR_APP['LOCK_REDIS_URL'] to a Redis every runupdater can reach."
    )


@contextlib.asynccontextmanager
async def resource_lock(
    name: str, *, report: Report | None = None
) -> AsyncIterator[LockKeeper]:
    """Keep the updater lock on resource ``name`` for the duration of the block.

    The lock is acquired in the background (``keeper.wait_held()``); on the
    way out it is released and its connections closed. ``report`` is shown
    each change of state besides the log.
    """
    config = get_config()
    client = lock_client()
    lock = RedisLock(client, f"{config.GROUP}:updater-lock:{name}", ttl=config.LOCK_TTL)
    keeper = LockKeeper(lock, what=repr(name), report=report)
    task = asyncio.create_task(keeper.run(), name=f"selector_app lock: {name}")
    try:
        yield keeper
    finally:
        task.cancel()
        try:
            # gather() returns the task's CancelledError instead of raising it,
            # but raises ours if we are cancelled meanwhile, which must propagate.
            [outcome] = await asyncio.gather(task, return_exceptions=True)
            if isinstance(outcome, Exception):
                logger.error("The lock keeper for %r failed.", name, exc_info=outcome)
        finally:
            await client.aclose(close_connection_pool=True)
