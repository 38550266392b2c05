"""Creates the demo resource ``res`` (sequence 1, 1024 printable characters).

A database migrated before this app existed got ``res`` from
``selector_app``'s old ``0002_demo_resource``: ``get_or_create`` leaves it as
it is.
"""

import random

from django.db import migrations

PRINTABLE = "".join(chr(code) for code in range(0x21, 0x7F))


def create_demo_resource(apps, schema_editor):
    Resource = apps.get_model("selector_app", "Resource")
    Resource.objects.get_or_create(
        name="res",
        defaults={"sequence": 1, "data": "".join(random.choices(PRINTABLE, k=1024))},
    )


def delete_demo_resource(apps, schema_editor):
    apps.get_model("selector_app", "Resource").objects.filter(name="res").delete()


class Migration(migrations.Migration):
    dependencies = [("selector_app", "0001_initial")]

    operations = [migrations.RunPython(create_demo_resource, delete_demo_resource)]
