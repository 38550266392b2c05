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


def staff_client(client, *codenames: str):
    """``client`` signed in as a staff user with only these resource permissions."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    user = get_user_model().objects.create_user("staff", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="selector_app", codename__in=codenames
        )
    )
    client.force_login(user)
    return client


def post_publish_random(client, res: Resource, capture):
    with capture(execute=True):
        return client.post(
            "/admin/selector_app/resource/",
            {"action": "publish_random", "_selected_action": [res.pk]},
            follow=True,
        )


def test_a_view_only_staff_user_is_neither_offered_nor_allowed_the_action(
    client, db, django_capture_on_commit_callbacks
):
    viewer = staff_client(client, "view_resource")
    listing = viewer.get("/admin/selector_app/resource/")
    assert listing.status_code == 200 and ">res<" in listing.content.decode()
    assert "publish_random" not in listing.content.decode()
    res = Resource.objects.get(name="res")
    response = post_publish_random(viewer, res, django_capture_on_commit_callbacks)
    assert "Published new data" not in response.content.decode()
    res.refresh_from_db()
    assert res.sequence == 1  # nothing was published


def test_a_staff_user_who_may_change_resources_may_publish(
    client, db, django_capture_on_commit_callbacks, group_listener
):
    editor = staff_client(client, "view_resource", "change_resource")
    listing = editor.get("/admin/selector_app/resource/")
    assert 'value="publish_random"' in listing.content.decode()
    res = Resource.objects.get(name="res")
    response = post_publish_random(editor, res, django_capture_on_commit_callbacks)
    assert "Published new data to 1 resource(s)." in response.content.decode()
    res.refresh_from_db()
    assert res.sequence == 2
    assert group_listener()["sequence"] == 2


def test_a_host_site_is_neither_offered_nor_allowed_the_demos_action(
    admin_client, db, django_capture_on_commit_callbacks, selector_settings
):
    # Without ADMIN_RANDOM_PUBLISH (the demo sets it), random data could
    # overwrite a host site's real data: no action, and a forged post does
    # nothing.
    selector_settings(ADMIN_RANDOM_PUBLISH=False)
    listing = admin_client.get("/admin/selector_app/resource/")
    assert listing.status_code == 200 and ">res<" in listing.content.decode()
    assert "publish_random" not in listing.content.decode()
    res = Resource.objects.get(name="res")
    response = post_publish_random(
        admin_client, res, django_capture_on_commit_callbacks
    )
    assert "Published new data" not in response.content.decode()
    res.refresh_from_db()
    assert res.sequence == 1


def test_the_setting_is_off_by_default(settings):
    from selector_app.conf import get_config

    settings.SELECTOR_APP = {}
    assert get_config().ADMIN_RANDOM_PUBLISH is False
