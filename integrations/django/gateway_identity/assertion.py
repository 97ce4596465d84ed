"""
Verifies the gateway's X-Gateway-Assertion: an ES256 JWS from the gateway's keys (JWKS fetched from
GATEWAY_JWKS_URL, cached), `iss` GATEWAY_ISSUER, `aud` GATEWAY_AUDIENCE, `exp` at most 60 s after
`iat`. Anything else is refused; nothing from the token's header but `kid` is trusted.
"""
import json
import threading
import time
import urllib.request

import logging

import jwt
from jwt import PyJWKClient, PyJWKSet
from jwt.exceptions import PyJWKClientError

from .conf import setting

ALGORITHM = "ES256"
MAX_LIFETIME = 60
LEEWAY = 5
MAX_TOKEN_LENGTH = 8192

log = logging.getLogger("gateway_identity")


class AssertionRefused(Exception):
    """No valid assertion. The reason goes to the log only."""


class GatewayKeys(PyJWKClient):
    """
    PyJWKClient with what python3-jwt 2.6 lacks: a fetch timeout, and a cooldown so that tokens
    with unknown kids cannot make the adapter refetch the JWKS on every request. While the gateway
    cannot be reached, its last key set stays trusted, but not forever: at most `max_stale` seconds
    past its lifespan (a key the gateway has retired, or one taken from it, must stop working).
    """

    def __init__(self, uri, lifespan, cooldown, timeout, max_stale):
        super().__init__(uri, cache_keys=False, cache_jwk_set=True, lifespan=lifespan)
        self.cooldown = cooldown
        self.timeout = timeout
        self.max_age = lifespan + max_stale
        self.last_fetch = float("-inf")
        self.last_good = None
        self.last_good_at = None
        self.lock = threading.Lock()

    def too_old(self, now):
        return self.last_good_at is not None and now - self.last_good_at > self.max_age

    def fetch_data(self):
        now = self.last_fetch = time.monotonic()
        request = urllib.request.Request(self.uri, headers={"accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                data = json.load(response)
            PyJWKSet.from_dict(data)
        except Exception as e:  # network, timeout, not a JWKS
            if self.last_good is None or self.too_old(now):
                self.jwk_set_cache.put(None)
                raise PyJWKClientError(f"cannot fetch the gateway's JWKS: {e}") from e
            # The gateway is away: its last key set stays trusted, up to max_age after it was fetched.
            log.warning("cannot refresh the gateway's JWKS, keeping the last one: %s", e)
            self.jwk_set_cache.put(self.last_good)
            return self.last_good
        self.last_good = data
        self.last_good_at = now
        self.jwk_set_cache.put(data)
        return data

    def get_signing_key(self, kid):
        with self.lock:
            now = time.monotonic()
            if self.too_old(now):
                # The cached set outlived its bound: only a fresh fetch (once per cooldown) may answer.
                if now - self.last_fetch < self.cooldown:
                    raise PyJWKClientError("the gateway's JWKS could not be refreshed for too long")
                keys = self.get_signing_keys(refresh=True)
            else:
                keys = self.get_signing_keys()
            key = self.match_kid(keys, kid)
            if key is None and time.monotonic() - self.last_fetch >= self.cooldown:
                key = self.match_kid(self.get_signing_keys(refresh=True), kid)
        if key is None:
            raise PyJWKClientError("no key of the gateway has this kid")
        return key


_clients = {}
_clients_lock = threading.Lock()


def gateway_keys():
    """One cached key client per JWKS URL and settings, shared by the threads of a process."""
    key = (setting("GATEWAY_JWKS_URL"), setting("GATEWAY_JWKS_LIFESPAN"), setting("GATEWAY_JWKS_COOLDOWN"), setting("GATEWAY_JWKS_TIMEOUT"),
           setting("GATEWAY_JWKS_MAX_STALE"))
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = GatewayKeys(*key)
        return client


def verify_assertion(token):
    """The assertion's claims, or AssertionRefused."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise AssertionRefused("missing assertion")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as e:
        raise AssertionRefused(f"malformed assertion: {e}") from e
    if header.get("alg") != ALGORITHM or not isinstance(header.get("kid"), str):
        raise AssertionRefused("assertion not ES256 with a kid")
    try:
        key = gateway_keys().get_signing_key(header["kid"])
        claims = jwt.decode(
            token,
            key.key,
            algorithms=[ALGORITHM],
            audience=setting("GATEWAY_AUDIENCE"),
            issuer=setting("GATEWAY_ISSUER"),
            leeway=LEEWAY,
            options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
        )
    except (jwt.PyJWTError, PyJWKClientError) as e:
        raise AssertionRefused(f"assertion refused: {e}") from e
    iat, exp = claims["iat"], claims["exp"]
    if not isinstance(iat, (int, float)) or not isinstance(exp, (int, float)) or exp - iat > MAX_LIFETIME:
        raise AssertionRefused("assertion lives too long")
    if iat > time.time() + LEEWAY:
        raise AssertionRefused("assertion issued in the future")
    if not isinstance(claims["sub"], str):
        raise AssertionRefused("assertion sub is not a string")
    return claims
