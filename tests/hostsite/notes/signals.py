"""Publishing from the host's own model: the latest note is a live resource."""

from django.db.models.signals import post_save
from django.dispatch import receiver

from selector_app.services import resource_publish

from .models import Note


@receiver(post_save, sender=Note)
def publish_latest_note(sender, instance, created, **kwargs):
    if created:
        resource_publish(name="notes", data=instance.text)
