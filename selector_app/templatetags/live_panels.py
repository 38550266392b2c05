"""Template tags that put live panels into a host site's own pages.

{% load live_panels %}
<head>... {% live_assets %} ...</head>
{% live_panel "res" %}                      {# WebSocket push #}
{% live_panel "prices" transport="comet" %} {# long-polling #}
{% live_panel "prices" transport="sse" %}   {# Server-Sent Events #}
{% live_panel transport="bidirectional" %}  {# echo and tick #}
"""

from __future__ import annotations

from django import template
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.utils.html import format_html
from django.utils.safestring import SafeString

from .. import endpoints

register = template.Library()

TRANSPORTS = ("websocket", "comet", "sse", "bidirectional")


@register.simple_tag
def live_assets() -> SafeString:
    """The panels' stylesheet and script (served from this site, no CDN);
    the script imports client.js from the URL it is given (hashed names of
    ``ManifestStaticFilesStorage`` included)."""
    return format_html(
        '<link rel="stylesheet" href="{}">\n'
        '<script src="{}" defer data-client="{}"></script>',
        static("selector_app/live.css"),
        static("selector_app/live.js"),
        static("selector_app/client.js"),
    )


@register.simple_tag
def live_panel(
    name: str | None = None, *, transport: str = "websocket", title: str = ""
) -> SafeString:
    """A live panel of resource ``name`` (default: DEFAULT_RESOURCE)."""
    if transport not in TRANSPORTS:
        raise template.TemplateSyntaxError(
            f"live_panel transport must be one of {', '.join(TRANSPORTS)}, "
            f"not {transport!r}."
        )
    context: dict[str, object] = {"title": title or (name or "")}
    context["paths"] = endpoints.resource_paths(name)
    if transport == "comet":
        context["url"] = endpoints.comet_url(name)
    elif transport == "sse":
        context["url"] = endpoints.events_url(name)
    elif transport == "websocket":
        context["path"] = endpoints.websocket_path(name)
    else:
        context["path"] = endpoints.bidirectional_path()
    return render_to_string(f"selector_app/panels/{transport}.html", context)
