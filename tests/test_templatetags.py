from __future__ import annotations

import pytest
from django.template import Context, Template, TemplateSyntaxError


def render(source: str, **context: object) -> str:
    return Template("{% load live_panels %}" + source).render(Context(context))


def test_live_assets_are_served_from_this_site():
    html = render("{% live_assets %}")
    assert 'href="/static/selector_app/live.css"' in html
    assert 'src="/static/selector_app/live.js" defer' in html


def test_a_websocket_panel_of_the_default_and_of_a_named_resource():
    assert 'data-live="websocket" data-path="/websocket"' in render("{% live_panel %}")
    html = render('{% live_panel "prices" title="Prices" %}')
    assert 'data-path="/websocket/prices"' in html and "WebSocket: Prices" in html


def test_comet_and_bidirectional_panels():
    assert 'data-url="/comet/prices"' in render(
        '{% live_panel "prices" transport="comet" %}'
    )
    html = render('{% live_panel transport="bidirectional" %}')
    assert 'data-path="/bidirectional"' in html and 'data-role="input"' in html


def test_panels_follow_the_mount_prefix(settings):
    settings.ROOT_URLCONF = "tests.prefix_urls"
    assert 'data-path="/live/websocket/prices"' in render('{% live_panel "prices" %}')
    assert 'data-url="/live/comet"' in render('{% live_panel transport="comet" %}')


def test_an_unknown_transport_is_a_clear_template_error():
    with pytest.raises(
        TemplateSyntaxError, match="must be one of websocket, comet, sse"
    ):
        render('{% live_panel "res" transport="pigeon" %}')


def test_titles_from_variables_are_escaped():
    html = render('{% live_panel "res" title=title %}', title="<b>x</b>")
    assert "<b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
