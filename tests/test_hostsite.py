"""The app embedded in an existing site (tests/hostsite) under /live/.

Every step of docs/embedding.md is in that project; these tests drive it
through a real Daphne process with real HTTP and WebSocket clients, and its
AUTHORIZE hook through real Daphne and Uvicorn processes, with Comet on
Django's path and on the fast path.
"""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.support.server import SERVERS, ServerProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]


def parse(message: str) -> tuple[int, str]:
    sequence, data = message.split(" ", 1)
    return int(sequence), data


async def test_the_page_lives_under_the_prefix_in_the_hosts_base_template(
    host_server,
):
    async with httpx.AsyncClient(base_url=host_server.url) as http:
        page = (await http.get("/live/")).text
        assert 'id="host-nav"' in page  # the host's own base template
        assert 'data-url="/live/comet"' in page
        assert 'data-path="/live/websocket"' in page
        assert 'data-path="/live/bidirectional"' in page
        script = re.search(r'src="([^"]+live\.js)"', page).group(1)
        assert script == "/assets/selector_app/live.js"  # the host's STATIC_URL
        assert (await http.get(script)).status_code == 200
        assert page.count("live.js") == 1
        assert (await http.get("/comet?seq=0")).status_code == 404  # not mounted


async def test_comet_under_the_prefix(host_server):
    async with httpx.AsyncClient(base_url=host_server.url, timeout=10) as http:
        first = await http.get("/live/comet?seq=0")
        assert first.status_code == 200
        sequence, data = parse(first.text)
        assert len(data) == 1024
        async with asyncio.timeout(5):
            held = await http.get(f"/live/comet?seq={sequence}")
        assert parse(held.text)[0] > sequence
        assert (await http.get("/live/comet?seq=bad")).status_code == 400


async def test_sockets_under_the_prefix_beside_the_hosts_own(host_server):
    base, origin = host_server.ws_url, host_server.origin
    async with asyncio.timeout(10):
        async with connect(f"{base}/live/websocket", origin=origin) as ws:
            first, second = parse(await ws.recv()), parse(await ws.recv())
        assert second[0] > first[0]
        async with connect(f"{base}/live/bidirectional", origin=origin) as ws:
            await ws.send("straße")
            assert await ws.recv() == "you said: STRASSE"
            assert await ws.recv() == "server tick #1"
        async with connect(f"{base}/ws/ping", origin=origin) as ws:
            await ws.send("ping")
            assert await ws.recv() == "pong anonymous"


async def test_a_socket_path_no_route_matches_is_closed_4404(host_server):
    base, origin = host_server.ws_url, host_server.origin
    for path in ("/live/nowhere", "/live/websocket/a/b", "/nowhere"):
        async with asyncio.timeout(10), connect(base + path, origin=origin) as ws:
            with pytest.raises(ConnectionClosed):
                await ws.recv()
        assert ws.close_code == 4404, path
    assert "Traceback" not in host_server.log_path.read_text()


async def test_a_live_panel_in_the_hosts_own_page_and_its_own_model(host_server):
    async with httpx.AsyncClient(base_url=host_server.url, timeout=10) as http:
        home = (await http.get("/")).text
        assert 'data-live="websocket" data-path="/live/websocket"' in home
        assert 'data-live="comet" data-url="/live/comet/notes"' in home
        assert "/assets/selector_app/live.css" in home
        before = parse((await http.get("/live/comet/notes?seq=0")).text)[0]
        held = asyncio.create_task(http.get(f"/live/comet/notes?seq={before}"))
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', home)
        added = await http.post(
            "/notes/add",
            data={"text": "hello from the host", "csrfmiddlewaretoken": token[1]},
        )
        assert added.status_code == 302
        async with asyncio.timeout(5):
            answer = await held
    assert parse(answer.text) == (before + 1, "hello from the host")


