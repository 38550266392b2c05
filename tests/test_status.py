"""The deployment's live state: heartbeats, selector_status and the admin page."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.utils import timezone

from selector_app import status
from selector_app.models import Heartbeat

STATUS_URL = "/admin/selector_app/resource/status/"


def beat(id: str, role: str = "server", every: float = 5.0, **fields) -> None:
    status.heartbeat_save(
        id=id,
        role=role,
        host="web-1",
        pid=100 + len(id),
        software="uvicorn 0.38.0" if role == "server" else "runupdater",
        started_at=timezone.now() - timedelta(minutes=3),
        every=every,
        **fields,
    )


@pytest.fixture
def deployment(db):
    beat(
        "a",
        details={
            "connections": {"push": 3, "comet": 1},
            "held_polls": 1,
            "versions": {"res": 7},
            "lag_p50": 0.004,
            "lag_p99": 0.03,
            "deliveries": 10,
        },
    )
    beat("bb", details={})
    beat(
        "leader",
        role="updater",
        resource="res",
        state="holding",
        state_since=timezone.now() - timedelta(seconds=30),
    )
    beat(
        "standby",
        role="updater",
        resource="res",
        state="standby",
        state_since=timezone.now(),
    )


def test_live_processes_and_lease_holders(deployment):
    state = status.deployment_status()
    assert len(state["processes"]) == 2
    first = next(p for p in state["processes"] if p["pid"] == 101)
    assert first["connections"] == {"push": 3, "comet": 1}
    assert (first["lag_p50_seconds"], first["lag_p99_seconds"]) == (0.004, 0.03)
    assert 179 < first["uptime_seconds"] < 240
    [res] = state["resources"]
    assert res["holder"]["pid"] == 106 and res["holder"]["state"] == "holding"
    assert [s["pid"] for s in res["standbys"]] == [107]


def test_an_expired_process_is_gone_and_a_stopped_one_at_once(deployment):
    Heartbeat.objects.filter(id="a").update(expires_at=timezone.now())
    status.heartbeat_delete(id="bb")
    assert status.deployment_status()["processes"] == []
    # 2.5 intervals of life per beat: gone within 3 of the last one.
    row = Heartbeat.objects.get(id="leader")
    assert row.expires_at - row.beat_at == timedelta(seconds=12.5)


def test_a_dead_holder_overlapping_its_successor_is_not_the_holder(db):
    beat(
        "old",
        role="updater",
        resource="res",
        state="holding",
        state_since=timezone.now() - timedelta(minutes=5),
    )
    beat(
        "new",
        role="updater",
        resource="res",
        state="holding",
        state_since=timezone.now(),
    )
    [res] = status.deployment_status()["resources"]
    assert res["holder"]["pid"] == 103 and [s["pid"] for s in res["standbys"]] == [103]


def test_the_command_prints_tables_and_json(deployment):
    out = StringIO()
    call_command("selector_status", stdout=out)
    text = out.getvalue()
    assert "Server processes (2):" in text and "uvicorn 0.38.0" in text
    assert "3 push" in text and "res #7" in text and "4.0 ms" in text
    assert "web-1:106 since" in text and "web-1:107 (standby)" in text
    out = StringIO()
    call_command("selector_status", "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert {p["pid"] for p in data["processes"]} == {101, 102}
    assert data["resources"][0]["holder"]["host"] == "web-1"


def test_the_admin_page_shows_the_same_and_is_linked(deployment, admin_client):
    listing = admin_client.get("/admin/selector_app/resource/").content.decode()
    assert f'href="{STATUS_URL}"' in listing
    page = admin_client.get(STATUS_URL).content.decode()
    assert "Server processes (2)" in page and "uvicorn 0.38.0" in page
    assert "web-1:106 since" in page and "4.0 ms" in page


def test_the_admin_page_needs_the_view_permission(deployment, client):
    staff = User.objects.create_user("staff", password="pw", is_staff=True)
    client.force_login(staff)
    assert client.get(STATUS_URL).status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_resource"))
    assert client.get(STATUS_URL).status_code == 200
    client.logout()
    assert client.get(STATUS_URL).status_code == 302  # to the login page


def test_a_server_with_the_embedded_updater_is_the_holder(db):
    beat("demo", details={"embedded_updater": "res"})
    [res] = status.deployment_status()["resources"]
    assert res["holder"]["state"] == "embedded" and res["holder"]["pid"] == 104
    assert (
        "web-1:104 (embedded updater) since"
        in status.resource_rows(status.deployment_status())[0][3]
    )


def test_with_many_resources_the_status_lists_a_bounded_number(db):
    """A site with thousands of resources: the published one first, then
    the first by name, the total, and each process's held count."""
    from selector_app.models import Resource

    Resource.objects.bulk_create(
        Resource(name=f"r{index:04d}", data="x") for index in range(150)
    )
    Resource.objects.create(name="zz-published", data="y")
    beat("p", details={"versions": {"r0001": 3}, "held": 4000})
    beat("u", role="updater", resource="zz-published", state="holding")
    state = status.deployment_status()
    names = [resource["name"] for resource in state["resources"]]
    assert len(names) == status.RESOURCES_SHOWN and names[0] == "zz-published"
    total = Resource.objects.count()  # with the demo's own `res`
    assert state["resource_count"] == total > status.RESOURCES_SHOWN
    [process] = status.process_rows(state)
    assert "r0001 #3, and 3999 more" in process
    out = StringIO()
    call_command("selector_status", stdout=out)
    assert f"Resources (100 of {total}):" in out.getvalue()
