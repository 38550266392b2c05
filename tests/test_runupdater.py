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
