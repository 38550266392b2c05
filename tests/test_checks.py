from __future__ import annotations

import pytest
from channels.security.websocket import AllowedHostsOriginValidator

from selector_app import checks
from selector_app.conf import Config
from selector_app.rules import RULES, SETTINGS_DOCS
from selector_app.security import OriginValidator


def ids(messages) -> list[str]:
    return [message.id for message in messages]


def test_no_messages_for_the_demo_settings(settings):
    settings.DEBUG = True  # pytest-django turns it off; the demo runs with it on
    assert checks.check_settings() == []
    assert checks.check_channel_layer() == []
    assert checks.check_daphne_order() == []
    assert checks.check_origin_validator() == []
    assert checks.check_base_template() == []
    assert checks.check_limits() == []


def test_e001_unknown_key_names_it_and_hints_the_valid_ones(settings):
    settings.SELECTOR_APP = {"LONG_POLL_TIMOUT": 5}
    [message] = checks.check_settings()
    assert message.id == "selector_app.E001"
    assert "LONG_POLL_TIMOUT" in message.msg
    assert "LONG_POLL_TIMEOUT" in message.hint


def test_e001_hints_point_to_the_settings_docs_online(settings):
    settings.SELECTOR_APP = {"LONG_POLL_TIMOUT": 5}
    [message] = checks.check_settings()
    assert SETTINGS_DOCS in message.hint and SETTINGS_DOCS.startswith("https://")


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
    [message] = checks.check_channel_layer()
    assert message.id == "selector_app.W001"
    # It names settings of a Django site, not the demo's environment.
    assert "REDIS_URL" not in message.hint
    assert "redis_channel_layer" in message.hint
    assert "SILENCED_SYSTEM_CHECKS" in message.hint
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


# Values: type and range (E005) ------------------------------------------------

#: For every key (but AUTHORIZE: E004) values a user might write by mistake.
WRONG = {
    "BASE_TEMPLATE": ["", None, 42],
    "DEFAULT_RESOURCE": ["", 1],
    "LONG_POLL_TIMEOUT": ["abc", 0, -1, True, None],
    "KEEP_ALIVE_INTERVAL": [0, -1, "15", None],
    "MAX_HELD_REQUESTS": [-5, 0, 1.5, "10", False],
    "RETRY_AFTER": [-1, "2", 2.5],
    "DRAIN_TIMEOUT": [-0.1, "5"],
    "RESYNC_INTERVAL": [0, "5"],
    "READ_TIMEOUT": [0, -5, "5"],
    "SNAPSHOT_CACHE": [-1, 1.5, "1000", None],
    "ANNOUNCE_TIMEOUT": [0, "1"],
    "CHANNEL_LAYER": ["", None],
    "GROUP": ["", "has spaces", "x" * 100, 5],
    "EMBEDDED_UPDATER": ["true", 1, None],
    "UPDATER_RESOURCE": ["", 7],
    "GRID_RESOURCES": ["a,b", ["a b"], [1], ["x"] * 101],
    "UPDATE_INTERVAL": [0, "1"],
    "RESOURCE_LENGTH": [0, -1, 10.0],
    "TICK_INTERVAL": [0, "1"],
    "MAX_MESSAGE_SIZE": [0, "64k"],
    "RECEIVE_FRAMES_PER_SECOND": [-1, "20"],
    "RECEIVE_FRAME_BURST": [0, 1.5],
    "RECEIVE_BYTES_PER_SECOND": [-1, None],
    "RECEIVE_BYTE_BURST": [0, "512k"],
    "MAX_UNSENT_BYTES": [-1, 1.0],
    "MAX_OPEN_SOCKETS": [-1, "10000"],
    "MAX_SELECT_RESOURCES": [0, "100", 1.5],
    "LOCK_TTL": [0, "2"],
    "LOCK_REDIS_URL": [None, "localhost:6379"],
    "GC_TUNING": ["0", 0],
    "GC_THRESHOLDS": [(1, 2), "50000,20,100", (1, 2, -3), (1.0, 2, 3)],
    "ALLOWED_ORIGINS": ["https://example.com", [1], {"a": 1}],
    "LAZY_AUTOBAHN_LOGS": ["off", 0],
    "EAGER_TWISTED_WRITES": ["on", 1],
    "REQUIRE_ORIGIN": ["yes", 1],
    "ADMIN_RANDOM_PUBLISH": ["True", 1],
    "METRICS": ["1", 1],
    "METRICS_NETWORKS": ["10.0.0.0/8", [8]],
    "METRICS_PERMISSION": ["", 5],
    "HEARTBEATS": ["no", 0],
}


