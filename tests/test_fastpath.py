"""CometFastPath: what it takes, what it hands on, and what it keeps of
Django's behaviour (the wire contract itself is in test_views, for both)."""

from __future__ import annotations

import logging

import pytest
from django.core.asgi import get_asgi_application

from selector_app import fastpath
from selector_app.fastpath import CometFastPath
from tests.support.asgi import AsgiClient

pytestmark = pytest.mark.usefixtures("res", "hub")

MARKER = "tests.support.middleware.MarkingMiddleware"


@pytest.fixture
def marked(settings):
    """Django's full stack behind a middleware that marks every response
    (first, so that it sees static files WhiteNoise answers too)."""
    settings.MIDDLEWARE = [MARKER, *settings.MIDDLEWARE]


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


async def test_a_query_django_cannot_decode_is_400_with_a_reason(caplog):
    with caplog.at_level(logging.DEBUG):
        reply = await fast().get("/comet", query_string=b"seq=\xff")
    assert reply.status_code == 400
    assert reply.content == b"The query string is not valid UTF-8.\n"
    assert not [record for record in caplog.records if record.exc_info]


@pytest.mark.parametrize("debug", [False, True])
async def test_too_many_fields_is_400_even_under_debug(settings, debug):
    settings.DEBUG = debug  # Django's debug 500 page re-reads request.GET
    many = "&".join(f"f{i}=1" for i in range(1001))
    for client in (fast(), AsgiClient(get_asgi_application())):
        reply = await client.get(f"/comet?{many}")
        assert reply.status_code == 400
        assert reply.content == b"A query string may have at most 1000 fields.\n"


async def test_a_failing_security_hook_is_djangos_500(monkeypatch, caplog):
    class Broken:
        def process_request(self, request):
            raise RuntimeError("the middleware is on fire")

    client = fast()
    monkeypatch.setattr(client.app, "security", Broken(), raising=False)
    with caplog.at_level(logging.ERROR, logger="django.request"):
        reply = await client.get("/comet?seq=0")
    assert reply.status_code == 500
    assert "the middleware is on fire" in caplog.text


@pytest.fixture
def match(settings):
    """``match(path)``: the fast path's answer to "is this Comet?", on a
    fresh cache; ``match.cached()`` counts what the cache keeps."""
    fastpath._cached_comet_match.cache_clear()

    def resolve(path: str):
        return fastpath._comet_match(settings.ROOT_URLCONF, path)

    resolve.cached = lambda: fastpath._cached_comet_match.cache_info().currsize
    yield resolve
    fastpath._cached_comet_match.cache_clear()


def test_only_comet_paths_are_cached(match):
    assert match("/comet") is not None
    for path in ("/", "/nowhere", "/comet/a/b", "/static/x.js", "/admin/"):
        assert match(path) is None
    assert match.cached() == 1
    assert match("/comet/missing") is not None  # Comet's, whatever the name
    assert match.cached() == 2


def test_long_or_ever_new_paths_cost_no_memory_and_keep_comet_cached(match):
    hot = match("/comet")
    long_name = "a" * fastpath.MAX_CACHED_PATH
    for number in range(1100):
        assert match(f"/{number}{long_name}") is None  # misses
        assert match(f"/comet/{number}{long_name}") is not None  # too long
    assert match.cached() == 1
    assert match("/comet") is hot  # still the cached match


def test_the_cache_is_bounded_by_entries(match):
    for number in range(fastpath.MAX_CACHED_MATCHES + 10):
        match(f"/comet/r{number}")
    assert match.cached() == fastpath.MAX_CACHED_MATCHES


async def test_a_comet_path_too_long_to_cache_is_still_served(marked):
    name = "a" * fastpath.MAX_CACHED_PATH
    reply = await fast().get(f"/comet/{name}")
    assert reply.status_code == 404 and "x-middleware" not in reply.headers
