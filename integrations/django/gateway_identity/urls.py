"""
`path("", include("gateway_identity.urls"))`: the identity backend API and the users upstream's
read routes. A project that serves /api/users itself includes `gateway_identity.internal_urls`.
"""
from django.urls import path

from . import views
from .internal_urls import urlpatterns as internal

app_name = "gateway_identity"

urlpatterns = internal + [
    path("api/users/me", views.me, name="me"),
    path("api/users", views.list_users, name="users"),
    path("api/users/<str:user_id>", views.user_detail, name="user"),
]
