"""Let Daphne send the close codes RFC 6455 gives servers (1012 and others).

Daphne hands an application's ``websocket.close`` code to Autobahn's
``sendClose()``, which accepts only 1000 and 3000-4999: the codes a *browser*
may send. A server's own codes (1009 "message too big", 1011 "internal
error", 1012 "service restart", 1013 "try again later") then raise inside
Daphne, and the client gets no close frame at all (django/daphne#374,
crossbario/autobahn-python#1642). :func:`allow_server_close_codes` makes
Daphne send those codes with Autobahn's ``sendCloseFrame()``, the call
Autobahn uses for its own protocol closes; every other code goes the usual
way.

Applied by :func:`selector_app.shutdown.get_connections` when a loop first
serves the app, and only if Daphne is the running server (its module is
loaded); never at import.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

#: Codes an endpoint may send (RFC 6455 7.4.1 and the IANA registry), minus
#: 1000, which Autobahn already allows, and 1010, which only a client sends.
SERVER_CLOSE_CODES = frozenset({1001, 1002, 1003, 1007, 1008, 1009, 1011, 1012, 1013})


def allow_server_close_codes() -> bool:
    """Patch Daphne's WebSocket protocol once; return whether this call did."""
    module = sys.modules.get("daphne.ws_protocol")
    if module is None:
        return False
    protocol = module.WebSocketProtocol
    original = protocol.serverClose
    if getattr(original, "allows_server_codes", False):
        return False

    @functools.wraps(original)
    def serverClose(self: Any, code: int | None = None) -> None:
        if code in SERVER_CLOSE_CODES:
            self.sendCloseFrame(code=code)
        else:
            original(self, code)

    serverClose.allows_server_codes = True  # type: ignore[attr-defined]
    protocol.serverClose = serverClose
    return True