def test_every_key_has_a_rule_and_wrong_values_to_test_it():
    keys = {name for name in Config.__dataclass_fields__} - {"AUTHORIZE"}
    assert set(RULES) == keys
    assert set(WRONG) == keys


@pytest.mark.parametrize("key", sorted(RULES))
def test_every_default_passes_its_rule(key):
    assert RULES[key].accepts(getattr(Config(), key)), key


@pytest.mark.parametrize(
    ("key", "value"), [(key, value) for key in WRONG for value in WRONG[key]]
)
def test_e005_names_the_key_the_value_and_what_it_accepts(settings, key, value):
    settings.SELECTOR_APP = {key: value}
    [message] = checks.check_settings()
    assert message.id == "selector_app.E005"
    assert f"SELECTOR_APP[{key!r}] = {value!r} ({type(value).__name__})" in (
        message.msg
    )
    assert RULES[key].expected in message.msg
    assert key in message.hint and SETTINGS_DOCS in message.hint


def test_e005_one_error_per_key_beside_e001(settings):
    settings.SELECTOR_APP = {
        "LONG_POLL_TIMEOUT": "abc",
        "MAX_HELD_REQUESTS": -5,
        "LONG_POLL_TIMOUT": 5,
    }
    messages = checks.check_settings()
    assert ids(messages) == ["selector_app.E001", *["selector_app.E005"] * 2]
    assert "['LONG_POLL_TIMEOUT'] = 'abc' (str)" in messages[1].msg
    assert "['MAX_HELD_REQUESTS'] = -5 (int) is not an int of at least 1" in (
        messages[2].msg
    )


def test_values_that_fit_pass(settings):
    settings.SELECTOR_APP = {
        "LONG_POLL_TIMEOUT": 25,
        "DRAIN_TIMEOUT": 0,
        "GC_THRESHOLDS": [700, 10, 10],
        "ALLOWED_ORIGINS": ["https://www.example.com"],
        "LOCK_REDIS_URL": "redis://127.0.0.1:6379/1",
        "MAX_OPEN_SOCKETS": 0,
        "RECEIVE_FRAMES_PER_SECOND": 0,
    }
    assert checks.check_settings() == []


def test_a_wrong_value_is_refused_when_the_app_reads_its_settings(settings):
    from django.core.exceptions import ImproperlyConfigured

    from selector_app.conf import get_config

    settings.SELECTOR_APP = {"LONG_POLL_TIMEOUT": "abc"}
    with pytest.raises(ImproperlyConfigured, match="LONG_POLL_TIMEOUT"):
        get_config()
    # The other checks leave it to E005 instead of failing on it.
    assert checks.check_channel_layer() == []
    assert checks.check_authorize() == []
    assert checks.check_limits() == []


@pytest.mark.parametrize(
    ("value", "shown"),
    [({"LONG_POLL_TIMEOUT": "abc"}, "'abc'"), ({"MAX_HELD_REQUESTS": -5}, "-5")],
)
def test_manage_py_check_fails_on_a_wrong_value(settings, value, shown):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    settings.SELECTOR_APP = value
    [key] = value
    with pytest.raises(SystemCheckError, match=r"selector_app\.E005") as raised:
        call_command("check")
    assert key in str(raised.value) and shown in str(raised.value)


# BASE_TEMPLATE (E006) -----------------------------------------------------------


def test_e006_a_base_template_no_engine_finds(settings):
    settings.SELECTOR_APP = {"BASE_TEMPLATE": "base_of_another_site.html"}
    [message] = checks.check_base_template()
    assert message.id == "selector_app.E006"
    assert "'base_of_another_site.html'" in message.msg and "500" in message.msg
    assert "tried: " in message.msg  # where the loaders looked
    assert "BASE_TEMPLATE" in message.hint and "DIRS" in message.hint


