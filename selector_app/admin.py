"""Admin: see resources, edit data (which publishes it), and, where the site
asks for it (``ADMIN_RANDOM_PUBLISH``, the demo), publish random data."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path

from . import services, status
from .conf import get_config
from .models import Resource


@admin.register(Resource)
class ResourceAdmin(admin.ModelAdmin):
    """Saving goes through the publish service, so open pages change at once."""

    list_display = ["name", "sequence", "data_length", "updated_at"]
    search_fields = ["name"]
    readonly_fields = ["sequence", "updated_at"]
    fields = ["name", "sequence", "data", "updated_at"]
    actions = ["publish_random"]
    # Adds the "Live status" link above the list.
    change_list_template = "admin/selector_app/resource/change_list.html"

    def get_readonly_fields(self, request, obj=None):
        # A resource's name is its address (URLs, clients' cursors): fixed
        # once created.
        return [*self.readonly_fields, "name"] if obj else self.readonly_fields

    def get_actions(self, request: HttpRequest) -> dict:
        # The demo's action: on a host site it would overwrite real data with
        # noise, so it is offered (and accepted) only where the site asks.
        actions = super().get_actions(request)
        if not get_config().ADMIN_RANDOM_PUBLISH:
            actions.pop("publish_random", None)
        return actions

    @admin.display(description="data length")
    def data_length(self, obj: Resource) -> int:
        return len(obj.data)

    def save_model(self, request, obj: Resource, form, change: bool) -> None:
        if change:
            obj.sequence = services.resource_publish(
                name=obj.name, data=obj.data
            ).sequence
        else:
            created = services.resource_create(name=obj.name, data=obj.data)
            obj.pk, obj.sequence = created.pk, created.sequence

    # "change": a user who may only view resources is neither offered the
    # action nor allowed to post it (the admin refuses unoffered actions).
    @admin.action(description="Publish new random data", permissions=["change"])
    def publish_random(self, request: HttpRequest, queryset: QuerySet) -> None:
        names = list(queryset.values_list("name", flat=True))
        for name in names:
            services.resource_publish_random(name=name)
        self.message_user(
            request,
            f"Published new data to {len(names)} resource(s).",
            messages.SUCCESS,
        )

    # The deployment's live status ---------------------------------------------

    def get_urls(self):
        status_view = self.admin_site.admin_view(self.status_view)
        return [
            path("status/", status_view, name="selector_app_resource_status"),
            *super().get_urls(),
        ]

    def status_view(self, request: HttpRequest) -> HttpResponse:
        """Every live process and every resource's lease holders, read fresh
        on each load; for staff who may view resources."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        state = status.deployment_status()
        context = {
            **self.admin_site.each_context(request),
            "title": "Live status",
            "opts": self.model._meta,
            "now": status.format_time(state["now"]),
            "process_columns": status.PROCESS_COLUMNS,
            "processes": status.process_rows(state),
            "resource_columns": status.RESOURCE_COLUMNS,
            "resources": status.resource_rows(state),
            "resource_count": state["resource_count"],
        }
        return TemplateResponse(
            request, "admin/selector_app/resource/status.html", context
        )
