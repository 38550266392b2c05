"""Errors the app's services raise for views and consumers to translate."""


class UnknownResource(LookupError):
    """No resource has this name (HTTP 404, WebSocket close 4404)."""


class InvalidCursor(ValueError):
    """A ``seq`` that is not 1 to 18 decimal digits (HTTP 400, close 4400)."""


class TooManyWaiters(RuntimeError):
    """This process already holds its limit of long-poll requests (HTTP 503)."""
