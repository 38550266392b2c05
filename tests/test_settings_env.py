"""The demo project's settings as the environment shapes them, in subprocesses;
what a server shows of them (static files, HSTS) on real Daphne and Uvicorn."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys

import httpx
import pytest

from tests.support.server import ROOT, SERVERS, ServerProcess, manage, project_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

#: Opting into HSTS as docs/settings.md says (a year, subdomains, preload).
HSTS = {
    "DJANGO_SECURE_HSTS_SECONDS": "31536000",
    "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
    "DJANGO_SECURE_HSTS_PRELOAD": "1",
}


def production_env(**overrides: str) -> dict[str, str]:
    return project_env(
        **{
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "live.example.com",
            "REDIS_URL": "redis://127.0.0.1:6399/0",  # never connected to by check
            "DATABASE_URL": "postgres://app@127.0.0.1:5432/app",
            **overrides,
        }
    )


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


def settings_of(env: dict[str, str], *names: str) -> dict[str, object]:
    code = (
        "import json; from django.conf import settings as s; "
        f"print(json.dumps({{n: getattr(s, n, None) for n in {list(names)!r}}}, "
        "default=str))"
    )
    result = run("shell", "-c", code, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_production_profile_with_hsts_passes_check_deploy():
    env = production_env(**HSTS)
    result = run("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_debug_off_alone_turns_no_hsts_on_and_check_deploy_says_so():
    values = settings_of(
        production_env(),
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_HSTS_PRELOAD",
        "SECURE_SSL_REDIRECT",
    )
    assert values == {
        "SECURE_HSTS_SECONDS": 0,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": False,
        "SECURE_HSTS_PRELOAD": False,
        "SECURE_SSL_REDIRECT": True,
    }
    result = run("check", "--deploy", env=production_env())
    assert result.returncode == 0  # a warning, not an error
    assert "security.W004" in result.stderr
    assert "security.W" not in result.stderr.replace("security.W004", "")


@pytest.mark.parametrize(
    ("value", "enabled"),
    [("1", True), ("true", True), ("True", True), ("yes", True), ("on", True),
     ("0", False), ("false", False), ("off", False), ("no", False)],
)  # fmt: skip
def test_every_flag_reads_the_same_words(value, enabled):
    env = project_env(
        SELECTOR_COMET_FAST_PATH=value,
        SELECTOR_EMBEDDED_UPDATER=value,
        DJANGO_SECURE_COOKIES=value,
    )
    values = settings_of(
        env, "DEMO_COMET_FAST_PATH", "SELECTOR_APP", "SESSION_COOKIE_SECURE"
    )
    assert values["DEMO_COMET_FAST_PATH"] is enabled
    assert values["SELECTOR_APP"]["EMBEDDED_UPDATER"] is enabled
    assert values["SESSION_COOKIE_SECURE"] is enabled


@pytest.mark.parametrize("value", ["true", "0"])
def test_the_asgi_app_follows_the_fast_path_flag(value):
    code = (
        "import realtime_site.asgi as a; "
        "print(type(a.application.application_mapping['http']).__name__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=project_env(SELECTOR_COMET_FAST_PATH=value),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    expected = "CometFastPath" if value == "true" else "ASGIHandler"
    assert result.stdout.strip() == expected


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SELECTOR_COMET_FAST_PATH", "flase"),
        ("DJANGO_DEBUG", ""),
        ("SELECTOR_DRAIN_TIMEOUT", "soon"),
        ("DATABASE_TIMEOUT", "5s"),
        ("SELECTOR_LOG_LEVEL", "LOUD"),
    ],
)
def test_a_value_that_does_not_parse_stops_with_the_variables_name(name, value):
    result = run("check", env=project_env(**{name: value}))
    assert result.returncode != 0
    assert f'Environment variable "{name}" invalid' in result.stderr


def test_a_dot_env_file_fills_in_what_the_environment_does_not_set(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "DJANGO_DEBUG=off\n"
        "DJANGO_SECRET_KEY=from-the-file-" + "x" * 50 + "\n"
        "DJANGO_ALLOWED_HOSTS=live.example.com, www.example.com,\n"
        "SELECTOR_DRAIN_TIMEOUT=2.5\n"
    )
    env = project_env(DJANGO_ENV_FILE=str(dotenv), SELECTOR_DRAIN_TIMEOUT="7")
    del env["DJANGO_ALLOWED_HOSTS"]
    values = settings_of(env, "DEBUG", "ALLOWED_HOSTS", "SELECTOR_APP")
    assert values["DEBUG"] is False
    assert values["ALLOWED_HOSTS"] == ["live.example.com", "www.example.com"]
    assert values["SELECTOR_APP"]["DRAIN_TIMEOUT"] == 7.0  # the environment wins
    # By default the file beside manage.py; the tests' own env turns it off.
    assert project_env()["DJANGO_ENV_FILE"] == ""


def test_each_hardening_setting_can_be_turned_off_and_check_deploy_says_so():
    env = production_env(DJANGO_SECURE_SSL_REDIRECT="0", DJANGO_SECURE_HSTS_SECONDS="0")
    result = run("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode != 0
    assert "security.W008" in result.stderr and "security.W004" in result.stderr


def test_production_reads_the_database_and_redis_from_the_environment():
    values = settings_of(
        production_env(), "DATABASES", "CHANNEL_LAYERS", "SECURE_PROXY_SSL_HEADER"
    )
    database = values["DATABASES"]["default"]
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert (database["HOST"], database["NAME"]) == ("127.0.0.1", "app")
    layer = values["CHANNEL_LAYERS"]["default"]
    assert layer["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    [host] = layer["CONFIG"]["hosts"]
    assert host["socket_timeout"] is None and host["max_connections"] == 10_000
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]


def test_the_demo_defaults_are_safe_for_a_laptop():
    values = settings_of(
        project_env(),
        "DEBUG",
        "SECURE_SSL_REDIRECT",
        "SESSION_COOKIE_SECURE",
        "CHANNEL_LAYERS",
        "DATABASES",
    )
    assert values["DEBUG"] is True and values["SECURE_SSL_REDIRECT"] is False
    assert values["SESSION_COOKIE_SECURE"] is False
    layer = values["CHANNEL_LAYERS"]["default"]["BACKEND"]
    assert layer == "channels.layers.InMemoryChannelLayer"
    assert values["DATABASES"]["default"]["ENGINE"] == "django.db.backends.sqlite3"


#: What the TLS-terminating proxy adds (trusted: SECURE_PROXY_SSL_HEADER).
HTTPS = {"X-Forwarded-Proto": "https"}


def served(env, tmp_path, server: str, *paths: str) -> list[httpx.Response]:
    process = ServerProcess(env, tmp_path / f"{server}.log", server=server)
    with process, httpx.Client(base_url=process.url, headers=HTTPS, timeout=10) as http:
        return [http.get(path) for path in paths]


def production_server_env(tmp_path, **overrides: str) -> dict[str, str]:
    """The production profile on SQLite and the in-memory layer, one process."""
    env = production_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        **overrides,
    )
    del env["REDIS_URL"]
    manage("migrate", "-v0", env=env)
    return env


@pytest.mark.parametrize("server", SERVERS)
def test_whitenoise_serves_static_files_with_debug_off(server, tmp_path):
    env = production_server_env(tmp_path)
    reply, missing = served(
        env, tmp_path, server, "/static/selector_app/live.js", "/static/nothing.js"
    )
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/javascript")
    assert "WebSocket" in reply.text
    assert "max-age" in reply.headers["cache-control"]  # WhiteNoise's headers
    assert "strict-transport-security" not in reply.headers  # not opted in
    assert missing.status_code == 404


@pytest.mark.parametrize("server", SERVERS)
def test_hsts_is_sent_once_opted_into(server, tmp_path):
    env = production_server_env(tmp_path, **HSTS)
    [reply] = served(env, tmp_path, server, "/")
    assert reply.status_code == 200
    assert reply.headers["strict-transport-security"] == (
        "max-age=31536000; includeSubDomains; preload"
    )


def test_production_without_a_secret_key_says_what_to_set():
    env = production_env()
    del env["DJANGO_SECRET_KEY"]
    result = run("check", env=env)
    assert result.returncode != 0
    assert "Set DJANGO_SECRET_KEY" in result.stderr
