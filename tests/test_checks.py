from __future__ import annotations

import pytest
from channels.security.websocket import AllowedHostsOriginValidator

from selector_app import checks
from selector_app.security import OriginValidator


def ids(messages) -> list[str]:
    return [message.id for message in messages]


def test_no_messages_for_the_demo_settings(settings):
    settings.DEBUG = True  # pytest-django turns it off; the demo runs with it on
    assert checks.check_settings() == []
    assert checks.check_channel_layer() == []
    assert checks.check_daphne_order() == []
    assert checks.check_origin_validator() == []


def test_e001_unknown_key_names_it_and_hints_the_valid_ones(settings):
    settings.SELECTOR_APP = {"LONG_POLL_TIMOUT": 5}
    [message] = checks.check_settings()
    assert message.id == "selector_app.E001"
    assert "LONG_POLL_TIMOUT" in message.msg
    assert "LONG_POLL_TIMEOUT" in message.hint


def test_e001_not_a_dict(settings):
    settings.SELECTOR_APP = ["EMBEDDED_UPDATER"]
    assert ids(checks.check_settings()) == ["selector_app.E001"]


def test_e002_no_channel_layer(settings):
    settings.CHANNEL_LAYERS = {}
    [message] = checks.check_channel_layer()
    assert message.id == "selector_app.E002"
    assert "InMemoryChannelLayer" in message.hint


def test_w001_in_memory_layer_without_debug(settings):
    settings.DEBUG = False
    assert ids(checks.check_channel_layer()) == ["selector_app.W001"]
    settings.DEBUG = True
    assert checks.check_channel_layer() == []


def test_e003_daphne_after_staticfiles(settings):
    apps = [app for app in settings.INSTALLED_APPS if app != "daphne"]
    settings.INSTALLED_APPS = [*apps, "daphne"]
    [message] = checks.check_daphne_order()
    assert message.id == "selector_app.E003"
    assert "top of INSTALLED_APPS" in message.hint


def test_manage_py_check_reports_a_misspelled_key(settings):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    settings.SELECTOR_APP = {"RESYNC_INTERVALL": 1}
    with pytest.raises(SystemCheckError, match=r"selector_app\.E001"):
        call_command("check")


def _websocket_router(app):
    from channels.routing import ProtocolTypeRouter

    return ProtocolTypeRouter({"http": app, "websocket": app})


async def _asgi_app(scope, receive, send):
    pass


#: An ASGI application whose WebSocket routes accept any origin.
unguarded_application = _websocket_router(_asgi_app)


def test_w002_websocket_routes_without_an_origin_validator(settings):
    assert checks.check_origin_validator() == []  # the demo's asgi.py has one
    settings.ASGI_APPLICATION = "tests.test_checks.unguarded_application"
    [message] = checks.check_origin_validator()
    assert message.id == "selector_app.W002"
    assert "AllowedHostsOriginValidator" in message.hint


@pytest.mark.parametrize(
    "path", [None, "", "tests.test_checks._asgi_app", "tests.nowhere.application"]
)
def test_w002_is_silent_without_a_protocol_type_router(settings, path):
    settings.ASGI_APPLICATION = path
    assert checks.check_origin_validator() == []


def _guarded(validator):
    """A router whose WebSocket routes ``validator`` guards, wrapped as the
    host site wraps it (static files, the Comet fast path)."""
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    from selector_app.fastpath import CometFastPath

    return ASGIStaticFilesHandler(
        CometFastPath(_websocket_router(validator(_asgi_app)))
    )


guarded_by_the_app = _guarded(OriginValidator)
guarded_by_channels = _guarded(AllowedHostsOriginValidator)
wrapped_unguarded = _guarded(lambda app: app)


@pytest.mark.parametrize("name", ["guarded_by_the_app", "guarded_by_channels"])
def test_w002_recognises_the_apps_validator_and_channels_in_wrappers(settings, name):
    settings.ASGI_APPLICATION = f"tests.test_checks.{name}"
    assert checks.check_origin_validator() == []
    settings.ASGI_APPLICATION = "tests.test_checks.wrapped_unguarded"
    assert ids(checks.check_origin_validator()) == ["selector_app.W002"]


#: Not a function.
NOT_A_HOOK = {"res"}


def can_read(user, name):
    return True


def reads_nothing(user):
    return True


@pytest.mark.parametrize(
    ("hook", "problem"),
    [
        ("tests.test_checks.no_such_hook", "does not import"),
        ("tests.nowhere.can_read", "does not import"),
        ("tests.test_checks.NOT_A_HOOK", "not a function"),
        ("tests.test_checks.reads_nothing", "cannot be called as can_read"),
        (42, "must be a dotted path"),
    ],
)
def test_e004_a_hook_that_does_not_import_or_does_not_fit(settings, hook, problem):
    settings.SELECTOR_APP = {"AUTHORIZE": hook}
    [message] = checks.check_authorize()
    assert message.id == "selector_app.E004"
    assert problem in message.msg and "AUTHORIZE" in message.msg
    assert "can_read(user, name)" in message.hint


def test_e004_is_silent_for_a_fitting_hook_or_none(settings):
    settings.SELECTOR_APP = {"AUTHORIZE": "tests.test_checks.can_read"}
    assert checks.check_authorize() == []
    settings.SELECTOR_APP = {"AUTHORIZE": "tests.test_access.acan_read"}
    assert checks.check_authorize() == []
    settings.SELECTOR_APP = {}
    assert checks.check_authorize() == []


def test_e004_the_hook_needs_django_contrib_auth(settings):
    settings.SELECTOR_APP = {"AUTHORIZE": "tests.test_checks.can_read"}
    settings.INSTALLED_APPS = [
        app for app in settings.INSTALLED_APPS if app != "django.contrib.auth"
    ]
    [message] = checks.check_authorize()
    assert "django.contrib.auth" in message.msg


def test_metrics_checks_are_silent_for_the_demo_and_when_off(settings):
    assert checks.check_metrics() == []  # the demo: on, loopback, a permission
    settings.SELECTOR_APP = {"METRICS": False}
    assert checks.check_metrics() == []


def test_e005_metrics_on_without_prometheus_client(settings, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "prometheus_client" else real(name, *a),
    )
    settings.SELECTOR_APP = {"METRICS": True, "METRICS_NETWORKS": ["::1"]}
    [message] = checks.check_metrics()
    assert message.id == "selector_app.E005" and "[metrics]" in message.hint


def test_e006_a_network_that_is_not_one(settings):
    settings.SELECTOR_APP = {"METRICS": True, "METRICS_NETWORKS": ["10.0.0.0/33"]}
    [message] = checks.check_metrics()
    assert message.id == "selector_app.E006" and "10.0.0.0/33" in message.msg


def test_w003_metrics_nobody_may_read(settings):
    settings.SELECTOR_APP = {"METRICS": True}
    assert ids(checks.check_metrics()) == ["selector_app.W003"]
