"""
Unit tests of the adapter, run by Django's test runner in any project that installs it
(`manage.py test gateway_identity`). The gateway's JWKS is served by a real local HTTP server.
"""
import json
import logging
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest import mock

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import PBKDF2PasswordHasher, get_hasher
from django.contrib.auth.models import Group
from django.test import TestCase, override_settings
from jwt.algorithms import ECAlgorithm

from . import assertion


def new_key():
    private = ec.generate_private_key(ec.SECP256R1())
    kid = uuid.uuid4().hex
    public = json.loads(ECAlgorithm.to_jwk(private.public_key()))
    public.update(kid=kid, alg="ES256", use="sig")
    return private, kid, public


class JwksServer:
    """The gateway's /.well-known/jwks.json, counting fetches."""

    def __init__(self, jwks):
        self.jwks = jwks
        self.fetches = 0
        self.failing = False
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.fetches += 1
                body = json.dumps(outer.jwks).encode()
                self.send_response(503 if outer.failing else 200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


PASSWORD = "correct horse battery staple"


class FastPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """Django's default hasher with fewer rounds: the tests count hashing, they need not pay for it."""
    iterations = 1000


class AdapterTests(TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.private, cls.kid, public = new_key()
        cls.jwks = JwksServer({"keys": [public]})
        cls.settings_override = override_settings(
            GATEWAY_JWKS_URL=cls.jwks.url,
            GATEWAY_ISSUER="test-gateway",
            GATEWAY_ROLE_GROUPS={"admin": "ops", "auditor": ["audit", "ops"]},
            GATEWAY_STAFF_ROLES=["staff"],
            GATEWAY_JWKS_COOLDOWN=3600,
            PASSWORD_HASHERS=["gateway_identity.tests.FastPBKDF2PasswordHasher"],
        )
        cls.settings_override.enable()
        # Refusals are logged as warnings; the test that checks them captures them with assertLogs.
        logging.getLogger("gateway_identity").setLevel(logging.ERROR)

    @classmethod
    def tearDownClass(cls):
        cls.settings_override.disable()
        logging.getLogger("gateway_identity").setLevel(logging.NOTSET)
        cls.jwks.close()
        super().tearDownClass()

    def setUp(self):
        User = get_user_model()
        self.alice = User.objects.create_user("alice", password=PASSWORD)
        self.carol = User.objects.create_user("carol", password=PASSWORD, is_active=False)
        self.root = User.objects.create_user("root", password=PASSWORD, is_staff=True)
        self.root.groups.add(Group.objects.create(name="ops"))

    def token(self, scope=None, key=None, kid=None, alg="ES256", lifetime=60, **claims):
        now = int(time.time())
        payload = {"iss": "test-gateway", "aud": "users", "sub": "test-gateway", "iat": now, "exp": now + lifetime, "jti": uuid.uuid4().hex}
        if scope is not None:
            payload["scope"] = scope
        payload.update(claims)
        payload = {k: v for k, v in payload.items() if v is not None}
        return jwt.encode(payload, key or self.private, algorithm=alg, headers={"kid": kid or self.kid})

    def check(self, body, token="default", raw=None):
        headers = {} if token is None else {"HTTP_X_GATEWAY_ASSERTION": self.token("credentials:check") if token == "default" else token}
        data = raw if raw is not None else json.dumps(body)
        return self.client.post("/internal/credentials/check", data=data, content_type="application/json", **headers)

    def assertProblem(self, res, status, code):
        self.assertEqual(res.status_code, status, res.content)
        self.assertEqual(res["content-type"], "application/problem+json")
        self.assertEqual(res.json()["code"], code)
        self.assertEqual(res.json()["status"], status)

    def test_right_password(self):
        res = self.check({"username": "alice", "password": PASSWORD})
        self.assertEqual(res.status_code, 200)
        self.assertEqual(res.json(), {"id": str(self.alice.pk), "username": "alice", "roles": ["user"]})
        self.assertEqual(res["cache-control"], "max-age=0, no-cache, no-store, must-revalidate, private")
        self.alice.refresh_from_db()
        self.assertIsNotNone(self.alice.last_login)

    def test_roles_from_groups_and_staff(self):
        res = self.check({"username": "root", "password": PASSWORD})
        self.assertEqual(res.json()["roles"], ["user", "admin", "auditor", "staff"])

    def test_failures_are_alike(self):
        answers = [
            self.check({"username": "alice", "password": "wrong"}),
            self.check({"username": "nobody", "password": PASSWORD}),
            self.check({"username": "carol", "password": PASSWORD}),
            self.check({"username": "nul\x00name", "password": PASSWORD}),
        ]
        for res in answers:
            self.assertProblem(res, 401, "invalid_credentials")
        self.assertEqual(len({res.content for res in answers}), 1, "one body for every failure")

    def test_unknown_and_inactive_users_cost_a_hash(self):
        hasher = type(get_hasher())
        for username in ("nobody", "carol", "nul\x00name"):
            with mock.patch.object(hasher, "encode", wraps=get_hasher().encode) as encode, \
                    mock.patch.object(hasher, "verify", wraps=get_hasher().verify) as verify:
                self.check({"username": username, "password": PASSWORD})
            self.assertGreaterEqual(encode.call_count + verify.call_count, 1, username)

    @override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher", "gateway_identity.tests.FastPBKDF2PasswordHasher"])
    def test_the_projects_hashers(self):
        User = get_user_model()
        dave = User.objects.create_user("dave", password=PASSWORD)
        self.assertTrue(dave.password.startswith("pbkdf2_sha1$"))
        self.assertEqual(self.check({"username": "dave", "password": PASSWORD}).status_code, 200)
        # alice's hash was made by the other (still listed) hasher: accepted too.
        self.assertEqual(self.check({"username": "alice", "password": PASSWORD}).status_code, 200)

    def test_malformed_bodies(self):
        for raw in ['{"username": "alice"', "[]", '"x"', "null", json.dumps({"username": "alice"}),
                    json.dumps({"username": "alice", "password": 1}), json.dumps({"username": ["alice"], "password": PASSWORD}),
                    "[" * 100000, b"\xff\xfe"]:
            self.assertProblem(self.check(None, raw=raw), 400, "invalid_request")
        # The same 400 for a known and an unknown user.
        known = self.check({"username": "alice", "password": None})
        unknown = self.check({"username": "nobody", "password": None})
        self.assertEqual(known.content, unknown.content)

    def test_nothing_without_a_valid_assertion(self):
        other_private, other_kid, _ = new_key()
        creds = {"username": "alice", "password": PASSWORD}
        refused = {
            "none": None,
            "garbage": "not.a.jwt",
            "another key, known kid": self.token("credentials:check", key=other_private),
            "another key, unknown kid": self.token("credentials:check", key=other_private, kid=other_kid),
            "another issuer": self.token("credentials:check", iss="someone-else"),
            "another audience": self.token("credentials:check", aud="orders"),
            "expired": self.token("credentials:check", iat=int(time.time()) - 200, exp=int(time.time()) - 100),
            "lives too long": self.token("credentials:check", lifetime=3600),
            "no exp": self.token("credentials:check", exp=None),
            "no jti": self.token("credentials:check", jti=None),
            "alg none": jwt.encode({"iss": "test-gateway", "aud": "users", "sub": "x", "iat": int(time.time()), "exp": int(time.time()) + 60, "jti": "j", "scope": "credentials:check"}, None, algorithm="none"),
            "HS256 with the public key": jwt.encode({"iss": "test-gateway", "aud": "users", "sub": "x", "iat": int(time.time()), "exp": int(time.time()) + 60, "jti": "j", "scope": "credentials:check"}, json.dumps(self.jwks.jwks["keys"][0]), algorithm="HS256", headers={"kid": self.kid}),
        }
        with self.assertLogs("gateway_identity", "WARNING") as logged:
            self._refused_everywhere(creds, refused)
        self.assertTrue(any("assertion refused" in line for line in logged.output), logged.output)
        self.assertFalse(any(PASSWORD in line for line in logged.output), "no password in the log")

    def _refused_everywhere(self, creds, refused):
        for name, token in refused.items():
            with self.subTest(name):
                self.assertProblem(self.check(creds, token=token), 401, "gateway_assertion_required")
                res = self.client.get(f"/internal/users/{self.alice.pk}", **({} if token is None else {"HTTP_X_GATEWAY_ASSERTION": token}))
                self.assertProblem(res, 401, "gateway_assertion_required")
        self.assertProblem(self.client.get("/internal/credentials/check"), 401, "gateway_assertion_required")

    def test_scope_per_call(self):
        creds = {"username": "alice", "password": PASSWORD}
        self.assertProblem(self.check(creds, token=self.token("users:read")), 403, "forbidden")
        self.assertProblem(self.check(creds, token=self.token()), 403, "forbidden")
        res = self.client.get(f"/internal/users/{self.alice.pk}", HTTP_X_GATEWAY_ASSERTION=self.token("credentials:check"))
        self.assertProblem(res, 403, "forbidden")

    def test_lookup(self):
        read = {"HTTP_X_GATEWAY_ASSERTION": self.token("users:read")}
        self.assertEqual(self.client.get(f"/internal/users/{self.alice.pk}", **read).json(),
                         {"id": str(self.alice.pk), "username": "alice", "roles": ["user"], "active": True})
        self.assertEqual(self.client.get(f"/internal/users/{self.carol.pk}", **read).json()["active"], False)
        self.assertEqual(self.client.get(f"/internal/users/{self.root.pk}", **read).json()["roles"], ["user", "admin", "auditor", "staff"])
        for missing in ("987654", "abc", "1.5", "%00"):
            self.assertProblem(self.client.get(f"/internal/users/{missing}", **read), 404, "not_found")

    def test_lookup_by_username(self):
        read = {"HTTP_X_GATEWAY_ASSERTION": self.token("users:read")}
        self.assertEqual(self.client.get("/internal/users", {"username": "alice"}, **read).json(),
                         {"id": str(self.alice.pk), "username": "alice", "roles": ["user"], "active": True})
        self.assertEqual(self.client.get("/internal/users", {"username": "carol"}, **read).json()["active"], False)
        self.assertProblem(self.client.get("/internal/users", {"username": "nobody"}, **read), 404, "not_found")
        for bad in ({}, {"username": ""}, {"username": "a\x00b"}):
            self.assertProblem(self.client.get("/internal/users", bad, **read), 400, "invalid_request")
        other = {"HTTP_X_GATEWAY_ASSERTION": self.token("credentials:check")}
        self.assertProblem(self.client.get("/internal/users", {"username": "alice"}, **other), 403, "forbidden")
        self.assertProblem(self.client.get("/internal/users", {"username": "alice"}), 401, "gateway_assertion_required")

    def test_users_routes(self):
        as_user = lambda user, roles: {"HTTP_X_GATEWAY_ASSERTION": self.token(sub=str(user.pk), roles=roles, username=user.username)}
        me = self.client.get("/api/users/me", **as_user(self.alice, ["user"]))
        self.assertEqual(me.json()["username"], "alice")
        self.assertProblem(self.client.get("/api/users", **as_user(self.alice, ["user"])), 403, "forbidden")
        listed = self.client.get("/api/users", **as_user(self.root, ["user", "admin"]))
        self.assertEqual([u["username"] for u in listed.json()["users"]], ["alice", "carol", "root"])
        self.assertEqual(self.client.get(f"/api/users/{self.carol.pk}", **as_user(self.root, ["admin"])).json()["active"], False)
        # An identity call's assertion or a machine client's is no user's.
        self.assertProblem(self.client.get("/api/users", HTTP_X_GATEWAY_ASSERTION=self.token("users:read", roles=["admin"])), 403, "forbidden")
        self.assertProblem(self.client.get("/api/users", HTTP_X_GATEWAY_ASSERTION=self.token(client_id="c1", roles=["admin"])), 403, "forbidden")
        self.assertProblem(self.client.get("/api/users/me"), 401, "gateway_assertion_required")

    def test_keys_are_cached_and_unknown_kids_do_not_refetch(self):
        assertion._clients.clear()
        before = self.jwks.fetches
        for _ in range(5):
            self.assertEqual(self.check({"username": "alice", "password": "wrong"}).status_code, 401)
        self.assertEqual(self.jwks.fetches - before, 1, "one fetch for five calls")
        other_private, other_kid, _ = new_key()
        for _ in range(5):
            self.check({}, token=self.token("credentials:check", key=other_private, kid=other_kid))
        self.assertEqual(self.jwks.fetches - before, 1, "unknown kids within the cooldown cause no fetch")

    def test_a_new_gateway_key_is_fetched(self):
        assertion._clients.clear()
        with override_settings(GATEWAY_JWKS_COOLDOWN=0):
            self.assertEqual(self.check({"username": "alice", "password": PASSWORD}).status_code, 200)
            new_private, new_kid, new_public = new_key()
            self.jwks.jwks = {"keys": [new_public] + self.jwks.jwks["keys"]}
            try:
                res = self.check({"username": "alice", "password": PASSWORD}, token=self.token("credentials:check", key=new_private, kid=new_kid))
                self.assertEqual(res.status_code, 200)
            finally:
                self.jwks.jwks = {"keys": self.jwks.jwks["keys"][1:]}

    def test_the_last_key_set_outlives_a_gateway_outage(self):
        assertion._clients.clear()
        self.assertEqual(self.check({"username": "alice", "password": PASSWORD}).status_code, 200)
        self.jwks.failing = True
        try:
            assertion.gateway_keys().jwk_set_cache.put(None)  # the cached set expired
            with self.assertLogs("gateway_identity", "WARNING"):
                self.assertEqual(self.check({"username": "alice", "password": PASSWORD}).status_code, 200)
        finally:
            self.jwks.failing = False

    def test_the_last_key_set_is_not_trusted_forever(self):
        assertion._clients.clear()
        with override_settings(GATEWAY_JWKS_COOLDOWN=0):
            self.assertEqual(self.check({"username": "alice", "password": PASSWORD}).status_code, 200)
            keys = assertion.gateway_keys()
            self.jwks.failing = True
            try:
                # Fetched longer ago than the lifespan plus GATEWAY_JWKS_MAX_STALE, and the gateway away.
                keys.last_good_at -= keys.max_age + 1
                with self.assertLogs("gateway_identity", "WARNING"):
                    self.assertProblem(self.check({"username": "alice", "password": PASSWORD}), 401, "gateway_assertion_required")
                self.jwks.failing = False
                self.assertEqual(self.check({"username": "alice", "password": PASSWORD}).status_code, 200, "trusted again once fetched")
            finally:
                self.jwks.failing = False

    def test_system_checks(self):
        from .conf import check_settings

        self.assertEqual(check_settings(None), [])
        with override_settings(GATEWAY_JWKS_URL=None, GATEWAY_ROLE_GROUPS={"admin": 3}):
            self.assertEqual([e.id for e in check_settings(None)], ["gateway_identity.E001", "gateway_identity.E002"])

    @override_settings(GATEWAY_JWKS_URL="http://127.0.0.1:9/.well-known/jwks.json")
    def test_keys_unreachable(self):
        self.assertProblem(self.check({"username": "alice", "password": PASSWORD}), 401, "gateway_assertion_required")


class FactorRecordTests(AdapterTests):
    """The second-factor records (docs/identity-backend.md): stored as given, per user, by scope."""

    RECORD = {"type": "totp", "status": "active", "created_at": "2026-01-01T00:00:00Z", "data": "v1.c2VhbGVk"}

    def factors(self, user, scope="factors:read"):
        return self.client.get(f"/internal/users/{user.pk}/factors", HTTP_X_GATEWAY_ASSERTION=self.token(scope))

    def put(self, user, factor_id, body, scope="factors:write"):
        return self.client.put(f"/internal/users/{user.pk}/factors/{factor_id}", data=json.dumps(body), content_type="application/json", HTTP_X_GATEWAY_ASSERTION=self.token(scope))

    def delete(self, user, factor_id, scope="factors:write"):
        return self.client.delete(f"/internal/users/{user.pk}/factors/{factor_id}", HTTP_X_GATEWAY_ASSERTION=self.token(scope))

    def test_store_list_replace_delete(self):
        from .models import SecondFactor

        self.assertEqual(self.factors(self.alice).json(), {"factors": []})
        res = self.put(self.alice, "f1", self.RECORD)
        self.assertEqual(res.status_code, 200, res.content)
        self.assertEqual(res.json(), {"id": "f1", **self.RECORD})
        self.assertEqual(self.factors(self.alice).json(), {"factors": [{"id": "f1", **self.RECORD}]})
        self.assertEqual(self.factors(self.root).json(), {"factors": []}, "per user")
        replaced = self.put(self.alice, "f1", {**self.RECORD, "data": "v1.b3RoZXI"})
        self.assertEqual(replaced.json()["data"], "v1.b3RoZXI")
        self.assertEqual(SecondFactor.objects.filter(user=self.alice).count(), 1, "replaced, not added")
        self.assertEqual(self.delete(self.alice, "f1").status_code, 204)
        self.assertProblem(self.delete(self.alice, "f1"), 404, "not_found")
        self.assertEqual(self.factors(self.alice).json(), {"factors": []})

    def test_refusals(self):
        self.assertProblem(self.factors(self.alice, scope="users:read"), 403, "forbidden")
        self.assertProblem(self.put(self.alice, "f1", self.RECORD, scope="factors:read"), 403, "forbidden")
        self.assertProblem(self.delete(self.alice, "f1", scope="factors:read"), 403, "forbidden")
        self.assertProblem(self.put(self.alice, "f1", {**self.RECORD, "type": "sms"}), 400, "invalid_request")
        self.assertProblem(self.put(self.alice, "f1", {**self.RECORD, "extra": 1}), 400, "invalid_request")
        self.assertProblem(self.put(self.alice, "bad id!", self.RECORD), 400, "invalid_request")
        self.assertProblem(self.client.get("/internal/users/987654/factors", HTTP_X_GATEWAY_ASSERTION=self.token("factors:read")), 404, "not_found")
        res = self.client.get(f"/internal/users/{self.alice.pk}/factors")
        self.assertProblem(res, 401, "gateway_assertion_required")

    def test_deleting_the_user_deletes_the_factors(self):
        from .models import SecondFactor

        self.put(self.alice, "f1", self.RECORD)
        self.alice.delete()
        self.assertEqual(SecondFactor.objects.count(), 0)

    def test_migrations_match_the_model(self):
        from django.core.management import call_command

        # --check exits (SystemExit) when the model and the migrations differ.
        call_command("makemigrations", "gateway_identity", "--check", "--dry-run", verbosity=0)
