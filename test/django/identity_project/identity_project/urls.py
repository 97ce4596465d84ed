from django.urls import include, path

# The adapter (integrations/django/README.md, step 3).
urlpatterns = [
    path("", include("gateway_identity.urls")),
]
