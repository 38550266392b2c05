#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime_site.settings")
    if sys.argv[1:2] == ["runserver"]:
        # Daphne builds its event loop when Django imports daphne.server,
        # so uvloop goes in first (selector_app/daphne.py says why).
        from selector_app.daphne import use_uvloop

        use_uvloop()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
