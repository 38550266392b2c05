from django.apps import AppConfig


class SelectorAppConfig(AppConfig):
    """Registers the system checks and, under Daphne, makes autobahn's
    per-frame debug-log arguments lazy and Twisted's writes eager; starts
    nothing (the hub starts on first use)."""

    name = "selector_app"
    verbose_name = "Live resources"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import autobahn_logs, checks, conf, layers, twisted_writes  # noqa: F401

        # Before Daphne's first frame; no-ops where autobahn and Twisted are
        # not loaded (Daphne has loaded both by now).
        autobahn_logs.configure()
        twisted_writes.configure()
