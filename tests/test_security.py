"""OriginValidator: browsers from the site's origins and clients without
``Origin`` are served; other sites' pages get 403. Against real servers:
test_origins."""

from __future__ import annotations

import logging

import pytest
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.testing import WebsocketCommunicator

from selector_app.security import OriginValidator


class Accepting(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.accept()


async def accepted(origin: str | None) -> bool:
    headers = [] if origin is None else [(b"origin", origin.encode("latin1"))]
    comm = WebsocketCommunicator(OriginValidator(Accepting.as_asgi()), "/ws", headers)
    connected, _ = await comm.connect(timeout=5)
    await comm.disconnect()
    return connected


@pytest.fixture(autouse=True)
def _hosts(settings):
    settings.ALLOWED_HOSTS = ["example.com", ".example.org"]


async def test_a_handshake_without_origin_is_served():
    assert await accepted(None)


@pytest.mark.parametrize(
    "origin",
    ["http://example.com", "https://example.com:8443", "https://www.example.org"],
)
async def test_the_sites_own_hosts_are_served(origin):
    assert await accepted(origin)


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example",
        "https://example.com.evil.example",
        "null",  # sandboxed frames, file: pages
        "",
        "http://[::1",  # malformed
        "example.com",  # no scheme: not what a browser sends
    ],
)
async def test_other_origins_are_refused(origin, caplog):
    with caplog.at_level(logging.INFO, logger="selector_app.security"):
        assert not await accepted(origin)
    assert "ALLOWED_HOSTS" in caplog.text


async def test_allowed_origins_replace_the_hosts(selector_settings):
    selector_settings(ALLOWED_ORIGINS=["https://www.example.net"])
    assert await accepted("https://www.example.net")
    assert not await accepted("http://www.example.net")  # the scheme counts
    assert not await accepted("http://example.com")
    assert not await accepted("https://www.example.net:99999")  # port out of range
    assert await accepted(None)


async def test_require_origin_refuses_clients_without_one(selector_settings):
    selector_settings(REQUIRE_ORIGIN=True)
    assert not await accepted(None)
    assert await accepted("http://example.com")


async def test_under_debug_with_no_hosts_localhost_is_allowed(settings):
    settings.DEBUG, settings.ALLOWED_HOSTS = True, []
    assert await accepted("http://localhost:8000")
    assert not await accepted("http://example.com")


async def test_a_wildcard_host_allows_every_origin(settings, selector_settings):
    settings.ALLOWED_HOSTS = ["*"]
    selector_settings(REQUIRE_ORIGIN=True)
    assert await accepted("http://anything.example")
    assert await accepted(None)


def test_it_is_channels_origin_validator_for_whoever_looks_for_one():
    from channels.security.websocket import OriginValidator as Channels

    assert isinstance(OriginValidator(Accepting.as_asgi()), Channels)
