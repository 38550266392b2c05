"""An existing Django site that embeds selector_app (the embedding guide, tested).

Everything here is what docs/embedding.md tells a user to write; the rest is
an ordinary site: its own base template, static URL, app, model and
WebSocket route.
"""

import os
from pathlib import Path

import dj_database_url

HERE = Path(__file__).resolve().parent

SECRET_KEY = "host-site-test-key-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "daphne",  # step 2: first, so runserver serves ASGI
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",  # step 2
    "selector_app",  # step 2
    "tests.hostsite.notes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "tests.hostsite.urls"
ASGI_APPLICATION = "tests.hostsite.asgi.application"  # step 3

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [HERE / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{HERE / 'hostsite.sqlite3'}")
    )
}

# Step 5: one process here, so the in-memory layer will do.
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Step 6: the app's settings. This site shows the demo resource updating too.
SELECTOR_APP = {
    "BASE_TEMPLATE": "host_base.html",
    "EMBEDDED_UPDATER": True,
    "UPDATE_INTERVAL": 0.5,
    "AUTHORIZE": "tests.hostsite.access.can_read",  # who may read what
}

STATIC_URL = "/assets/"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# A single-process site: publishes only ever come from this process.
SILENCED_SYSTEM_CHECKS = ["selector_app.W001"]
