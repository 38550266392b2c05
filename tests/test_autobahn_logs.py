"""autobahn's debug-log arguments: built only for a debug line written.

Each test drives autobahn's real ``sendData`` (the per-frame call) on a
protocol object with a transport that only counts, and a txaio logger at
the level under test whose events are formatted as Twisted formats them.
"""

from __future__ import annotations

from collections import deque

import pytest
import txaio
from autobahn import util
from autobahn.twisted.websocket import WebSocketServerProtocol
from autobahn.websocket.protocol import TrafficStats, WebSocketProtocol
from twisted.logger import formatEvent

from selector_app import autobahn_logs


class Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)


def send_frame(level: str) -> tuple[list[str], list[bytes]]:
    """autobahn's ``sendData`` of one frame; (log lines, bytes written)."""
    events: list[dict] = []
    protocol = WebSocketServerProtocol()
    protocol.log = txaio.make_logger(level=level, observer=events.append)
    protocol.transport = Transport()
    protocol.peer = "tcp4:127.0.0.1:5555"
    protocol.state = WebSocketProtocol.STATE_OPEN
    protocol.trafficStats = TrafficStats()
    protocol.send_queue = deque()
    protocol.logOctets = False
    protocol.sendData(b"\x81\x05hello")
    return [formatEvent(event) for event in events], protocol.transport.written


@pytest.fixture
def styling_calls(monkeypatch):
    """Every call of autobahn's styling helper (``click.style`` behind it)."""
    calls = []
    original = util.hl

    def counted(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(util, "hl", counted)
    return calls


@pytest.fixture
def unpatched():
    """autobahn as it ships, for the length of a test."""
    autobahn_logs.uninstall()
    yield
    autobahn_logs.install()


def test_the_app_patches_both_modules_when_daphne_has_loaded_autobahn():
    # tests.settings installs daphne, whose app imports autobahn first.
    assert autobahn_logs.installed("autobahn.websocket.protocol")
    assert autobahn_logs.installed("autobahn.twisted.websocket")


def test_with_debug_off_a_frame_styles_nothing(styling_calls):
    lines, written = send_frame("info")
    assert lines == []
    assert written == [b"\x81\x05hello"]
    assert styling_calls == []


def test_unpatched_autobahn_styles_every_frame(unpatched, styling_calls):
    lines, _ = send_frame("info")
    assert lines == []
    assert len(styling_calls) >= 3  # what the patch saves, frame after frame


def test_with_debug_on_the_line_reads_as_autobahns_own(styling_calls):
    patched, _ = send_frame("debug")
    autobahn_logs.uninstall()
    try:
        original, _ = send_frame("debug")
    finally:
        autobahn_logs.install()
    assert patched == original
    [line] = patched
    assert "WebSocketProtocol.sendData" in line
    assert "\x1b[" in line  # still coloured, as autobahn colours it
    assert "tcp4:127.0.0.1:5555" in line


def test_the_setting_opts_out_and_back_in(selector_settings):
    selector_settings(LAZY_AUTOBAHN_LOGS=False)
    try:
        assert autobahn_logs.configure() == []
        assert not autobahn_logs.installed("autobahn.websocket.protocol")
        assert not autobahn_logs.installed("autobahn.twisted.websocket")
    finally:
        selector_settings(LAZY_AUTOBAHN_LOGS=True)
    assert autobahn_logs.configure() == list(autobahn_logs.MODULES)
    assert autobahn_logs.installed("autobahn.twisted.websocket")


def test_install_is_idempotent_and_uninstall_restores_autobahns_helpers():
    autobahn_logs.install()
    autobahn_logs.install()
    from autobahn.websocket import protocol

    assert protocol.hltype.__wrapped__ is util.hltype
    autobahn_logs.uninstall()
    try:
        assert protocol.hltype is util.hltype
        assert protocol.hlval is util.hlval
    finally:
        autobahn_logs.install()


def test_a_styled_value_formats_like_the_helpers_text():
    styled = autobahn_logs.deferred(util.hlval)(42, color="blue")
    assert f"{styled}" == str(styled) == util.hlval(42, color="blue")
    assert f"{styled:>30}" == f"{util.hlval(42, color='blue'):>30}"
