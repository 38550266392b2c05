from django.db import migrations, models


def create_notes_resource(apps, schema_editor):
    # A resource must exist before it can be published to.
    Resource = apps.get_model("selector_app", "Resource")
    Resource.objects.get_or_create(name="notes", defaults={"data": "no notes yet"})


class Migration(migrations.Migration):
    initial = True
    dependencies = [("selector_app", "0002_demo_resource")]

    operations = [
        migrations.CreateModel(
            name="Note",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False
                    ),
                ),
                ("text", models.CharField(max_length=500)),
            ],
        ),
        migrations.RunPython(create_notes_resource, migrations.RunPython.noop),
    ]
