"""The old system's database: the tables and the demo users with the gateway's ids (1001 alice, ...)."""
import os
import sys

import django

os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'simplejwt_project.settings')
django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402

call_command('migrate', verbosity=0)
for spec in sys.argv[1:]:
    user_id, username, password = spec.split(':', 2)
    User.objects.create_user(id=int(user_id), username=username, password=password)
