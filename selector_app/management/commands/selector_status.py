"""``manage.py selector_status``: the deployment's live state, as the admin shows it.

A table for people; ``--json`` for scripts (the same data as the admin's
status page: every live server process and every resource with its lease
holder and standbys).
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandParser

from selector_app import status


class Command(BaseCommand):
    help = (
        "Show every live server process (connections, held polls, versions, "
        "delivery lag) and every resource (sequence, last publish, which "
        "runupdater holds its lease and which stand by)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--json", action="store_true", help="Print JSON instead of tables."
        )

    def handle(self, *args, json: bool = False, **options) -> None:
        state = status.deployment_status()
        if json:
            self.stdout.write(_dumps(state))
            return
        self.stdout.write(f"As of {status.format_time(state['now'])}.\n")
        self.stdout.write(f"Server processes ({len(state['processes'])}):")
        self.stdout.write(table(status.PROCESS_COLUMNS, status.process_rows(state)))
        rows = status.resource_rows(state)
        count = state["resource_count"]
        shown = f" ({len(rows)} of {count})" if count > len(rows) else ""
        self.stdout.write(f"\nResources{shown}:")
        self.stdout.write(table(status.RESOURCE_COLUMNS, rows))


def _dumps(state: dict) -> str:
    return json.dumps(state, indent=2)


def table(columns: tuple[str, ...], rows: list[list[str]]) -> str:
    """Rows of text under their column names, aligned; "(none)" if empty."""
    if not rows:
        return "  (none)"
    widths = [
        max(len(str(cell)) for cell in column)
        for column in zip(columns, *rows, strict=True)
    ]

    def line(cells) -> str:
        return (
            "  "
            + "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
        )

    return "\n".join([line(columns), *(line(row) for row in rows)])
