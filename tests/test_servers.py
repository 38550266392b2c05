"""Recognising each server's "client gone" and reaching Daphne's socket."""

from __future__ import annotations

import functools

import pytest
from autobahn.exception import Disconnected
from channels.sessions import InstanceSessionWrapper
from daphne.server import Server
from uvicorn.protocols.utils import ClientDisconnected

from selector_app.servers import (
    DaphneSocket,
    client_gone,
    daphne_socket,
    offers_denial_response,
)


@pytest.mark.parametrize(
    "error",
    [
        Disconnected("Attempt to send on a closed protocol"),  # Daphne
        ClientDisconnected(),  # Uvicorn
        ConnectionResetError("reset by peer"),
    ],
)
def test_each_servers_client_gone_error_is_recognised(error):
    assert client_gone(error)


def raised_by(module: str, error: Exception) -> Exception:
    """``error`` as raised by code whose module is named ``module``."""
    try:
        exec("raise error", {"__name__": module, "error": error})
    except Exception as raised:
        return raised
    raise AssertionError("not raised")


def test_a_send_after_uvicorns_own_close_is_recognised():
    """Uvicorn's ping timeout closes the socket; a send then gets this."""
    message = (
        "Unexpected ASGI message 'websocket.send', after sending 'websocket.close'."
    )
    module = "uvicorn.protocols.websockets.websockets_sansio_impl"
    assert client_gone(raised_by(module, RuntimeError(message)))
    assert not client_gone(raised_by("myapp.views", RuntimeError(message)))


@pytest.mark.parametrize(
    "error",
    [RuntimeError("a bug"), ValueError("a bug"), Exception("invalid close code")],
)
def test_other_errors_are_not_mistaken_for_a_gone_client(error):
    assert not client_gone(error)
    assert not client_gone(raised_by("uvicorn.protocols.utils", error))


class FakeTransport:
    """The attributes of Twisted's FileDescriptor that hold unsent bytes."""

    def __init__(self) -> None:
        self.dataBuffer = b"x" * 100
        self.offset = 40
        self._tempDataLen = 1000


class FakeProtocol:
    """The surface of Daphne's WebSocketProtocol that DaphneSocket uses."""

    STATE_CLOSED, STATE_CONNECTING, STATE_CLOSING, STATE_OPEN = 0, 1, 2, 3

    def __init__(self, state: int = 3) -> None:
        self.state = state
        self.transport = FakeTransport()
        self.sent: list[tuple[int, bytes | None]] = []

    def sendCloseFrame(self, code, reasonUtf8=None, isReply=False):
        assert not isReply
        self.sent.append((code, reasonUtf8))
        self.state = self.STATE_CLOSING


@pytest.fixture
def daphne_send():
    """What Daphne hands an application as ``send``, around a fake protocol."""
    server = Server(application=None, endpoints=["tcp:port=0"])
    protocol = FakeProtocol()
    return functools.partial(server.handle_reply, protocol), protocol


def test_daphnes_send_leads_to_its_protocol(daphne_send):
    send, protocol = daphne_send
    assert daphne_socket(send).protocol is protocol


def test_channels_session_middleware_is_seen_through(daphne_send):
    send, protocol = daphne_send
    wrapper = InstanceSessionWrapper({"type": "websocket", "cookies": {}}, send)
    assert daphne_socket(wrapper.send).protocol is protocol


def test_any_other_send_is_not_daphnes():
    async def send(message):
        pass

    assert daphne_socket(send) is None
    assert daphne_socket(functools.partial(print, 1)) is None


def test_unsent_bytes_are_twisteds_buffered_bytes():
    assert DaphneSocket(FakeProtocol()).unsent_bytes() == 60 + 1000
    protocol = FakeProtocol()
    protocol.transport = None  # the connection is gone
    assert DaphneSocket(protocol).unsent_bytes() is None


def test_a_close_frame_carries_any_code_and_the_reason():
    protocol = FakeProtocol()
    assert DaphneSocket(protocol).close(1009, "é" * 100)
    [(code, reason)] = protocol.sent
    assert code == 1009 and reason.decode().startswith("éé") and len(reason) <= 123


def test_a_closing_socket_gets_no_second_close_frame():
    protocol = FakeProtocol(state=FakeProtocol.STATE_CLOSING)
    assert DaphneSocket(protocol).close(1008, "again")
    assert protocol.sent == []


def test_a_handshake_is_left_to_daphnes_own_refusal():
    protocol = FakeProtocol(state=FakeProtocol.STATE_CONNECTING)
    assert not DaphneSocket(protocol).close(1013, "busy")
    assert protocol.sent == []


def test_the_denial_response_extension_is_read_from_the_scope():
    assert offers_denial_response({"extensions": {"websocket.http.response": {}}})
    assert not offers_denial_response({"extensions": None})
    assert not offers_denial_response({})


def test_no_server_is_imported_by_the_app():
    """Daphne and Uvicorn are optional: the consumers import neither."""
    import subprocess
    import sys

    from tests.support.server import ROOT, project_env

    code = (
        "import sys, django; from django.conf import settings; "
        "settings.configure(INSTALLED_APPS=['django.contrib.contenttypes', "
        "'django.contrib.auth', 'channels', 'selector_app']); django.setup(); "
        "import selector_app.consumers; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'daphne', 'uvicorn', 'autobahn', 'twisted'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**project_env(), "DJANGO_SETTINGS_MODULE": ""},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "[]", result.stderr
