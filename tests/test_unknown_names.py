"""A flood of made-up resource names: the same name costs one database query
until the next re-read, a new name one indexed look-up, and neither is held
in memory; on Comet (both paths) and on the push socket."""

from __future__ import annotations

import secrets

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.core.asgi import get_asgi_application
from django.db.backends import utils

from selector_app import services
from selector_app.fastpath import CometFastPath
from selector_app.routing import websocket_urlpatterns
from tests.support.asgi import AsgiClient
from tests.support.waiting import until


@pytest.fixture
def quiet(selector_settings):
    """No periodic re-read during the test: every query counted is a lookup."""
    selector_settings(RESYNC_INTERVAL=3600)


@pytest.fixture
def queries(monkeypatch) -> list[str]:
    """Every SQL statement run from now on, in any thread (Django's
    CaptureQueriesContext sees only the calling thread's connection)."""
    seen: list[str] = []
    real = utils.CursorWrapper._execute_with_wrappers

    def counting(self, sql, *args, **kwargs):
        seen.append(sql)
        return real(self, sql, *args, **kwargs)

    monkeypatch.setattr(utils.CursorWrapper, "_execute_with_wrappers", counting)
    return seen


def lookups(queries: list[str]) -> list[str]:
    return [sql for sql in queries if "selector_app_resource" in sql]


# Django's handler costs ~8 ms a request in process: fewer there, same view.
@pytest.mark.parametrize(("path", "count"), [("fast_path", 1000), ("django", 100)])
async def test_a_thousand_requests_for_an_unknown_name_make_one_query(
    quiet, res, hub, queries, path, count
):
    app = get_asgi_application()
    web = AsgiClient(app if path == "django" else CometFastPath(app))
    made_up = secrets.token_hex(8)
    for _ in range(count):
        reply = await web.get(f"/comet/{made_up}?seq=0")
        assert reply.status_code == 404
    assert len(lookups(queries)) == 1
    for _ in range(10):  # made-up names: one look-up each, nothing kept
        assert (await web.get(f"/comet/{secrets.token_hex(8)}")).status_code == 404
    assert len(lookups(queries)) == 11 and len(queries) == 11
    assert hub.sequences() == {}
    # Created afterwards, another way: the publish service's layer message.
    await sync_to_async(services.resource_create)(name="late", data="x")
    await until(lambda: "late" not in hub._absent)
    assert (await web.get("/comet/late?seq=0")).content == b"1 x"


async def test_an_unknown_name_on_the_push_socket_makes_one_query(
    quiet, res, hub, queries
):
    made_up = secrets.token_hex(8)
    for _ in range(100):
        comm = WebsocketCommunicator(
            URLRouter(websocket_urlpatterns), f"/websocket/{made_up}"
        )
        await comm.connect()
        closed = await comm.receive_output(timeout=5)
        assert closed["code"] == 4404
        await comm.disconnect()
    assert len(lookups(queries)) == len(queries) == 1
