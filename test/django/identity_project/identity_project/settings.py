"""Settings of the test project: sqlite in IDENTITY_DB, the gateway's keys at GATEWAY_JWKS_URL."""
import os
import tempfile

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "identity-project-test-only-secret")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "rest_framework",
    "gateway_identity",
    "accounts",
]
MIDDLEWARE = ["django.middleware.security.SecurityMiddleware"]
ROOT_URLCONF = "identity_project.urls"
WSGI_APPLICATION = "identity_project.wsgi.application"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("IDENTITY_DB", os.path.join(tempfile.gettempdir(), "identity_project.sqlite3")),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
LOGGING = {"version": 1, "disable_existing_loggers": False, "handlers": {"console": {"class": "logging.StreamHandler"}},
           "loggers": {"gateway_identity": {"handlers": ["console"], "level": "WARNING"}}}

# The adapter (integrations/django/README.md, step 2).
GATEWAY_JWKS_URL = os.environ.get("GATEWAY_JWKS_URL", "http://127.0.0.1:8080/.well-known/jwks.json")
GATEWAY_ISSUER = os.environ.get("GATEWAY_ISSUER", "auth-gateway")
GATEWAY_ROLE_GROUPS = {"admin": "gateway-admins"}

# The project as it was before the gateway: djangorestframework-simplejwt issuing HS256 tokens, so the
# end-to-end test can take a refresh token of "the old service" to the gateway's cut-over exchange.
SIMPLE_JWT = {"ALGORITHM": "HS256", "SIGNING_KEY": os.environ.get("LEGACY_SIMPLEJWT_KEY", SECRET_KEY)}
REST_FRAMEWORK = {"DEFAULT_AUTHENTICATION_CLASSES": [], "DEFAULT_PERMISSION_CLASSES": []}
