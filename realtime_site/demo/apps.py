from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo's data migration; nothing at start-up."""

    name = "realtime_site.demo"
    label = "demo"
    verbose_name = "Demo"
