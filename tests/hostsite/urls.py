from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("notes/add", views.add_note, name="add-note"),
    path("admin/", admin.site.urls),
    path("live/", include("selector_app.urls")),  # step 4: any prefix
]
