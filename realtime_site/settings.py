"""Settings of the demo site, driven by the environment.

With nothing set this is the embedded demo: DEBUG on, SQLite, the in-memory
channel layer and the updater inside the server process. For production, set
``DJANGO_SECRET_KEY``, ``DJANGO_DEBUG=0``, ``DJANGO_ALLOWED_HOSTS``,
``DATABASE_URL`` and ``REDIS_URL`` (see docs/deployment.md).

Every variable is read through environs (docs/settings.md says why), so each
kind of value has one rule: a flag is ``1/0``, ``true/false``, ``yes/no`` or
``on/off`` (any case), a number is a number, and anything else stops the
process with an error that names the variable. A ``.env`` file beside
``manage.py`` (or the file ``DJANGO_ENV_FILE`` names) fills in what the real
environment does not set.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from environs import Env

from selector_app.layers import redis_channel_layer

BASE_DIR = Path(__file__).resolve().parent.parent

env = Env()
# The real environment wins over the file (python-dotenv's override=False).
ENV_FILE = env.str("DJANGO_ENV_FILE", str(BASE_DIR / ".env"))
if ENV_FILE:
    env.read_env(ENV_FILE, recurse=False)


def env_list(name: str) -> list[str]:
    """A comma-separated list; spaces around items and empty items ignored."""
    return [item.strip() for item in env.list(name, []) if item.strip()]


DEBUG = env.bool("DJANGO_DEBUG", True)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("Set DJANGO_SECRET_KEY when DJANGO_DEBUG is off.")
    SECRET_KEY = "django-insecure-demo-key-only-for-local-development"
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS")

# The production profile (DJANGO_DEBUG=0) turns on what is safe to turn on
# behind a TLS-terminating proxy: HTTPS redirect, secure cookies, trust of
# the proxy's X-Forwarded-Proto. Each can be turned off (docs/settings.md).
PRODUCTION = not DEBUG
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", PRODUCTION)
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", PRODUCTION)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# HSTS is a promise browsers keep for its whole max-age (and, with preload,
# beyond the site's control), so it is never implied by DJANGO_DEBUG=0: each
# part is opted into with its own variable.
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool(
    "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", False
)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", False)
if SECURE_HSTS_SECONDS < 0:
    raise ImproperlyConfigured("DJANGO_SECURE_HSTS_SECONDS must be 0 or more.")
if env.bool("DJANGO_SECURE_PROXY_SSL_HEADER", PRODUCTION):
    # Only safe behind a proxy that sets (and strips from clients) this header.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

#: Comet on the event loop (selector_app.fastpath), read by realtime_site/asgi.py.
DEMO_COMET_FAST_PATH = env.bool("SELECTOR_COMET_FAST_PATH", True)

INSTALLED_APPS = [
    "daphne",  # first, so runserver serves ASGI (HTTP and WebSocket)
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "selector_app",
    "realtime_site.demo",  # the demo's resource 'res' (a data migration)
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files when no proxy serves them (under DEBUG, runserver does).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "realtime_site.urls"
ASGI_APPLICATION = "realtime_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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


def database_options(engine: str, timeout: int) -> dict[str, object]:
    """Bounds on every wait on the database, per backend (docs/deployment.md).

    SQLite: WAL lets readers (the hubs' re-reads) go on while one process
    writes; IMMEDIATE makes a transaction take the write lock when it
    begins, so a read-then-write transaction (the admin's change form) waits
    for a busy publisher, up to ``timeout``, instead of failing at once with
    "database is locked" when it tries to upgrade its read lock.
    PostgreSQL: a connection attempt and each statement end after ``timeout``.
    """
    if engine == "django.db.backends.sqlite3":
        return {
            "init_command": "PRAGMA journal_mode=WAL",
            "transaction_mode": "IMMEDIATE",
            "timeout": timeout,
        }
    if engine == "django.db.backends.postgresql":
        return {
            "connect_timeout": timeout,
            "options": f"-c statement_timeout={timeout * 1000}",
        }
    return {}


DATABASES = {
    "default": env.dj_db_url(
        "DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}", conn_max_age=0
    )
}
DATABASE_TIMEOUT = env.int("DATABASE_TIMEOUT", 5)
DATABASES["default"]["OPTIONS"] = {
    **database_options(DATABASES["default"]["ENGINE"], DATABASE_TIMEOUT),
    **DATABASES["default"].get("OPTIONS", {}),  # the URL's own options win
}

REDIS_URL = env.str("REDIS_URL", "")
if REDIS_URL:
    try:
        CHANNEL_LAYERS = {"default": redis_channel_layer(REDIS_URL)}
    except ImproperlyConfigured as error:  # the demo installs requirements files
        raise ImproperlyConfigured(
            "REDIS_URL is set, but channels_redis is not installed here "
            "(./scripts/demo installs only what the demo needs). Install the "
            "deployment's requirements: .venv/bin/pip install -r "
            "requirements-deploy.txt"
        ) from error
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"django.contrib.auth.password_validation.{name}"}
    for name in (
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    )
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# WhiteNoise serves the files of STATIC_ROOT (after `manage.py collectstatic`)
# and, with finders, those of the apps' static/ directories, so a bare Daphne
# or Uvicorn serves the page's script with nothing collected. Without
# collectstatic there is no STATIC_ROOT yet, which is expected here.
WHITENOISE_USE_FINDERS = True
for message in (
    f"No directory at: {re.escape(str(STATIC_ROOT))}",
    # WhiteNoise 6 hands Django a file to read in a thread under ASGI, and
    # Django says so once per process; the file is still served.
    "StreamingHttpResponse must consume synchronous iterators",
):
    warnings.filterwarnings("ignore", message=message)

SELECTOR_APP = {
    "BASE_TEMPLATE": "base.html",
    "ADMIN_RANDOM_PUBLISH": True,
    "EMBEDDED_UPDATER": env.bool("SELECTOR_EMBEDDED_UPDATER", True),
    # The page's grid panel: resources on one /select socket, which the
    # embedded updater publishes too (a runupdater each with Redis);
    # SELECTOR_GRID_RESOURCES="" turns the grid off (benchmarks do).
    "GRID_RESOURCES": [
        name.strip()
        for name in env.list(
            "SELECTOR_GRID_RESOURCES", default=[f"cell-{n}" for n in range(1, 7)]
        )
        if name.strip()
    ],
    "GC_TUNING": env.bool("SELECTOR_GC_TUNING", True),
    "LAZY_AUTOBAHN_LOGS": env.bool("SELECTOR_LAZY_AUTOBAHN_LOGS", True),
    "EAGER_TWISTED_WRITES": env.bool("SELECTOR_EAGER_TWISTED_WRITES", True),
    "DRAIN_TIMEOUT": env.float("SELECTOR_DRAIN_TIMEOUT", 5.0),
    # Prometheus metrics at /metrics (docs/operations.md): on in the demo, for
    # scrapers on this machine and staff who may view resources.
    "METRICS": env.bool("SELECTOR_METRICS", True),
    "METRICS_NETWORKS": env_list("SELECTOR_METRICS_NETWORKS")
    or ["127.0.0.1/32", "::1/128"],
    "METRICS_PERMISSION": "selector_app.view_resource",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "selector_app": {
            "handlers": ["console"],
            "level": env.log_level("SELECTOR_LOG_LEVEL", "INFO"),
            "propagate": False,
        },
    },
}