def test_e006_a_base_template_that_does_not_compile(settings, tmp_path):
    (tmp_path / "broken.html").write_text("{% block title %}no end")
    settings.TEMPLATES = [
        {**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}
    ]
    settings.SELECTOR_APP = {"BASE_TEMPLATE": "broken.html"}
    [message] = checks.check_base_template()
    assert message.id == "selector_app.E006" and "does not compile" in message.msg


def test_e006_is_reported_beside_other_keys_errors(settings):
    settings.SELECTOR_APP = {"BASE_TEMPLATE": "nowhere.html", "LONG_POLL_TIMEOUT": "x"}
    assert ids(checks.check_base_template()) == ["selector_app.E006"]
    assert ids(checks.check_settings()) == ["selector_app.E005"]


def test_e006_is_silent_for_the_apps_own_base_template(settings):
    settings.SELECTOR_APP = {}
    assert checks.check_base_template() == []


# Limits that contradict each other (W003) ---------------------------------------


def test_w003_a_byte_burst_below_the_largest_message(settings):
    settings.SELECTOR_APP = {"RECEIVE_BYTE_BURST": 1000, "MAX_MESSAGE_SIZE": 4000}
    [message] = checks.check_limits()
    assert message.id == "selector_app.W003"
    assert "1000" in message.msg and "4000" in message.msg
    settings.SELECTOR_APP = {**settings.SELECTOR_APP, "RECEIVE_BYTES_PER_SECOND": 0}
    assert checks.check_limits() == []  # no byte limit, no contradiction


# The ids are documented ----------------------------------------------------------


def test_every_check_id_is_documented_and_hints_name_no_demo_variable():
    import inspect
    import re

    from tests.support.server import ROOT

    source = inspect.getsource(checks)
    emitted = {
        found
        for path in (ROOT / "selector_app").rglob("*.py")
        for found in re.findall(r'id="(selector_app\.[EW]\d{3})"', path.read_text())
    }
    assert {"selector_app.E001", "selector_app.W002", "selector_app.E006"} <= emitted
    docs = (ROOT / "docs" / "settings.md").read_text()
    documented = set(re.findall(r"^\| `(selector_app\.[EW]\d{3})` \|", docs, re.M))
    assert emitted <= documented
    # Hints link to the docs online (the wheel carries none), and name
    # settings, not the demo's environment variables.
    for text in ("REDIS_URL", "DJANGO_", "SELECTOR_EMBEDDED", "See docs/"):
        assert text not in source, text


def test_the_accepts_column_of_the_settings_table_is_the_rules():
    import re

    from tests.support.server import ROOT

    docs = (ROOT / "docs" / "settings.md").read_text()
    rows = dict(re.findall(r"^\| `([A-Z_]+)` \| [^|]+ \| ([^|]+) \|", docs, re.M))
    for key, rule in RULES.items():
        assert rows[key].strip() == rule.expected, key


def test_metrics_checks_are_silent_for_the_demo_and_when_off(settings):
    assert checks.check_metrics() == []  # the demo: on, loopback, a permission
    settings.SELECTOR_APP = {"METRICS": False}
    assert checks.check_metrics() == []


def test_e007_metrics_on_without_prometheus_client(settings, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "prometheus_client" else real(name, *a),
    )
    settings.SELECTOR_APP = {"METRICS": True, "METRICS_NETWORKS": ["::1"]}
    [message] = checks.check_metrics()
    assert message.id == "selector_app.E007" and "[metrics]" in message.hint


def test_e008_a_network_that_is_not_one(settings):
    settings.SELECTOR_APP = {"METRICS": True, "METRICS_NETWORKS": ["10.0.0.0/33"]}
    [message] = checks.check_metrics()
    assert message.id == "selector_app.E008" and "10.0.0.0/33" in message.msg


def test_w004_metrics_nobody_may_read(settings):
    settings.SELECTOR_APP = {"METRICS": True}
    assert ids(checks.check_metrics()) == ["selector_app.W004"]
