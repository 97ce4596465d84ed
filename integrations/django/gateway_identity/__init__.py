"""The auth gateway's identity backend API (docs/identity-backend.md) on django.contrib.auth."""
