"""CometFastPath: what it takes, what it hands on, and what it keeps of
Django's behaviour (the wire contract itself is in test_views, for both)."""

from __future__ import annotations

import logging

import pytest
from django.core.asgi import get_asgi_application

from selector_app.fastpath import CometFastPath
from tests.support.asgi import AsgiClient

pytestmark = pytest.mark.usefixtures("res", "hub")

MARKER = "tests.support.middleware.MarkingMiddleware"


@pytest.fixture
def marked(settings):
    """Django's full stack plus a middleware that marks every response."""
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, MARKER]


def fast() -> AsgiClient:
    return AsgiClient(CometFastPath(get_asgi_application()))


async def test_comet_skips_the_middleware_stack_and_the_rest_does_not(marked):
    client = fast()
    comet = await client.get("/comet?seq=0")
    assert comet.status_code == 200 and "x-middleware" not in comet.headers
    for path in ("/", "/comet-not", "/static/selector_app/live.js"):
        assert (await client.get(path))["X-Middleware"] == "seen"
    post = await client.request("POST", "/comet?seq=0")
    assert post.status_code == 405 and post["X-Middleware"] == "seen"
    # Without the fast path the same request goes through the middleware.
    plain = await AsgiClient(get_asgi_application()).get("/comet?seq=0")
    assert plain["X-Middleware"] == "seen"


async def test_a_host_not_in_allowed_hosts_gets_djangos_400(caplog):
    with caplog.at_level(logging.ERROR, logger="django.security.DisallowedHost"):
        reply = await fast().get("/comet?seq=0", host="evil.example")
    assert reply.status_code == 400
    assert b"Bad Request (400)" in reply.content  # Django's own answer
    assert "evil.example" in caplog.text


async def test_security_middleware_headers_are_kept(settings):
    settings.SECURE_REFERRER_POLICY = "same-origin"
    reply = await fast().get("/comet?seq=0")
    assert reply["X-Content-Type-Options"] == "nosniff"
    assert reply["Referrer-Policy"] == "same-origin"


async def test_security_middleware_redirects_plain_http_when_told_to(settings):
    settings.SECURE_SSL_REDIRECT = True
    reply = await fast().get("/comet?seq=0")
    assert reply.status_code == 301
    assert reply["Location"] == "https://testserver/comet?seq=0"


async def test_without_security_middleware_nothing_is_added(settings):
    settings.MIDDLEWARE = []
    reply = await fast().get("/comet?seq=0")
    assert reply.status_code == 200
    assert "x-content-type-options" not in reply.headers


async def test_the_url_configuration_decides_where_comet_lives(settings, marked):
    settings.ROOT_URLCONF = "tests.prefix_urls"  # the app under /live/
    client = fast()
    reply = await client.get("/live/comet/res?seq=0")
    assert reply.status_code == 200 and "x-middleware" not in reply.headers
    assert (await client.get("/comet?seq=0")).status_code == 404


async def test_an_asgi_root_path_is_honoured(marked):
    reply = await fast().get("/mount/comet?seq=0", root_path="/mount")
    assert reply.status_code == 200 and "x-middleware" not in reply.headers


async def test_a_failing_view_is_djangos_500_and_logged(hub, monkeypatch, caplog):
    async def broken(*args, **kwargs):
        raise RuntimeError("the hub is on fire")

    monkeypatch.setattr(hub, "poll", broken)
    with caplog.at_level(logging.ERROR, logger="django.request"):
        reply = await fast().get("/comet?seq=0")
    assert reply.status_code == 500
    assert "the hub is on fire" in caplog.text
