from django.db import migrations


def create_staff_notes_resource(apps, schema_editor):
    # Not in access.PUBLIC: only staff may read it.
    Resource = apps.get_model("selector_app", "Resource")
    Resource.objects.get_or_create(name="staff-notes", defaults={"data": "for staff"})


class Migration(migrations.Migration):
    dependencies = [("notes", "0001_initial")]

    operations = [
        migrations.RunPython(create_staff_notes_resource, migrations.RunPython.noop),
    ]
