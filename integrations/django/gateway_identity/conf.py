"""The adapter's settings, read at call time (so override_settings and per-deployment values work)."""
from django.conf import settings
from django.core import checks

DEFAULTS = {
    # Where the gateway publishes its public keys (required).
    "GATEWAY_JWKS_URL": None,
    # The gateway's JWT_ISSUER: the assertion's required `iss`.
    "GATEWAY_ISSUER": "auth-gateway",
    # The assertion's required `aud`: the gateway's name for this upstream.
    "GATEWAY_AUDIENCE": "users",
    # role name -> Django group name (or a list of group names): members get that role.
    "GATEWAY_ROLE_GROUPS": {},
    # Roles given to every is_staff / is_superuser user (opt-in; empty by default).
    "GATEWAY_STAFF_ROLES": [],
    "GATEWAY_SUPERUSER_ROLES": [],
    # Seconds the fetched JWKS is trusted; an unknown kid refetches it at most once per cooldown.
    "GATEWAY_JWKS_LIFESPAN": 300,
    "GATEWAY_JWKS_COOLDOWN": 30,
    # Seconds a JWKS fetch may take.
    "GATEWAY_JWKS_TIMEOUT": 2,
    # Seconds past GATEWAY_JWKS_LIFESPAN the last key set stays trusted while the gateway's JWKS
    # cannot be fetched (five assertion lifetimes); then every assertion is refused.
    "GATEWAY_JWKS_MAX_STALE": 300,
}


def setting(name):
    return getattr(settings, name, DEFAULTS[name])


def check_settings(app_configs, **kwargs):
    errors = []
    url = setting("GATEWAY_JWKS_URL")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        errors.append(checks.Error(
            "GATEWAY_JWKS_URL must be the gateway's JWKS URL (http:// or https://)",
            hint="e.g. GATEWAY_JWKS_URL = 'https://gateway.example/.well-known/jwks.json'",
            id="gateway_identity.E001",
        ))
    groups = setting("GATEWAY_ROLE_GROUPS")
    if not isinstance(groups, dict) or not all(
        isinstance(role, str) and (isinstance(g, str) or (isinstance(g, (list, tuple)) and all(isinstance(x, str) for x in g)))
        for role, g in groups.items()
    ):
        errors.append(checks.Error(
            "GATEWAY_ROLE_GROUPS must map role names to a Django group name or a list of them",
            id="gateway_identity.E002",
        ))
    return errors
