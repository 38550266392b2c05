"""A missing extra is an error that names it, never a ModuleNotFoundError.

tests/test_packaging.py proves the same in virtual environments that really
lack the extras; these are the in-process unit tests of the rules.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from selector_app import extras, layers
from selector_app.layers import channel_layer, check_layer_backend

EXTRA = 'pip install "django-selector-app[redis]"'
REDIS_LAYER = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer"}}


@pytest.fixture
def no_channels_redis(monkeypatch):
    """channels_redis as if it were not installed (the dev venv has it)."""
    real = extras.installed
    monkeypatch.setattr(
        layers, "installed", lambda module: module != "channels_redis" and real(module)
    )


def test_the_error_names_the_feature_the_package_and_the_install_command():
    error = extras.missing_extra("channels_redis", feature="A channels_redis layer")
    assert isinstance(error, ImproperlyConfigured)
    assert str(error).startswith("A channels_redis layer needs the Python package")
    assert "'channels_redis'" in str(error) and str(error).endswith(EXTRA)
    assert (
        extras.install_command("daphne") == 'pip install "django-selector-app[daphne]"'
    )


def test_only_the_optional_module_itself_counts_as_missing():
    assert extras.is_missing(ModuleNotFoundError(name="redis"), "redis")
    assert extras.is_missing(ModuleNotFoundError(name="redis.asyncio"), "redis")
    # redis installed, but something it imports is not: a different bug.
    assert not extras.is_missing(ModuleNotFoundError(name="async_timeout"), "redis")


def test_check_names_the_extra_for_a_channels_redis_layer(settings, no_channels_redis):
    settings.CHANNEL_LAYERS = REDIS_LAYER
    [error] = check_layer_backend()
    assert error.id == "selector_app.E010" and EXTRA in error.hint


def test_check_is_quiet_when_the_backend_is_installed(settings):
    settings.CHANNEL_LAYERS = REDIS_LAYER
    assert check_layer_backend() == []
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "myproject.layers.Mine"}}
    assert check_layer_backend() == []  # not an extra of ours: Channels' error


def test_redis_channel_layer_settings_name_the_extra(no_channels_redis):
    with pytest.raises(ImproperlyConfigured, match=r"\[redis\]"):
        layers.redis_channel_layer("redis://127.0.0.1:6379/0")


def test_channel_layer_names_the_extra_when_the_backend_cannot_load(
    settings, no_channels_redis
):
    from channels.layers import channel_layers

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.nowhere.Layer"}}
    channel_layers.backends.clear()
    try:
        with pytest.raises(ImproperlyConfigured, match=r"\[redis\]"):
            channel_layer()
    finally:
        channel_layers.backends.clear()
