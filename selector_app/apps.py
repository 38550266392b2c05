from django.apps import AppConfig


class SelectorAppConfig(AppConfig):
    """Registers the system checks; starts nothing (the hub starts on first use)."""

    name = "selector_app"
    verbose_name = "Live resources"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, conf, layers  # noqa: F401  (registers checks, signals)
