#!/usr/bin/python3
"""The end-to-end test's Django project: an existing user table behind the auth gateway."""
import os
import sys
from pathlib import Path

if __name__ == "__main__":
    # The adapter's folder on the Python path, as its README says (step 1).
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "integrations" / "django"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "identity_project.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
