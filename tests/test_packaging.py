"""selector_app installs with pip and works from the installed copy."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import zipfile

import pytest

import selector_app
from tests.support.server import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

USE_INSTALLED_COPY = textwrap.dedent(
    """
    import django
    from django.conf import settings

    settings.configure(
        INSTALLED_APPS=[
            "django.contrib.contenttypes", "django.contrib.auth",
            "django.contrib.staticfiles", "channels", "selector_app",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3",
                               "NAME": ":memory:"}},
        CHANNEL_LAYERS={"default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer"}},
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates",
                    "APP_DIRS": True}],
        ROOT_URLCONF="selector_app.urls",
        STATIC_URL="/static/",
    )
    django.setup()
    import selector_app
    from django.contrib.staticfiles import finders
    from django.core.management import call_command
    from django.template.loader import get_template

    from selector_app.models import Resource

    call_command("migrate", verbosity=0)
    print(selector_app.__file__)
    print(selector_app.__version__)
    print(get_template("selector_app/index.html").origin.name)
    print(finders.find("selector_app/live.js"))
    print(Resource.objects.count())
    """
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    directory = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            directory,
            ROOT,
        ],
        check=True,
        capture_output=True,
        timeout=150,
    )
    [built] = directory.glob("*.whl")
    return built


def test_the_wheel_carries_templates_static_files_and_migrations(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "selector_app/templates/selector_app/index.html",
        "selector_app/templates/selector_app/panels/websocket.html",
        "selector_app/static/selector_app/live.js",
        "selector_app/migrations/0001_initial.py",
        "selector_app/migrations/0002_demo_resource.py",
        "selector_app/templatetags/live_panels.py",
        "selector_app/selector/selector.py",
        "selector_app/management/commands/runupdater.py",
    ):
        assert required in names
    assert not [name for name in names if name.startswith(("tests/", "realtime_site/"))]
    assert f"-{selector_app.__version__}-" in wheel.name


def test_the_installed_copy_works_outside_the_source_tree(wheel, tmp_path):
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            site,
            wheel,
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    result = subprocess.run(
        [sys.executable, "-c", USE_INSTALLED_COPY],
        cwd=tmp_path,  # not the source tree
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    module, version, template, script, rows = result.stdout.split()
    for path in (module, template, script):
        assert path.startswith(str(site))
    # No rows: the app's migrations put no demo resource in a host's database.
    assert (version, rows) == (selector_app.__version__, "0")
