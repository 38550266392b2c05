from django.db import models


class Resource(models.Model):
    """A live resource: the truth every server process converges on.

    ``sequence`` starts at 1 and grows by exactly 1 on every publish; it is
    the cursor clients send back (``?seq=N``).
    """

    name = models.SlugField(max_length=100, unique=True)
    sequence = models.PositiveBigIntegerField(default=1, editable=False)
    data = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
