"""A middleware that marks what it saw, to tell which path served a request."""

from __future__ import annotations


class MarkingMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response["X-Middleware"] = "seen"
        return response
