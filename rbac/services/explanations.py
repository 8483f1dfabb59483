"""Explain (RB-8): the decision `check()` makes, with the rule chain behind it, for people."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.exceptions import ObjectDoesNotExist
from django.utils.translation import gettext as _

from rbac.models import Role
from rbac.registries import (
    ENTITY_PREFIX,
    EntityOperation,
    UnknownOperation,
    entity_key_of,
    entity_records,
    parse_entity_operation,
    validate_operation,
)
from rbac.scopes import scope_action, scope_kind
from rbac.services.checks import is_active
from rbac.services.compute import Effective
from rbac.services.effective_cache import effective


@dataclass
class Step:
    """One link of the rule chain: `ok` True (grants), False (refuses) or None (information)."""

    kind: str
    message: str
    ok: bool | None = None

    def as_dict(self) -> dict:
        return {"kind": self.kind, "message": self.message, "ok": self.ok}


@dataclass
class Explanation:
    user: str
    operation: str
    record: str | None
    allowed: bool = False
    steps: list[Step] = field(default_factory=list)

    def add(self, kind: str, message: str, ok: bool | None = None) -> None:
        self.steps.append(Step(kind, message, ok))

    def as_dict(self) -> dict:
        return {"user": self.user, "operation": self.operation, "record": self.record, "allowed": self.allowed,
                "steps": [step.as_dict() for step in self.steps]}


def _describe_source(eff: Effective, role_key: str, depth: int = 0) -> str:
    parts = []
    for source in eff.role_sources.get(role_key, ()):
        if source.how == "direct":
            parts.append(_("assigned directly"))
        elif source.how == "member":
            parts.append(_("member of department %(department)s") % {"department": source.via})
        elif source.how == "manager":
            parts.append(_("manager of department %(department)s") % {"department": source.via})
        elif source.how == "inherited":
            text = _("inherited from role %(role)s") % {"role": source.via}
            if depth < 5:
                text += f" ({_describe_source(eff, source.via, depth + 1)})"
            parts.append(text)
    return "; ".join(parts)


def explain(user, operation: str, obj=None) -> Explanation:
    """Return the decision `check(user, operation, obj)` makes, with the rule chain behind it.

    Costs queries (one per scope tested against the record): meant for people, not for paths
    that run on every request.
    """
    parsed = validate_operation(operation)
    username = user.get_username() if user is not None and getattr(user, "pk", None) else "-"
    result = Explanation(user=username, operation=operation, record=str(obj.pk) if obj is not None else None)
    if not is_active(user):
        result.add("user", _("The user is inactive or anonymous: nothing is allowed."), False)
        return result
    if user.is_superuser:
        result.add("user", _("%(user)s is a superuser: everything is allowed.") % {"user": username}, True)
        result.allowed = True
        return result
    eff = effective(user)
    if eff.roles:
        result.add("roles", _("Roles: %(roles)s.") % {"roles": "; ".join(
            f"{key} ({_describe_source(eff, key)})" for key in sorted(eff.roles))})
    else:
        result.add("roles", _("%(user)s has no role.") % {"user": username}, None)
    if eff.is_tenant_admin:
        result.add("role", _("Role %(role)s (%(source)s) makes the user an administrator of the tenant: "
                             "everything is allowed.") % {"role": Role.TENANT_ADMIN,
                                                           "source": _describe_source(eff, Role.TENANT_ADMIN)}, True)
        result.allowed = True
        return result
    if parsed is None:
        granting = sorted(key for key, ops in eff.role_operations.items() if operation in ops)
        for key in granting:
            result.add("operation", _("Role %(role)s (%(source)s) grants %(operation)s.") % {
                "role": key, "source": _describe_source(eff, key), "operation": operation}, True)
        if not granting:
            result.add("operation", _("No role of the user grants %(operation)s.") % {"operation": operation}, False)
        result.allowed = bool(granting)
        result.add("decision", _("Allowed.") if result.allowed else _("Denied."), result.allowed)
        return result

    permission = parsed.permission
    granting = sorted(key for key, perms in eff.role_permissions.items() if permission in perms)
    for key in granting:
        result.add("permission", _("Role %(role)s (%(source)s) grants the permission %(permission)s.") % {
            "role": key, "source": _describe_source(eff, key), "permission": permission}, True)
    if permission in eff.other_perms:
        result.add("permission", _("The user or one of its non-role groups has the permission %(permission)s.")
                   % {"permission": permission}, True)
    has_perm = permission in eff.perms
    if not has_perm:
        result.add("permission", _("No role of the user grants the permission %(permission)s.")
                   % {"permission": permission}, False)

    in_scope = False
    if obj is not None:
        if entity_key_of(type(obj)) != parsed.entity_key:
            raise ValueError(f"{operation} does not apply to a {type(obj)._meta.model_name} record.")
        action = scope_action(parsed.action)
        specs = eff.scopes.get(parsed.entity_key, {}).get(action, ())
        if has_perm and not specs:
            result.add("scope", _("No data scope of the user's roles covers %(entity)s for %(action)s: "
                                  "no record is in scope.") % {"entity": parsed.entity_key, "action": action}, False)
        queryset = entity_records().records(type(obj)).filter(pk=obj.pk)
        for spec in specs if has_perm else ():
            kind = scope_kind(spec.kind)
            matched = spec.unconditional or queryset.filter(kind.q(spec, user, eff)).exists()
            in_scope = in_scope or matched
            if matched:
                result.add("scope", _("Record %(record)s matches the scope %(scope)s.") % {
                    "record": obj.pk, "scope": kind.describe(spec)}, True)
            else:
                result.add("scope", _("Record %(record)s is outside the scope %(scope)s.") % {
                    "record": obj.pk, "scope": kind.describe(spec)}, False)
        grants = _object_grants(user, parsed, obj)
        for grant in grants:
            result.add("grant", grant, True)
        if not grants:
            result.add("grant", _("No object grant on record %(record)s for %(action)s.") % {
                "record": obj.pk, "action": parsed.action}, None)
        result.allowed = (has_perm and in_scope) or bool(grants)
    else:
        result.allowed = has_perm
    columns = eff.columns.get(parsed.entity_key, {})
    if columns:
        result.add("columns", _("Column rules: %(rules)s.") % {
            "rules": ", ".join(f"{key}={rule}" for key, rule in sorted(columns.items()))}, None)
    result.add("decision", _("Allowed.") if result.allowed else _("Denied."), result.allowed)
    return result


def find_record(operation: str, record_id):
    """Return the record `record_id` of the entity an entity operation names (soft-deleted too).

    :raises UnknownOperation: if `operation` is not an entity operation.
    :raises ObjectDoesNotExist: if the entity is not published or has no such record.
    """
    parsed = parse_entity_operation(operation)
    if parsed is None:
        raise UnknownOperation(_("A record goes only with an entity operation, data.<entity>.<action>."))
    resource_type = entity_records()
    try:
        model = resource_type.get_model(parsed.entity_key)
    except LookupError:
        raise ObjectDoesNotExist(_("No entity %(entity)s is published.") % {"entity": parsed.entity_key}) from None
    try:
        return resource_type.records(model).get(pk=int(record_id))
    except (model.DoesNotExist, ValueError, TypeError):
        raise ObjectDoesNotExist(_("No %(entity)s record %(record)s.")
                                 % {"entity": parsed.entity_key, "record": record_id}) from None


def _object_grants(user, operation: EntityOperation, obj) -> list[str]:
    from guardian.models import GroupObjectPermission, UserObjectPermission

    lookups = {"content_type__app_label": ENTITY_PREFIX, "content_type__model": operation.entity_key,
               "permission__codename": f"{operation.action}_{operation.entity_key}", "object_pk": str(obj.pk)}
    messages = []
    if UserObjectPermission.objects.filter(user=user, **lookups).exists():
        messages.append(_("Record %(record)s is shared with the user for %(action)s.")
                        % {"record": obj.pk, "action": operation.action})
    for name in GroupObjectPermission.objects.filter(group__user=user, **lookups).values_list(
            "group__name", flat=True).order_by("group__name"):
        messages.append(_("Record %(record)s is shared with group %(group)s for %(action)s.")
                        % {"record": obj.pk, "group": name, "action": operation.action})
    return messages
