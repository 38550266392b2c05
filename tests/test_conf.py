from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from selector_app.conf import Config, get_config


def test_defaults_are_the_documented_ones(settings):
    settings.SELECTOR_APP = {}
    config = get_config()
    assert config == Config()
    assert (config.LONG_POLL_TIMEOUT, config.MAX_MESSAGE_SIZE) == (30.0, 65536)
    assert config.DEFAULT_RESOURCE == "res" and config.RESOURCE_LENGTH == 1024


def test_overrides_take_effect_when_the_setting_changes(settings):
    settings.SELECTOR_APP = {"LONG_POLL_TIMEOUT": 5}
    assert get_config().LONG_POLL_TIMEOUT == 5
    settings.SELECTOR_APP = {"LONG_POLL_TIMEOUT": 7}
    assert get_config().LONG_POLL_TIMEOUT == 7


def test_unknown_keys_are_rejected_by_name(settings):
    settings.SELECTOR_APP = {"TICK_INTERVALS": 1, "ZZZ": 2}
    with pytest.raises(
        ImproperlyConfigured, match="unknown key\\(s\\): TICK_INTERVALS, ZZZ"
    ):
        get_config()


def test_a_missing_setting_means_all_defaults(settings):
    del settings.SELECTOR_APP
    assert get_config() == Config()


def test_every_key_is_documented_with_its_default():
    from dataclasses import fields

    from tests.support.server import ROOT

    docs = (ROOT / "docs" / "settings.md").read_text()
    for field in fields(Config):
        assert f"| `{field.name}` |" in docs, f"{field.name} is not in docs/settings.md"
