"""Only the identity backend API (the calls of docs/identity-backend.md)."""
from django.urls import path

from . import views

urlpatterns = [
    path("internal/credentials/check", views.check_credentials, name="credentials-check"),
    path("internal/users", views.lookup_username, name="user-by-name"),
    path("internal/users/<str:user_id>", views.lookup_user, name="user-lookup"),
    path("internal/users/<str:user_id>/factors", views.list_factors, name="user-factors"),
    path("internal/users/<str:user_id>/factors/<str:factor_id>", views.one_factor, name="user-factor"),
]
