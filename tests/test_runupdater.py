from __future__ import annotations

import io
import signal
import subprocess
import sys

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.management import CommandError, call_command

from selector_app.layers import redis_channel_layer
from selector_app.models import Resource
from tests.support.server import ROOT, manage, project_env


def test_refuses_the_in_memory_layer_and_says_what_to_configure(db):
    with pytest.raises(CommandError, match="Set REDIS_URL") as error:
        call_command("runupdater", "--count", "1")
    assert "in-memory" in str(error.value)


@pytest.mark.parametrize(
    "args",
    [["--interval", "0"], ["--interval", "x"], ["--length", "-1"], ["--count", "0"]],
)
def test_bad_arguments_are_refused(db, args):
    with pytest.raises(CommandError):
        call_command("runupdater", *args)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_publishes_count_times_through_the_redis_layer(settings, redis_server):
    settings.CHANNEL_LAYERS = {"default": redis_channel_layer(redis_server.url)}
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)("selector_app", channel)

    out = io.StringIO()
    call_command(
        "runupdater",
        "--resource",
        "made",
        "--create",
        "--interval",
        "0.01",
        "--length",
        "5",
        "--count",
        "3",
        stdout=out,
    )
    assert "Stopped after 3 publishes to 'made' (0 failed)" in out.getvalue()
    made = Resource.objects.get(name="made")  # created on demand
    assert made.sequence == 4 and len(made.data) == 5
    # Its creation is announced too, so that servers know the new name at once.
    received = [async_to_sync(layer.receive)(channel) for _ in range(4)]
    assert [m["sequence"] for m in received] == [1, 2, 3, 4]


def test_a_mistyped_resource_is_an_error_naming_it(db, settings):
    # Building the layer connects to nothing; the check comes first.
    settings.CHANNEL_LAYERS = {"default": redis_channel_layer("redis://127.0.0.1:9")}
    with pytest.raises(CommandError) as error:
        call_command("runupdater", "--resource", "rse")
    message = str(error.value)
    assert "no resource named 'rse'" in message
    assert "'res'" in message and "--create" in message
    assert not Resource.objects.filter(name="rse").exists()


def run_updater(verbosity: int, *args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "runupdater",
        "--interval",
        "0.01",
        "--count",
        "2",
        "--verbosity",
        str(verbosity),
        *args,
        stdout=out,
        stderr=err,
    )
    return out.getvalue(), err.getvalue()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_status_lines_follow_the_verbosity(settings, redis_server, res):
    settings.CHANNEL_LAYERS = {"default": redis_channel_layer(redis_server.url)}
    quiet, _ = run_updater(0)
    normal, _ = run_updater(1)
    chatty, _ = run_updater(2)
    assert quiet == ""
    assert normal.splitlines() == [
        "Updating 'res' every 0.01 s with 1024 characters.",
        "acquired the lock on 'res'; publishing.",
        "Stopped after 2 publishes to 'res' (0 failed).",
    ]
    assert "Published res #6." in chatty and "Published res #7." in chatty
    assert "acquired the lock" in chatty


@pytest.mark.slow
def test_a_host_site_without_logging_sees_what_it_does(tmp_path, redis_server):
    """A real subprocess, as a host site runs it: no LOGGING configured."""
    env = project_env(
        DJANGO_SETTINGS_MODULE="tests.hostsite.redis_settings",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        REDIS_URL=redis_server.url,
    )
    manage("migrate", "-v0", env=env)
    with pytest.raises(RuntimeError, match=r"no resource named 'news'(.|\n)*--create"):
        manage("runupdater", "--resource", "news", env=env)
    args = ("runupdater", "--resource", "news", "--interval", "0.05", "--count", "2")
    output = manage(*args, "--create", env=env)
    assert output.splitlines() == [
        "Updating 'news' every 0.05 s with 1024 characters.",
        "acquired the lock on 'news'; publishing.",
        "Stopped after 2 publishes to 'news' (0 failed).",
    ]


@pytest.mark.slow
def test_sigterm_stops_it_cleanly(tmp_path, redis_server):
    env = project_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", REDIS_URL=redis_server.url
    )
    manage("migrate", "-v0", env=env)
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "runupdater", "--interval", "0.05"],
        env={**env, "SELECTOR_LOG_LEVEL": "DEBUG"},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for line in process.stdout:  # bounded by pytest-timeout
            if "Published res #3" in line:
                break
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 0, output
    assert "Stopped after" in output and "0 failed" in output


@pytest.mark.slow
async def test_a_second_runupdater_stands_by_until_the_first_stops(
    tmp_path, redis_server
):
    from tests.support.cluster import UpdaterProcess

    env = project_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", REDIS_URL=redis_server.url
    )
    manage("migrate", "-v0", env=env)
    first = UpdaterProcess(env, tmp_path / "first.log", "--interval", "0.05")
    second = UpdaterProcess(env, tmp_path / "second.log", "--interval", "0.05")
    try:
        first.start()
        await first.wait_for_log("acquired the lock on 'res'")
        second.start()
        await second.wait_for_log("standby: waiting for the lock on 'res'")
        await first.wait_for_log("Published res #5")
        first.stop()  # SIGTERM: releases the lock, so the standby need not wait
        await second.wait_for_log("acquired the lock on 'res'", timeout=5)
        await second.wait_for_log("Published")
    finally:
        first.kill()
        second.kill()
    ours, theirs = first.published(), second.published()
    assert ours and theirs and max(ours) < min(theirs)  # never both at once


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_resource_given_twice_publishes_both(settings, redis_server):
    settings.CHANNEL_LAYERS = {"default": redis_channel_layer(redis_server.url)}
    out = io.StringIO()
    args = ("--interval", "0.01", "--length", "5", "--count", "2", "--create")
    call_command("runupdater", "--resource", "x", "--resource", "y", *args, stdout=out)
    for name in ("x", "y"):
        assert f"Stopped after 2 publishes to {name!r} (0 failed)" in out.getvalue()
        assert Resource.objects.get(name=name).sequence == 3
