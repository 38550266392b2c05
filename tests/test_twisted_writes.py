"""Twisted's TCP writes go out at once when nothing is buffered before them.

A real ``tcp.Connection`` around one end of a real socket pair; the reactor
is a stand-in that records what the connection asks of it (the logic under
test is ours: when to write now, and what to leave to Twisted).
"""

from __future__ import annotations

import socket

import pytest
from twisted.internet import tcp
from twisted.internet.protocol import Protocol

from selector_app import twisted_writes


class Reactor:
    """Records the writer registrations a connection asks for."""

    def __init__(self) -> None:
        self.writers: list = []

    def addWriter(self, writer) -> None:
        self.writers.append(writer)

    def removeWriter(self, writer) -> None:
        self.writers.remove(writer)

    def addReader(self, reader) -> None:
        pass

    def removeReader(self, reader) -> None:
        pass


@pytest.fixture(autouse=True)
def _plain_twisted():
    """Each test starts from Twisted as it ships (the app's ``ready()`` may
    have patched it in this process) and leaves it as it found it."""
    was = twisted_writes.installed()
    twisted_writes.uninstall()
    yield
    twisted_writes.uninstall()
    if was:
        twisted_writes.install()


@pytest.fixture
def eager():
    assert twisted_writes.install()


@pytest.fixture
def pair():
    """(Twisted's connection on one end, the plain socket at the other, the
    reactor stand-in)."""
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    theirs.settimeout(5)
    reactor = Reactor()
    connection = tcp.Connection(ours, Protocol(), reactor=reactor)
    connection.connected = True
    yield connection, theirs, reactor
    ours.close()
    theirs.close()


def receive(peer: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        data += peer.recv(size - len(data))
    return data


def test_a_write_with_nothing_buffered_goes_out_at_once(eager, pair):
    connection, peer, reactor = pair
    connection.write(b"frame one")
    assert receive(peer, 9) == b"frame one"
    assert reactor.writers == []  # no registration, no turn of the loop


def test_without_the_patch_twisted_waits_for_the_reactor(pair):
    connection, peer, reactor = pair
    assert not twisted_writes.installed()
    connection.write(b"frame one")
    assert reactor.writers == [connection]
    connection.doWrite()
    assert receive(peer, 9) == b"frame one"


def test_behind_buffered_bytes_a_write_waits_its_turn(eager, pair):
    connection, peer, reactor = pair
    connection._tempDataBuffer.append(b"first ")
    connection._tempDataLen += 6
    connection.write(b"second")
    assert reactor.writers == [connection]
    connection.doWrite()
    assert receive(peer, 12) == b"first second"  # in order


def test_what_the_kernel_does_not_take_is_buffered_in_order(eager, pair):
    connection, peer, reactor = pair
    connection.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    big = bytes(range(256)) * 4096  # 1 MiB: more than the socket takes
    connection.write(big)
    assert reactor.writers == [connection]
    unsent = len(b"".join(connection._tempDataBuffer)) + len(connection.dataBuffer)
    assert 0 < unsent < len(big)  # what MAX_UNSENT_BYTES measures
    connection.write(b"after")
    received = b""
    while len(received) < len(big) + 5:
        received += peer.recv(65536)
        connection.doWrite()
    assert received == big + b"after"


def test_a_closing_connection_takes_twisteds_own_path(eager, pair):
    connection, _peer, reactor = pair
    connection.disconnecting = True
    connection.write(b"late")
    assert reactor.writers == [connection]


def test_a_tls_connection_writes_through_its_tls_layer(eager, pair):
    connection, _peer, reactor = pair
    through_tls = []
    connection.TLS = True
    connection.protocol.write = through_tls.append
    connection.write(b"secret")
    assert through_tls == [b"secret"] and reactor.writers == []


def test_the_setting_installs_and_removes_it(settings):
    settings.SELECTOR_APP = {"EAGER_TWISTED_WRITES": False}
    assert not twisted_writes.configure()
    assert not twisted_writes.installed()
    settings.SELECTOR_APP = {}
    assert twisted_writes.configure()
    assert twisted_writes.installed()
    assert not twisted_writes.install()  # idempotent
    twisted_writes.uninstall()
    assert not twisted_writes.installed()
