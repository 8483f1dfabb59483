"""What a user may read, query and write of an entity's fields (RB-5): the one read path.

Every surface that shows values (API, admin lists and forms, history and diffs, exports,
`expand=`) and every way of choosing records by value (filters, ordering, search) asks
`column_access(user, model)`; the records service asks it before any write. So a rule set on
a role reaches them all, and nothing shows or infers a value the rule hides:

- hidden: absent; masked: `****1234`; neither can be filtered, ordered or searched by;
- read-only: shown, never written;
- a formula over a hidden (masked) field is hidden (masked) too, since it is computed from it;
- owner fields (those data scopes name, such as the scenario's `submitted_by`) are the
  server's: set to the acting user on create, and written only by those who may change
  every record of the entity (an unconditional change scope), tenant admins and superusers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from rbac import services
from rbac.models import ColumnRule
from rbac.registries import ENTITY_PREFIX, ResourceField, entity_records

HIDDEN, MASKED, READ_ONLY = ColumnRule.Rule.HIDDEN, ColumnRule.Rule.MASKED, ColumnRule.Rule.READ_ONLY
_UNREADABLE = (HIDDEN, MASKED)


@dataclass(frozen=True)
class ColumnAccess:
    """The column rules of one user on one entity, formulas and owner fields included."""

    rules: dict[str, str]
    """{field_key: "hidden" | "masked" | "read_only"}; fields without a rule are free."""
    owner_fields: frozenset[str] = frozenset()
    """Owner fields of the entity (whoever may write them or not)."""

    def rule(self, name: str) -> str | None:
        return self.rules.get(name)

    def is_hidden(self, name: str) -> bool:
        return self.rules.get(name) == HIDDEN

    def is_masked(self, name: str) -> bool:
        return self.rules.get(name) == MASKED

    def can_query(self, name: str) -> bool:
        """Whether records may be filtered, ordered or searched by the field: only if read in clear."""
        return self.rules.get(name) not in _UNREADABLE

    def can_write(self, name: str) -> bool:
        return name not in self.rules

    def unreadable(self) -> set[str]:
        return {name for name, rule in self.rules.items() if rule in _UNREADABLE}

    def present(self, values: dict | None) -> dict:
        """`values` ({field: value}) as the user may see them: hidden ones gone, masked ones masked."""
        shown = {}
        for name, value in (values or {}).items():
            rule = self.rules.get(name)
            if rule == HIDDEN:
                continue
            shown[name] = services.mask(value) if rule == MASKED and value not in (None, "") else value
        return shown


FREE = ColumnAccess(rules={})


def _formula_rules(fields: tuple[ResourceField, ...], rules: dict[str, str],
                   other_rule: Callable[[str], str | None]) -> dict[str, str]:
    """Formulas (and values read from related records) take the strictest rule of the fields they
    read (hidden over masked); `entity.field` names a field of another entity, ruled by `other_rule`."""
    derived = {}
    for field in fields:
        if field.key in rules or field.reads == frozenset():
            continue  # Ruled already, or read from no field.
        # A formula that cannot run (reads nothing known) shows nothing.
        read = {HIDDEN} if field.reads is None else {
            other_rule(name) if "." in name else rules.get(name) for name in field.reads}
        if HIDDEN in read:
            derived[field.key] = HIDDEN
        elif MASKED in read:
            derived[field.key] = MASKED
    return derived


def _other_rule(eff, name: str) -> str | None:
    """The rule of `entity.field`: hidden for whoever may not view every record of that entity.

    A value read from related records (a lookup, a rollup, a count, a formula over a relation) is
    computed over all of them, so a viewer whose scope shows only some (their own, their
    department's) would learn of the others through it: for them it is hidden too.
    """
    entity, _dot, field = name.partition(".")
    if not eff.has_perm(f"{ENTITY_PREFIX}.view_{entity}"):
        return HIDDEN
    if not any(spec.unconditional for spec in eff.scopes.get(entity, {}).get("view", ())):
        return HIDDEN
    return eff.columns.get(entity, {}).get(field)


def column_access(user, model, *, request=None) -> ColumnAccess:
    """Return the user's column access to the runtime model's entity (cached with the permissions).

    `user` None is the system (seed data, migrations): free. Superusers and tenant admins:
    free, owner fields included. Anonymous or inactive users: every field hidden.
    """
    resource_type = entity_records()
    entity_key = resource_type.key_of(model)
    if user is None:
        return FREE
    if not services.is_active(user):
        return ColumnAccess(rules=dict.fromkeys(resource_type.describe(model).field_keys(), HIDDEN))
    if user.is_superuser:
        return FREE
    eff = services.effective(user, request)
    if eff.is_tenant_admin:
        return FREE
    # Built once per runtime model and version of the permissions (a publish builds new models).
    memo_key = ("columns", entity_key)
    access = eff.filters.get(memo_key)
    if access is None or access[0] is not model:
        rules = dict(eff.columns.get(entity_key, {}))
        rules.update(_formula_rules(resource_type.describe(model).fields, rules, partial(_other_rule, eff)))
        owners = eff.owner_fields.get(entity_key, frozenset())
        specs = eff.scopes.get(entity_key, {}).get("change", ())
        if not any(spec.unconditional for spec in specs):
            for name in owners:
                rules.setdefault(name, READ_ONLY)
        access = (model, ColumnAccess(rules=rules, owner_fields=owners))
        eff.filters[memo_key] = access
    return access[1]


def owner_fields(user, model, *, request=None) -> frozenset[str]:
    """The entity's owner fields (set to the acting user on create when left empty)."""
    if user is None or not services.is_active(user):
        return frozenset()
    return services.effective(user, request).owner_fields.get(entity_records().key_of(model), frozenset())
