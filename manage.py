#!/usr/bin/env python
"""Django's command-line utility for the enterprise-access service."""
import os
import sys

if __name__ == "__main__":
    # The embedded default (SQLite + database cache) unless told otherwise.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "enterprise_access.settings.local")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
