"""Settings of a stock simplejwt service; everything simplejwt does here comes from SIMPLE_JWT."""
import os

SIMPLEJWT_MODE = os.environ.get('SIMPLEJWT_MODE', 'gateway')
SECRET_KEY = os.environ.get('DJANGO_SECRET_KEY', 'test-only-django-secret-key')
DEBUG = False
ALLOWED_HOSTS = ['127.0.0.1', 'localhost']
ROOT_URLCONF = 'simplejwt_project.urls'
USE_TZ = True
INSTALLED_APPS = ['django.contrib.contenttypes', 'django.contrib.auth', 'rest_framework']
MIDDLEWARE = ['django.middleware.common.CommonMiddleware']
DATABASES = {'default': {'ENGINE': 'django.db.backends.sqlite3', 'NAME': os.environ.get('DJANGO_DB', ':memory:')}}
DEFAULT_AUTO_FIELD = 'django.db.models.AutoField'
LOGGING = {'version': 1, 'disable_existing_loggers': False}

if SIMPLEJWT_MODE == 'gateway':
    # The gateway signs; this service only verifies, with the gateway's public keys.
    SIMPLE_JWT = {
        'ALGORITHM': 'ES256',
        'JWK_URL': os.environ['GATEWAY_JWKS_URL'],
        'AUDIENCE': os.environ.get('JWT_AUDIENCE', 'api'),
        'ISSUER': os.environ.get('JWT_ISSUER', 'auth-gateway'),
    }
    GATEWAY_ASSERTION = {
        'JWKS_URL': os.environ['GATEWAY_JWKS_URL'],
        'AUDIENCE': os.environ.get('GATEWAY_ASSERTION_AUDIENCE', 'orders'),
        'ISSUER': os.environ.get('JWT_ISSUER', 'auth-gateway'),
    }
    AUTHENTICATION_CLASSES = [
        'rest_framework_simplejwt.authentication.JWTStatelessUserAuthentication',
        'simplejwt_project.gateway_auth.GatewayAssertionAuthentication',
    ]
else:
    # The old system: simplejwt's defaults, HS256 with its own signing key.
    SIMPLE_JWT = {'ALGORITHM': 'HS256', 'SIGNING_KEY': os.environ['LEGACY_SIGNING_KEY']}
    AUTHENTICATION_CLASSES = ['rest_framework_simplejwt.authentication.JWTAuthentication']

REST_FRAMEWORK = {
    'DEFAULT_AUTHENTICATION_CLASSES': AUTHENTICATION_CLASSES,
    'DEFAULT_PERMISSION_CLASSES': ['rest_framework.permissions.IsAuthenticated'],
}
