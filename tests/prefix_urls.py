"""A URL configuration that mounts the app under /live/ (in-process tests)."""

from django.urls import include, path

urlpatterns = [path("live/", include("selector_app.urls"))]
