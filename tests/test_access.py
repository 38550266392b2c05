"""Who may read what: the AUTHORIZE hook on Comet (both paths) and the push
socket, in process. The same against real servers is in test_hostsite."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.asgi import get_asgi_application

from selector_app import access, services
from selector_app.fastpath import CometFastPath
from selector_app.protocol import Forbidden
from selector_app.routing import websocket_urlpatterns
from tests.support.asgi import AsgiClient
from tests.support.waiting import until

pytestmark = pytest.mark.usefixtures("res", "hub")

#: Every (user, name) the hooks below were asked about.
asked: list[tuple[object, str]] = []

REASON = "You are not allowed to read this resource."


def can_read(user, name):
    """Anyone reads ``res``; signed-in users read everything."""
    asked.append((user, name))
    return name == "res" or user.is_authenticated


async def acan_read(user, name):
    return can_read(user, name)


def forgets_to_return(user, name):
    asked.append((user, name))


@pytest.fixture(autouse=True)
def _asked():
    asked.clear()


@pytest.fixture(params=["sync", "async"])
def hook(request, selector_settings) -> str:
    path = f"tests.test_access.{'can_read' if request.param == 'sync' else 'acan_read'}"
    selector_settings(AUTHORIZE=path)
    return path


@pytest.fixture
async def secret():
    await sync_to_async(services.resource_create)(name="secret", data="s")


@pytest.fixture(params=["django", "fast_path"])
def web(request) -> AsgiClient:
    app = get_asgi_application()
    return AsgiClient(app if request.param == "django" else CometFastPath(app))


def signed_in_cookie() -> list[tuple[bytes, bytes]]:
    """A session of user ``ann``, as the headers of a request that sends it."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.create_user("ann"))
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    return [
        (b"host", b"testserver"),
        (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()),
    ]


async def test_without_a_hook_no_user_is_loaded(web, monkeypatch):
    async def fail(request):
        raise AssertionError("the user was loaded")

    monkeypatch.setattr(access, "request_user", fail)
    assert (await web.get("/comet?seq=0")).status_code == 200


async def test_an_anonymous_client_is_refused_with_403(web, hook, secret):
    reply = await web.get("/comet/secret?seq=0")
    assert reply.status_code == 403
    assert reply.content.decode() == f"{REASON}\n"
    assert reply["Content-Type"] == "text/plain; charset=utf-8"
    [(user, name)] = asked
    assert isinstance(user, AnonymousUser) and name == "secret"
    assert (await web.get("/comet?seq=0")).status_code == 200  # res, by default


async def test_an_unknown_name_is_refused_like_a_known_one(web, hook, secret):
    known = await web.get("/comet/secret?seq=0")
    unknown = await web.get("/comet/no-such-thing?seq=0")
    assert (unknown.status_code, unknown.content) == (known.status_code, known.content)
    assert unknown.headers == known.headers


async def test_a_signed_in_user_is_asked_about_and_allowed(web, hook, secret):
    headers = await sync_to_async(signed_in_cookie)()
    reply = await web.get("/comet/secret?seq=0", headers=headers)
    assert (reply.status_code, reply.content) == (200, b"1 s")
    [(user, _)] = asked
    assert user.get_username() == "ann"
    # Allowed to read any name: now a 404 may say that there is no such one.
    assert (await web.get("/comet/nope?seq=0", headers=headers)).status_code == 404


async def test_a_falsy_answer_refuses(web, selector_settings):
    selector_settings(AUTHORIZE="tests.test_access.forgets_to_return")
    assert (await web.get("/comet?seq=0")).status_code == 403
    assert len(asked) == 1


async def test_the_hook_is_asked_once_per_request_even_when_it_is_held(web, hook, hub):
    held = asyncio.create_task(web.get("/comet?seq=1"))
    await until(lambda: hub.waiting_polls == 1)
    await services.aresource_publish(name="res", data="two")
    async with asyncio.timeout(5):
        assert (await held).content == b"2 two"
    assert [name for _, name in asked] == ["res"]


# The push socket ---------------------------------------------------------------


def socket(path: str, user=None, headers=()) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path, headers)
    if user is not None:
        comm.scope["user"] = user
    return comm


async def closed_with(comm: WebsocketCommunicator) -> tuple[int, str]:
    connected, _ = await comm.connect()
    assert connected  # accepted first, so that the close code reaches the client
    message = await comm.receive_output(timeout=5)
    assert message["type"] == "websocket.close"
    await comm.disconnect()
    return message["code"], message["reason"]


async def test_a_refused_socket_closes_with_4403_alike_for_unknown_names(hook, secret):
    known = await closed_with(socket("/websocket/secret"))
    unknown = await closed_with(socket("/websocket/no-such-thing"))
    assert known == unknown == (4403, REASON)
    assert [type(user) for user, _ in asked] == [AnonymousUser, AnonymousUser]


async def test_the_sockets_user_comes_from_the_scope(hook, secret):
    from django.contrib.auth import get_user_model

    user = await get_user_model().objects.acreate_user("bob")
    comm = socket("/websocket/secret", user=user)
    await comm.connect()
    assert await comm.receive_from(timeout=5) == "1 s"
    await comm.disconnect()
    assert asked == [(user, "secret")]


async def test_auth_middleware_stack_gives_the_socket_its_session_user(hook, secret):
    headers = await sync_to_async(signed_in_cookie)()
    comm = WebsocketCommunicator(
        AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
        "/websocket/secret",
        headers,
    )
    await comm.connect()
    assert await comm.receive_from(timeout=5) == "1 s"
    await comm.disconnect()
    assert asked[0][0].get_username() == "ann"


# The function every transport calls -------------------------------------------


async def test_authorize_raises_forbidden_with_the_protocols_codes(hook):
    with pytest.raises(Forbidden) as refused:
        await access.authorize(AnonymousUser(), "secret")
    assert (refused.value.status, refused.value.close_code) == (403, 4403)
    assert str(refused.value) == REASON
    await access.authorize(AnonymousUser(), "res")  # allowed: returns


def test_a_hook_that_does_not_import_names_the_setting(selector_settings):
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match=r"\['AUTHORIZE'\]"):
        access.import_hook("tests.test_access.nothing_here")


# The fast path's user -----------------------------------------------------------


async def test_the_fast_path_reads_no_session_without_a_hook():
    fast = CometFastPath(get_asgi_application())
    headers = await sync_to_async(signed_in_cookie)()
    assert (
        await AsgiClient(fast).get("/comet?seq=0", headers=headers)
    ).status_code == 200
    assert "identification" not in vars(fast)  # the middleware was never built


async def test_without_session_middleware_every_comet_client_is_anonymous(
    settings, hook
):
    settings.MIDDLEWARE = []
    headers = await sync_to_async(signed_in_cookie)()
    for app in (get_asgi_application(), CometFastPath(get_asgi_application())):
        reply = await AsgiClient(app).get("/comet/secret?seq=0", headers=headers)
        assert reply.status_code == 403
    assert [type(user) for user, _ in asked] == [AnonymousUser, AnonymousUser]
