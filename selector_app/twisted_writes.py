"""Under Daphne, a write goes to the socket at once when nothing waits before it.

Twisted's ``FileDescriptor.write`` always buffers: it asks the reactor to
report the socket writable, and writes on the next turn of the loop. Every
pushed frame therefore costs a writer registration, a loop callback and an
unregistration (two ``epoll_ctl`` calls with the asyncio reactor): half of
Daphne's CPU per frame in our profiles (docs/benchmarks.md). asyncio's own
transports try ``send()`` first and buffer only what the kernel does not
take; :func:`install` gives Twisted's TCP connections the same behaviour.

Only when the connection's buffer is empty, it is connected, not closing and
not TLS (Daphne's TLS goes through its own layer) is the data sent now; a
remainder the kernel did not take, and everything else, takes Twisted's own
path. So the order of the bytes, the accounting of unsent bytes (which
``MAX_UNSENT_BYTES`` reads), producers and ``loseConnection()`` are
Twisted's. ``SELECTOR_APP["EAGER_TWISTED_WRITES"] = False`` leaves Twisted
alone; the app's ``ready()`` applies the setting only where Twisted's TCP
module is already loaded (Daphne imports it first), never importing it.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from .conf import get_config

MODULE = "twisted.internet.tcp"


def _eager_write(original: Any) -> Any:
    def write(self: Any, data: bytes) -> None:
        if (
            type(data) is bytes
            and data
            and not self.dataBuffer
            and not self._tempDataBuffer
            and self.connected
            and not self.disconnecting
            and not self._writeDisconnected
            and not self.TLS
        ):
            written = self.writeSomeData(data)
            if type(written) is int:  # else the connection is lost: Twisted's path
                if written == len(data):
                    return
                data = data[written:]
        original(self, data)

    write.__wrapped__ = original
    write.__doc__ = original.__doc__
    return write


def installed() -> bool:
    module = sys.modules.get(MODULE)
    return module is not None and hasattr(module.Connection.write, "__wrapped__")


def install() -> bool:
    """Give ``tcp.Connection`` the eager write; idempotent. Whether it was
    applied now (``False`` if already, or if Twisted is not loaded)."""
    module = sys.modules.get(MODULE)
    if module is None or installed():
        return False
    module.Connection.write = _eager_write(module.Connection.write)
    return True


def uninstall() -> None:
    if installed():
        module = sys.modules[MODULE]
        module.Connection.write = module.Connection.write.__wrapped__


def configure() -> bool:
    """Apply ``SELECTOR_APP["EAGER_TWISTED_WRITES"]`` (from ``ready()``).
    Invalid settings change nothing here (the system checks report them)."""
    try:
        enabled = get_config().EAGER_TWISTED_WRITES
    except ImproperlyConfigured:
        return False
    if not enabled:
        uninstall()
        return False
    return install() or installed()
