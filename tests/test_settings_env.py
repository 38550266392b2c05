"""The demo project's settings as the environment shapes them, in subprocesses."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys

import pytest

from tests.support.server import ROOT, project_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]


def production_env(**overrides: str) -> dict[str, str]:
    return project_env(
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="live.example.com",
        REDIS_URL="redis://127.0.0.1:6399/0",  # never connected to by check
        DATABASE_URL="postgres://app@127.0.0.1:5432/app",
        **overrides,
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


def test_the_production_profile_passes_check_deploy():
    result = run("check", "--deploy", "--fail-level", "WARNING", env=production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


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


def test_production_without_a_secret_key_says_what_to_set():
    env = production_env()
    del env["DJANGO_SECRET_KEY"]
    result = run("check", env=env)
    assert result.returncode != 0
    assert "Set DJANGO_SECRET_KEY" in result.stderr
