from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from selector_app.models import Resource


@pytest.fixture
def group_listener():
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)("selector_app", channel)
    return lambda: async_to_sync(layer.receive)(channel)


def test_the_list_shows_name_sequence_length_and_searches(admin_client, db):
    response = admin_client.get("/admin/selector_app/resource/", {"q": "res"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "res" in page and ">1024<" in page and "updated" in page.lower()
    assert ">0 resources<" not in page
    empty = admin_client.get("/admin/selector_app/resource/", {"q": "zzz"})
    assert "0 resources" in empty.content.decode()


def test_saving_edited_data_publishes_it(
    admin_client, db, django_capture_on_commit_callbacks, group_listener
):
    res = Resource.objects.get(name="res")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            f"/admin/selector_app/resource/{res.pk}/change/",
            # A sequence in the form is ignored: it is read-only.
            {"data": "edited in the admin", "sequence": "999"},
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    res.refresh_from_db()
    assert (res.sequence, res.data) == (2, "edited in the admin")
    message = group_listener()
    assert (message["sequence"], message["data"]) == (2, "edited in the admin")


def test_adding_a_resource_announces_it(
    admin_client, db, django_capture_on_commit_callbacks, group_listener
):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/selector_app/resource/add/", {"name": "news", "data": "first"}
        )
    assert response.status_code == 302
    assert Resource.objects.get(name="news").sequence == 1
    assert group_listener()["name"] == "news"


def test_the_name_is_fixed_once_created(admin_client, db):
    res = Resource.objects.get(name="res")
    admin_client.post(
        f"/admin/selector_app/resource/{res.pk}/change/",
        {"name": "renamed", "data": "x"},
    )
    assert Resource.objects.filter(name="res").exists()


def test_the_publish_random_action(
    admin_client, db, django_capture_on_commit_callbacks, group_listener
):
    res = Resource.objects.get(name="res")
    old = res.data
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/selector_app/resource/",
            {"action": "publish_random", "_selected_action": [res.pk]},
            follow=True,
        )
    assert "Published new data to 1 resource(s)." in response.content.decode()
    res.refresh_from_db()
    assert res.sequence == 2 and res.data != old and len(res.data) == 1024
    assert group_listener()["sequence"] == 2
