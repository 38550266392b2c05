from django.db import migrations, models

import selector_app.markers


class Migration(migrations.Migration):
    dependencies = [
        ("selector_app", "0003_heartbeat"),
    ]

    operations = [
        migrations.AddField(
            model_name="resource",
            name="change",
            field=models.BigIntegerField(db_index=True, default=0, editable=False),
        ),
        # Rows written before this migration keep 0: a re-read never needs
        # them (a process loads a resource when a client first asks for it).
        selector_app.markers.InstallChangeMarker(),
    ]
