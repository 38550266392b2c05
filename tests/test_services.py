from __future__ import annotations

import asyncio
import logging

import pytest
from channels.layers import get_channel_layer
from django.db import transaction

from selector_app import services
from selector_app.models import Resource
from selector_app.signals import resource_published


@pytest.fixture
def joined_layer():
    """A channel in the app's group, as every server process's hub has."""
    from asgiref.sync import async_to_sync

    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)("selector_app", channel)

    def receive() -> dict:
        return async_to_sync(layer.receive)(channel)

    return receive


def test_the_demos_migration_creates_the_demo_resource(db):
    # realtime_site.demo's migration; selector_app's own insert no rows.
    res = Resource.objects.get(name="res")
    assert res.sequence == 1
    assert len(res.data) == 1024
    assert all(0x21 <= ord(ch) <= 0x7E for ch in res.data)


def test_random_data_is_printable_without_spaces():
    data = services.random_data(5000)
    assert len(data) == 5000
    assert set(data) <= set(services.PRINTABLE)
    assert " " not in data and "~" in services.PRINTABLE and "!" in services.PRINTABLE


def test_publish_increments_the_sequence_and_rings_after_commit(
    db, django_capture_on_commit_callbacks, joined_layer
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        snapshot = services.resource_publish(name="res", data="hello world")
    assert len(callbacks) == 1
    assert (snapshot.sequence, snapshot.message) == (2, "2 hello world")
    assert Resource.objects.get(name="res").sequence == 2
    message = joined_layer()
    # The publish time travels with the version: the row's updated_at.
    published_at = message.pop("published_at")
    assert published_at == Resource.objects.get(name="res").updated_at.timestamp()
    assert message == {
        "type": "resource.published",
        "name": "res",
        "sequence": 2,
        "data": "hello world",
    }


def test_publish_inside_a_rolled_back_transaction_rings_nothing(
    db, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        services.resource_publish(name="res", data="never")
        raise RuntimeError("roll back")
    assert callbacks == []
    assert Resource.objects.get(name="res").sequence == 1


def test_publish_to_an_unknown_resource_says_how_to_create_it(db):
    with pytest.raises(Resource.DoesNotExist, match="resource_create"):
        services.resource_publish(name="nope", data="x")


def test_publish_rejects_non_text_data(db):
    with pytest.raises(TypeError, match="must be str"):
        services.resource_publish(name="res", data=b"bytes")  # type: ignore[arg-type]


def test_create_and_publish_random(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        created = services.resource_create(name="other", data="x")
        snapshot = services.resource_publish_random(name="other", length=10)
    assert created.sequence == 1
    assert snapshot.sequence == 2 and len(snapshot.data) == 10


def test_create_validates_the_name(db):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        services.resource_create(name="not a slug")


def test_published_signal_is_sent_once_after_commit(
    db, django_capture_on_commit_callbacks
):
    seen = []

    def receiver(sender, **kwargs):
        seen.append((sender, kwargs["name"], kwargs["sequence"], kwargs["data"]))

    resource_published.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            services.resource_publish(name="res", data="d")
            assert seen == []  # not before commit
        for callback in callbacks:
            callback()
    finally:
        resource_published.disconnect(receiver)
    assert seen == [(Resource, "res", 2, "d")]


def test_a_layer_failure_is_logged_not_raised(
    db, django_capture_on_commit_callbacks, monkeypatch, caplog
):
    layer = get_channel_layer()

    async def broken(*args, **kwargs):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(layer, "group_send", broken)
    with django_capture_on_commit_callbacks(execute=True):
        snapshot = services.resource_publish(name="res", data="kept")
    assert Resource.objects.get(name="res").data == "kept"
    assert snapshot.sequence == 2
    assert "next re-read" in caplog.text


def test_an_announcement_to_a_layer_that_never_answers_gives_up_and_logs_once(
    db, django_capture_on_commit_callbacks, monkeypatch, caplog, selector_settings
):
    """A black-holed Redis must not hang an admin save after its commit."""
    selector_settings(ANNOUNCE_TIMEOUT=0.05)
    layer = get_channel_layer()
    real = layer.group_send

    async def black_hole(*args, **kwargs):
        await asyncio.Event().wait()  # redis-py with socket_timeout=None

    monkeypatch.setattr(layer, "group_send", black_hole)
    caplog.set_level(logging.DEBUG, "selector_app.services")
    for data in ("one", "two", "three"):
        with django_capture_on_commit_callbacks(execute=True):
            services.resource_publish(name="res", data=data)  # bounded by pytest
    assert Resource.objects.get(name="res").sequence == 4
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "res #2" in warnings[0].getMessage()
    assert "TimeoutError" in warnings[0].getMessage()
    monkeypatch.setattr(layer, "group_send", real)
    with django_capture_on_commit_callbacks(execute=True):
        services.resource_publish(name="res", data="back")
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert infos == [infos[0]] and "The channel layer answers again" in infos[0]
    assert "(3 failed attempts)" in infos[0]


@pytest.mark.usefixtures("res")
async def test_async_publish_rings_the_layer():
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add("selector_app", channel)
    snapshot = await services.aresource_publish(name="res", data="async")
    assert snapshot.sequence == 2
    async with asyncio.timeout(5):
        message = await layer.receive(channel)
    assert message["sequence"] == 2 and message["data"] == "async"


def test_missing_channel_layer_names_the_setting(selector_settings, db):
    from django.core.exceptions import ImproperlyConfigured

    from selector_app.layers import channel_layer

    selector_settings(CHANNEL_LAYER="missing")
    with pytest.raises(ImproperlyConfigured, match="no 'missing' layer"):
        channel_layer()
