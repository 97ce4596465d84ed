from django.urls import include, path
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

urlpatterns = [
    # The adapter (integrations/django/README.md, step 3).
    path("", include("gateway_identity.urls")),
    # The old service's simplejwt routes (what the gateway replaces; used by the cut-over test).
    path("api/token/", TokenObtainPairView.as_view()),
    path("api/token/refresh/", TokenRefreshView.as_view()),
]
