from django.db import models


class Note(models.Model):
    """A host-site model whose latest row is published as the ``notes`` resource."""

    text = models.CharField(max_length=500)

    def __str__(self) -> str:
        return self.text
