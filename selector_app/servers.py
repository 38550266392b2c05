"""What the ASGI server behind a socket does not carry over ASGI.

Two servers are supported, and each says "the client has gone" in its own
way when a send races a disconnect: Uvicorn raises ``ClientDisconnected`` (an
``OSError``, or a ``RuntimeError`` once its ping timeout has closed the
socket), Daphne autobahn's ``Disconnected`` (a ``RuntimeError``).
:func:`client_gone` knows both without importing either: an error of a server
can only come from a module that is already loaded.

Daphne also gives a consumer no back-pressure (``send`` returns at once and
Twisted buffers the frame however long the client does not read), drops the
reason of a close (django/daphne#374), and passes the close code to autobahn's
``sendClose``, which raises for anything but 1000 and 3000-4999
(crossbario/autobahn-python#1642): ``close(1008)``, 1009, 1011, 1012 and 1013
fail instead of closing. :class:`DaphneSocket` reaches Daphne's protocol
object behind the ASGI ``send`` to measure what the client has not read yet
and to send a close frame with any code and its reason.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

from .protocol import close_reason

#: Where Daphne's ``Server.handle_reply`` lives: the ``send`` it gives an
#: application is ``functools.partial(server.handle_reply, protocol)``.
DAPHNE_SERVER_MODULE = "daphne.server"


def client_gone(error: BaseException) -> bool:
    """Whether ``error`` is the server saying the socket has already ended."""
    if isinstance(error, OSError):  # uvicorn's ClientDisconnected is one
        return True
    autobahn = sys.modules.get("autobahn.exception")
    if autobahn is not None and isinstance(error, autobahn.Disconnected):
        return True
    # Uvicorn closes a socket itself when a ping gets no pong, and refuses a
    # send after that with a plain RuntimeError until the connection is gone.
    return (
        isinstance(error, RuntimeError)
        and "after sending 'websocket.close'" in str(error)
        and raised_in(error, "uvicorn.")
    )


def raised_in(error: BaseException, package: str) -> bool:
    """Whether ``error`` was raised by code of ``package`` (a dotted prefix)."""
    trace = error.__traceback__
    while trace is not None and trace.tb_next is not None:
        trace = trace.tb_next
    module = "" if trace is None else trace.tb_frame.f_globals.get("__name__", "")
    return module.startswith(package)


class DaphneSocket:
    """Daphne's WebSocket protocol (autobahn's, on a Twisted transport)."""

    __slots__ = ("protocol",)

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol

    def unsent_bytes(self) -> int | None:
        """Bytes sent to this socket that Twisted still holds: what the client
        has not read beyond the kernel's buffers. ``None`` if unknown."""
        return unsent_bytes(getattr(self.protocol, "transport", None))

    def waiting_frames(self) -> int:
        """Frames Daphne has read from the client that the application has
        not taken yet: it reads and queues them without limit."""
        queue = getattr(self.protocol, "application_queue", None)
        return queue.qsize() if queue is not None else 0

    def stop_reading(self) -> None:
        """Read nothing more from this client.

        After a close frame, autobahn keeps reading until the closing
        handshake ends, and Daphne queues every frame for the application: a
        flooding client keeps costing memory. Paused, the handshake times out
        instead (autobahn's ``closeHandshakeTimeout``, 1 s) and Daphne drops
        the connection; the client has its close frame by then.
        """
        transport = getattr(self.protocol, "transport", None)
        if transport is not None:
            transport.pauseProducing()

    def close(self, code: int, reason: str) -> bool:
        """Send a close frame with ``code`` and ``reason``.

        ``False`` if the handshake has not been accepted (only Daphne's own
        ``websocket.close`` can refuse it); ``True`` otherwise, including when
        the socket is already closing and there is nothing left to send.
        """
        protocol = self.protocol
        if protocol.state == protocol.STATE_CONNECTING:
            return False
        if protocol.state == protocol.STATE_OPEN:
            protocol.sendCloseFrame(
                code=code,
                reasonUtf8=close_reason(reason).encode() or None,
                isReply=False,
            )
        return True


def unsent_bytes(transport: Any) -> int | None:
    """Bytes a Twisted TCP ``transport`` still holds: what the client has not
    read beyond the kernel's buffers. ``None`` if unknown."""
    # Twisted's FileDescriptor has no public counterpart of these.
    try:
        buffered = len(transport.dataBuffer) - transport.offset
        return buffered + transport._tempDataLen
    except (AttributeError, TypeError):
        return None


class DaphneRequest:
    """Daphne's HTTP request (a Twisted ``Request``) behind a streamed response.

    Daphne writes each body chunk to Twisted at once, however long the client
    does not read: an event stream measures what is left (:meth:`unsent_bytes`)
    and drops a client that leaves too much (:meth:`drop`).
    """

    __slots__ = ("protocol",)

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol

    def unsent_bytes(self) -> int | None:
        return unsent_bytes(getattr(self.protocol, "transport", None))

    def drop(self) -> None:
        """Close the connection now, unsent bytes and all: Daphne then tells
        the application ``http.disconnect``."""
        transport = getattr(self.protocol, "transport", None)
        abort = getattr(transport, "abortConnection", None)
        if abort is not None:
            abort()


def _daphne_protocol(send: Callable[..., Any]) -> Any:
    """Daphne's protocol object behind an application's ``send``; ``None`` when
    the server is not Daphne or ``send`` is wrapped beyond recognition."""
    # Channels' session middleware wraps send in a method of an object that
    # keeps the original as ``real_send`` (AuthMiddlewareStack does this).
    for _ in range(8):
        inner = getattr(getattr(send, "__self__", None), "real_send", None)
        if inner is None:
            break
        send = inner
    if not isinstance(send, functools.partial) or len(send.args) != 1:
        return None
    server = getattr(send.func, "__self__", None)
    if type(server).__module__ != DAPHNE_SERVER_MODULE:
        return None
    return send.args[0]


def daphne_socket(send: Callable[..., Any]) -> DaphneSocket | None:
    """The Daphne socket behind an application's ``send``; ``None`` when the
    server is not Daphne or ``send`` is wrapped beyond recognition."""
    protocol = _daphne_protocol(send)
    if protocol is None or not all(
        hasattr(protocol, name) for name in ("sendCloseFrame", "state", "transport")
    ):
        return None
    return DaphneSocket(protocol)


def daphne_request(send: Callable[..., Any]) -> DaphneRequest | None:
    """The Daphne HTTP request behind an application's ``send``; ``None`` when
    the server is not Daphne."""
    protocol = _daphne_protocol(send)
    if protocol is None or not hasattr(protocol, "transport"):
        return None
    return DaphneRequest(protocol)


def offers_denial_response(scope: dict[str, Any]) -> bool:
    """Whether the server can answer a handshake with any HTTP response (the
    ASGI "WebSocket Denial Response" extension: Uvicorn, not Daphne)."""
    return "websocket.http.response" in (scope.get("extensions") or {})