async def test_the_hosts_admin_shows_resources(host_server):
    async with httpx.AsyncClient(base_url=host_server.url, timeout=10) as http:
        login = await http.get("/admin/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text)
        await http.post(
            "/admin/login/?next=/admin/",
            data={
                "username": "admin",
                "password": "admin-pass",
                "csrfmiddlewaretoken": token[1],
            },
        )
        listing = await http.get("/admin/selector_app/resource/")
    assert listing.status_code == 200
    assert ">notes<" in listing.text and ">res<" in listing.text
    # The demo's action is not offered: the site did not ask for it
    # (SELECTOR_APP["ADMIN_RANDOM_PUBLISH"]).
    assert "publish_random" not in listing.text
    assert "Publish new random data" not in listing.text


def test_the_hosts_migrations_create_only_the_hosts_resources(tmp_path):
    from tests.conftest import hostsite_env
    from tests.support.server import manage

    env = hostsite_env(tmp_path)
    names = manage(
        "shell",
        "-c",
        "from selector_app.models import Resource; "
        "print(sorted(Resource.objects.values_list('name', flat=True)))",
        env=env,
    )
    # The host's own (tests/hostsite/notes/migrations), no demo 'res'.
    assert names.strip().splitlines()[-1] == "['notes', 'staff-notes']"


# Who may read what, on every server and both Comet paths ----------------------

REFUSAL = "You are not allowed to read this resource."


@pytest.fixture(scope="module")
def hostsite_database(tmp_path_factory):
    from tests.conftest import hostsite_env

    directory = tmp_path_factory.mktemp("hostsite-authorize")
    return directory, hostsite_env(directory)


@pytest.fixture(
    scope="module",
    params=[(server, comet) for server in SERVERS for comet in ("django", "fast")],
    ids="-".join,
)
def authorizing_host(request, hostsite_database):
    """The host site (AUTHORIZE: staff-only ``staff-notes``) on a real Daphne or
    Uvicorn process, with Comet on Django's path or the fast path."""
    server_name, comet = request.param
    directory, env = hostsite_database
    env = {**env, "HOSTSITE_COMET_FAST_PATH": "1" if comet == "fast" else "0"}
    server = ServerProcess(
        env,
        directory / f"{server_name}-{comet}.log",
        application="tests.hostsite.asgi:application",
        server=server_name,
    )
    with server:
        yield server, comet


async def sign_in(http: httpx.AsyncClient) -> str:
    """Sign ``http`` in as the staff user ``admin``; its session cookie."""
    login = await http.get("/admin/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text)
    answer = await http.post(
        "/admin/login/?next=/admin/",
        data={
            "username": "admin",
            "password": "admin-pass",
            "csrfmiddlewaretoken": token[1],
        },
    )
    assert answer.status_code == 302, answer.text[:500]
    return http.cookies["sessionid"]


async def test_comet_refuses_anonymous_clients_alike_for_unknown_names(
    authorizing_host,
):
    server, comet = authorizing_host
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        public = await http.get("/live/comet/notes?seq=0")
        assert public.status_code == 200
        # Which path answered: only Django's runs XFrameOptionsMiddleware.
        assert ("x-frame-options" in public.headers) == (comet == "django")
        known = await http.get("/live/comet/staff-notes?seq=0")
        unknown = await http.get("/live/comet/no-such-notes?seq=0")
    assert known.status_code == unknown.status_code == 403
    assert known.text == unknown.text == f"{REFUSAL}\n"


async def test_comet_serves_the_staff_user_it_allows(authorizing_host):
    server, _ = authorizing_host
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        await sign_in(http)
        allowed = await http.get("/live/comet/staff-notes?seq=0")
        assert (allowed.status_code, allowed.text) == (200, "1 for staff")
        # Allowed to ask about any name: an unknown one is now a plain 404.
        assert (await http.get("/live/comet/no-such-notes")).status_code == 404


async def test_event_streams_refuse_alike_and_serve_the_staff_user(authorizing_host):
    """The hook on /events, through Django's handler and the fast path."""
    server, _ = authorizing_host
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        known = await http.get("/live/events/staff-notes")
        unknown = await http.get("/live/events/no-such-notes")
        assert known.status_code == unknown.status_code == 403
        assert known.text == unknown.text == f"{REFUSAL}\n"
        await sign_in(http)
        async with (
            asyncio.timeout(10),
            http.stream("GET", "/live/events/staff-notes") as stream,
        ):
            assert stream.status_code == 200
            lines = []
            async for line in stream.aiter_lines():
                lines.append(line)
                if line.startswith("data: "):
                    break
    assert lines == ["retry: 2000", "", "id: 1", "data: 1 for staff"]


async def test_the_push_socket_closes_4403_or_serves_the_staff_user(
    authorizing_host,
):
    server, _ = authorizing_host
    base, origin = f"{server.ws_url}/live/websocket", server.origin
    # Both servers send the reason (under Daphne through its protocol object).
    reason = REFUSAL
    async with asyncio.timeout(10):
        for name in ("staff-notes", "no-such-notes"):
            async with connect(f"{base}/{name}", origin=origin) as ws:
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.recv()
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
                4403,
                reason,
            )
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            session = await sign_in(http)
        cookie = {"Cookie": f"sessionid={session}"}
        async with connect(
            f"{base}/staff-notes", origin=origin, additional_headers=cookie
        ) as ws:
            assert await ws.recv() == "1 for staff"
