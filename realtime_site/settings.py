"""Settings of the demo site, driven by the environment.

With nothing set this is the embedded demo: DEBUG on, SQLite, the in-memory
channel layer and the updater inside the server process. For production, set
``DJANGO_SECRET_KEY``, ``DJANGO_DEBUG=0``, ``DJANGO_ALLOWED_HOSTS``,
``DATABASE_URL`` and ``REDIS_URL`` (see docs/deployment.md).
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from selector_app.layers import redis_channel_layer

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be 1/0, true/false, yes/no or on/off.")


def env_list(name: str, default: str = "") -> list[str]:
    return [
        item.strip()
        for item in os.environ.get(name, default).split(",")
        if item.strip()
    ]


DEBUG = env_bool("DJANGO_DEBUG", True)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("Set DJANGO_SECRET_KEY when DJANGO_DEBUG is off.")
    SECRET_KEY = "django-insecure-demo-key-only-for-local-development"
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        return int(raw) if raw else default
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number.") from None


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    try:
        return float(raw) if raw else default
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number.") from None


# The production profile (DJANGO_DEBUG=0) passes `manage.py check --deploy`:
# HTTPS only, behind a proxy that sets X-Forwarded-Proto. Each part can be
# turned off or tuned from the environment (docs/settings.md).
PRODUCTION = not DEBUG
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", PRODUCTION)
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", PRODUCTION)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env_int(
    "DJANGO_SECURE_HSTS_SECONDS", 365 * 24 * 3600 if PRODUCTION else 0
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool(
    "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION
)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", PRODUCTION)
if env_bool("DJANGO_SECURE_PROXY_SSL_HEADER", PRODUCTION):
    # Only safe behind a proxy that sets (and strips from clients) this header.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

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
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=0,
    )
}
DATABASES["default"]["OPTIONS"] = {
    **database_options(DATABASES["default"]["ENGINE"], env_int("DATABASE_TIMEOUT", 5)),
    **DATABASES["default"].get("OPTIONS", {}),  # the URL's own options win
}

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {"default": redis_channel_layer(REDIS_URL)}
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
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

SELECTOR_APP = {
    "BASE_TEMPLATE": "base.html",
    "ADMIN_RANDOM_PUBLISH": True,
    "EMBEDDED_UPDATER": env_bool("SELECTOR_EMBEDDED_UPDATER", True),
    "GC_TUNING": env_bool("SELECTOR_GC_TUNING", True),
    "LAZY_AUTOBAHN_LOGS": env_bool("SELECTOR_LAZY_AUTOBAHN_LOGS", True),
    "EAGER_TWISTED_WRITES": env_bool("SELECTOR_EAGER_TWISTED_WRITES", True),
    "DRAIN_TIMEOUT": env_float("SELECTOR_DRAIN_TIMEOUT", 5.0),
    # Prometheus metrics at /metrics (docs/operations.md): on in the demo, for
    # scrapers on this machine and staff who may view resources.
    "METRICS": env_bool("SELECTOR_METRICS", True),
    "METRICS_NETWORKS": env_list("SELECTOR_METRICS_NETWORKS", "127.0.0.1/32,::1/128"),
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
            "level": os.environ.get("SELECTOR_LOG_LEVEL", "INFO"),
            "propagate": False,
        },
    },
}
