from django.urls import path

from . import views

app_name = "selector_app"

urlpatterns = [
    path("", views.index, name="index"),
    path("comet", views.comet, name="comet"),
    path("comet/<slug:name>", views.comet, name="comet-resource"),
    path("select", views.select, name="select"),
    path("events/select", views.events_select, name="events-select"),
    path("events", views.events, name="events"),
    path("events/<slug:name>", views.events, name="events-resource"),
    path("health", views.health, name="health"),
    path("metrics", views.prometheus_metrics, name="metrics"),
]
