"""
The identity backend API (docs/identity-backend.md) and the users upstream's read routes.
Every view answers only with a valid gateway assertion; the internal calls also need the scope
naming them. Errors are problem+json with a stable `code`, as the gateway's OpenAPI document says.
"""
import datetime
import json
import logging
import re
from functools import wraps

from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import update_last_login
from django.core.exceptions import RequestDataTooBig, ValidationError
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .assertion import AssertionRefused, verify_assertion
from .models import SecondFactor
from .roles import profile, role_map, roles_of

log = logging.getLogger("gateway_identity")

ASSERTION_HEADER = "HTTP_X_GATEWAY_ASSERTION"
TITLES = {
    "invalid_request": (400, "Invalid request"),
    "invalid_credentials": (401, "Invalid credentials"),
    "gateway_assertion_required": (401, "Gateway assertion required"),
    "forbidden": (403, "Forbidden"),
    "not_found": (404, "Not found"),
}


def problem(code):
    status, title = TITLES[code]
    return JsonResponse(
        {"type": f"urn:auth-gateway:problem:{code}", "title": title, "status": status, "code": code},
        status=status,
        content_type="application/problem+json",
    )


def gateway_only(scope=None):
    """
    Requires a valid assertion. `scope`: the internal call's scope (exactly); None: a proxied
    request of a user (an assertion without `scope` and without `client_id`).
    """
    def decorate(view):
        @csrf_exempt
        @never_cache
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            try:
                claims = verify_assertion(request.META.get(ASSERTION_HEADER))
            except AssertionRefused as e:
                log.warning("gateway assertion refused on %s: %s", request.path, e)
                return problem("gateway_assertion_required")
            if scope is not None and claims.get("scope") != scope:
                return problem("forbidden")
            if scope is None and ("scope" in claims or "client_id" in claims):
                return problem("forbidden")
            request.gateway_claims = claims
            return view(request, *args, **kwargs)
        return wrapper
    return decorate


def find_user(user_id):
    """The user of a string id, or None (an id that cannot be a primary key is no user)."""
    User = get_user_model()
    try:
        pk = User._meta.pk.to_python(user_id)
    except (ValidationError, ValueError, TypeError):
        return None
    try:
        return User._default_manager.filter(pk=pk).first()
    except (ValueError, TypeError):
        return None


@gateway_only(scope="credentials:check")
@require_POST
def check_credentials(request):
    try:
        body = json.loads(request.body)
    except (RequestDataTooBig, ValueError, RecursionError):
        return problem("invalid_request")
    if not isinstance(body, dict) or not isinstance(body.get("username"), str) or not isinstance(body.get("password"), str):
        return problem("invalid_request")
    username, password = body["username"], body["password"]
    if "\x00" in username:
        # No database stores such a name (PostgreSQL would raise): an unknown user, at the same cost.
        make_password(password)
        return problem("invalid_credentials")
    # authenticate() runs the project's backends and hashers. ModelBackend hashes the password
    # even for an unknown user, and checks the password before is_active: all three failures
    # cost about the same and give the same answer.
    user = authenticate(request, username=username, password=password)
    if user is None or not user.is_active:
        return problem("invalid_credentials")
    if any(f.name == "last_login" for f in user._meta.concrete_fields):
        update_last_login(None, user)
    identity = profile(user)
    del identity["active"]
    return JsonResponse(identity)


@gateway_only(scope="users:read")
@require_GET
def lookup_user(request, user_id):
    user = find_user(user_id)
    if user is None:
        return problem("not_found")
    return JsonResponse(profile(user))


@gateway_only(scope="users:read")
@require_GET
def lookup_username(request):
    """GET /internal/users?username=NAME: the user the credential check would match (the admin search)."""
    username = request.GET.get("username", "")
    if username == "" or "\x00" in username:
        return problem("invalid_request")
    User = get_user_model()
    try:
        # ModelBackend finds users this way: the username as authenticate() would match it.
        user = User._default_manager.get_by_natural_key(username)
    except User.DoesNotExist:
        return problem("not_found")
    return JsonResponse(profile(user))


FACTOR_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
FACTOR_TYPES = {"totp", "webauthn", "recovery_codes"}
FACTOR_STATUSES = {"pending", "active"}
MAX_FACTOR_DATA = 16 * 1024


@gateway_only(scope="factors:read")
@require_GET
def list_factors(request, user_id):
    """GET /internal/users/{id}/factors: the second-factor records the gateway stored (docs/mfa.md)."""
    user = find_user(user_id)
    if user is None:
        return problem("not_found")
    return JsonResponse({"factors": [f.as_record() for f in SecondFactor.objects.filter(user=user)]})


def parse_factor(raw):
    """A PUT body as model fields, or None when it is not one."""
    try:
        body = json.loads(raw)
    except (RequestDataTooBig, ValueError, RecursionError):
        return None
    if not isinstance(body, dict) or set(body) != {"type", "status", "created_at", "data"}:
        return None
    if body["type"] not in FACTOR_TYPES or body["status"] not in FACTOR_STATUSES:
        return None
    data = body["data"]
    if not isinstance(data, str) or not 0 < len(data) <= MAX_FACTOR_DATA:
        return None
    created = parse_datetime(body["created_at"]) if isinstance(body["created_at"], str) else None
    if created is None:
        return None
    if timezone.is_naive(created):
        created = timezone.make_aware(created, datetime.timezone.utc)
    return {"type": body["type"], "status": body["status"], "created_at": created, "data": data}


@gateway_only(scope="factors:write")
@require_http_methods(["PUT", "DELETE"])
def one_factor(request, user_id, factor_id):
    """PUT (create or replace) and DELETE /internal/users/{id}/factors/{factor_id}."""
    if request.method == "DELETE":
        deleted, _ = SecondFactor.objects.filter(user_id=getattr(find_user(user_id), "pk", None), factor_id=factor_id).delete()
        return HttpResponse(status=204) if deleted else problem("not_found")
    user = find_user(user_id)
    if user is None:
        return problem("not_found")
    fields = parse_factor(request.body) if FACTOR_ID.match(factor_id) else None
    if fields is None:
        return problem("invalid_request")
    factor, _ = SecondFactor.objects.update_or_create(user=user, factor_id=factor_id, defaults=fields)
    return JsonResponse(factor.as_record())


def is_admin(request):
    roles = request.gateway_claims.get("roles")
    return isinstance(roles, list) and "admin" in roles


@gateway_only()
@require_GET
def me(request):
    user = find_user(request.gateway_claims["sub"])
    if user is None:
        return problem("not_found")
    return JsonResponse(profile(user))


@gateway_only()
@require_GET
def list_users(request):
    if not is_admin(request):
        return problem("forbidden")
    by_group = role_map()
    User = get_user_model()
    users = User._default_manager.order_by("pk").prefetch_related("groups")[:1000]
    return JsonResponse({"users": [profile(u, by_group) for u in users]})


@gateway_only()
@require_GET
def user_detail(request, user_id):
    if not is_admin(request):
        return problem("forbidden")
    user = find_user(user_id)
    if user is None:
        return problem("not_found")
    return JsonResponse(profile(user))


__all__ = ["check_credentials", "lookup_user", "me", "list_users", "user_detail", "roles_of"]
