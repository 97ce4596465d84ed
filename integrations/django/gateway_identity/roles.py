"""A Django user's gateway roles: `user` for everyone, plus the roles of GATEWAY_ROLE_GROUPS etc."""
from .conf import setting


def role_map():
    """group name -> roles it gives."""
    by_group = {}
    for role, groups in setting("GATEWAY_ROLE_GROUPS").items():
        for group in [groups] if isinstance(groups, str) else groups:
            by_group.setdefault(group, set()).add(role)
    return by_group


def roles_of(user, by_group=None):
    """`user` first, then the mapped roles in alphabetical order (stable for tokens and tests)."""
    by_group = role_map() if by_group is None else by_group
    roles = set()
    if by_group:
        for name in user.groups.filter(name__in=list(by_group)).values_list("name", flat=True):
            roles |= by_group[name]
    if getattr(user, "is_staff", False):
        roles |= set(setting("GATEWAY_STAFF_ROLES"))
    if getattr(user, "is_superuser", False):
        roles |= set(setting("GATEWAY_SUPERUSER_ROLES"))
    roles.discard("user")
    return ["user"] + sorted(roles)


def profile(user, by_group=None):
    """The identity backend's user: id as a string, username, roles, active."""
    return {
        "id": str(user.pk),
        "username": user.get_username(),
        "roles": roles_of(user, by_group),
        "active": bool(user.is_active),
    }
