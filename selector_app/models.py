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
    #: Assigned by the database on every write (a trigger, see
    #: :mod:`selector_app.markers`): what lets a re-read fetch only the rows
    #: written since the previous one.
    change = models.BigIntegerField(default=0, db_index=True, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Heartbeat(models.Model):
    """A live process of the deployment, as it last reported itself.

    Each server process (and each ``runupdater``) writes its row every
    ``RESYNC_INTERVAL`` and deletes it when it stops; a row whose
    ``expires_at`` has passed belongs to a process that died. The admin's
    status page and ``manage.py selector_status`` read them.
    """

    SERVER = "server"
    UPDATER = "updater"
    ROLES = [(SERVER, "server"), (UPDATER, "updater")]

    #: Random per process start: a restarted process is a new row.
    id = models.CharField(max_length=32, primary_key=True)
    role = models.CharField(max_length=16, choices=ROLES)
    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    #: The server software and version ("uvicorn 0.38.0"), or "runupdater".
    software = models.CharField(max_length=100)
    started_at = models.DateTimeField()
    beat_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    #: An updater's resource, its lease state ("holding", "standby",
    #: "unreachable") and since when.
    resource = models.CharField(max_length=100, blank=True)
    state = models.CharField(max_length=16, blank=True)
    state_since = models.DateTimeField(null=True, blank=True)
    #: A server's connections, held polls, versions seen and delivery lag.
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["role", "host", "pid"]

    def __str__(self) -> str:
        return f"{self.role} {self.host}:{self.pid}"
