"""Formerly created the demo resource ``res``; now does nothing.

A reusable app's migrations run in every host site's database, so they must
not insert rows of the demo's: the demo project creates ``res`` in its own
migration (``realtime_site/demo``), and the embedded updater and
``runupdater --create`` create the resource they publish to. The file stays,
as an empty step, so databases that applied it keep a consistent history
(their ``res`` row, if any, is left alone).
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("selector_app", "0001_initial")]

    operations = []
