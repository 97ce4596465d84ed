"""The end-to-end test's users, made by Django itself (its hashers, is_active, groups)."""
import json

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

USERS = [
    # username, password, active, groups
    ("dana", "dana-django-password", True, []),
    ("erin", "erin-django-password", False, []),
    ("frank", "frank-django-password", True, ["gateway-admins"]),
]


class Command(BaseCommand):
    help = "Creates one active, one inactive and one admin-group user; prints their ids as JSON."

    def handle(self, *args, **options):
        User = get_user_model()
        ids = {}
        for username, password, active, groups in USERS:
            user = User.objects.create_user(username, password=password, is_active=active)
            for name in groups:
                user.groups.add(Group.objects.get_or_create(name=name)[0])
            ids[username] = str(user.pk)
        self.stdout.write(json.dumps(ids))
