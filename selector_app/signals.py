"""Signals host sites can connect to."""

from django.dispatch import Signal

#: Sent after a publish has been committed, with ``sender=Resource`` and the
#: keyword arguments ``name``, ``sequence`` and ``data``. Sent in the process
#: that published, once per publish (not once per server process).
resource_published = Signal()
