from django.apps import AppConfig


class NotesConfig(AppConfig):
    name = "tests.hostsite.notes"
    label = "notes"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import signals  # noqa: F401
