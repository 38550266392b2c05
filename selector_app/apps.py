from django.apps import AppConfig


class SelectorAppConfig(AppConfig):
    """Registers the system checks and makes autobahn's per-frame debug-log
    arguments lazy under Daphne; starts nothing (the hub starts on first use)."""

    name = "selector_app"
    verbose_name = "Live resources"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import autobahn_logs, checks, conf  # noqa: F401  (registers checks and signals)

        # Before Daphne's first frame; a no-op where autobahn is not loaded.
        autobahn_logs.configure()
