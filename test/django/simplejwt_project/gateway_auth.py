"""Trusting the gateway's X-Gateway-Assertion behind it (the gateway strips Authorization).

The assertion is a short-lived ES256 JWT from the gateway's keys, `aud` = this upstream's name,
carrying `sub` and `roles`; verified here with the gateway's JWKS, as simplejwt's JWK_URL does.
"""
import jwt
from django.conf import settings
from rest_framework import authentication, exceptions
from rest_framework_simplejwt.models import TokenUser

_jwks_client = None


class GatewayAssertionAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        token = request.META.get('HTTP_X_GATEWAY_ASSERTION')
        if not token:
            return None
        global _jwks_client
        conf = settings.GATEWAY_ASSERTION
        if _jwks_client is None:
            _jwks_client = jwt.PyJWKClient(conf['JWKS_URL'])
        try:
            key = _jwks_client.get_signing_key_from_jwt(token).key
            claims = jwt.decode(token, key, algorithms=['ES256'], audience=conf['AUDIENCE'],
                                issuer=conf['ISSUER'], options={'require': ['exp', 'sub']})
        except jwt.PyJWTError:
            raise exceptions.AuthenticationFailed('Invalid gateway assertion')
        return TokenUser({'user_id': claims['sub'], **claims}), claims

    def authenticate_header(self, request):
        return 'Bearer realm="api"'
