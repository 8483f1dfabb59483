"""Roles, departments, data scopes and column rules of a tenant (RB-1, RB-4, RB-5, RB-6).

Models stay thin: fields, `__str__` and validation hooks that delegate to `rbac.validation`
(which imports no model). Changing any of them through `rbac.services` (admin, CLI and API do)
keeps the Django groups in sync, bumps the tenant's permission version and writes the audit event.
"""

from __future__ import annotations

from collections import defaultdict

from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.db import models, transaction
from django.db.models.functions import Concat, Substr
from django.utils.translation import gettext_lazy as _

from lowcode.models import TimestampedModel
from rbac import validation
from rbac.scopes import BUILTIN_SCOPE_KINDS, scope_kind_choices


class Role(TimestampedModel):
    """A named set of permissions and operations, with optional parent roles (RB-1)."""

    TENANT_ADMIN = "tenant_admin"
    BUILDER = "builder"
    MEMBER = "member"
    GUEST = "guest"

    key = models.SlugField(_("key"), max_length=60, unique=True,
                           help_text=_("A stable identifier: lowercase letters, digits, - and _."))
    name = models.CharField(_("name"), max_length=100)
    description = models.TextField(_("description"), blank=True)
    parents = models.ManyToManyField(
        "self", symmetrical=False, blank=True, related_name="children", verbose_name=_("parent roles"),
        help_text=_("The role has every permission, operation, data scope and column rule of its parents."))
    permissions = models.ManyToManyField(
        Permission, blank=True, related_name="rbac_roles", verbose_name=_("permissions"),
        help_text=_("Entity actions (data | ...) and actions on other models."))
    operations = models.JSONField(_("operations"), default=list, blank=True,
                                  help_text=_("Registered operation codes, e.g. designer.access."))
    builtin = models.BooleanField(_("built-in"), default=False, editable=False)
    group = models.OneToOneField(Group, null=True, blank=True, editable=False, on_delete=models.SET_NULL,
                                 related_name="rbac_role", verbose_name=_("Django group"))
    users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="rbac_roles",
                                   verbose_name=_("users"), help_text=_("Users who have the role directly."))

    class Meta:
        verbose_name = _("role")
        verbose_name_plural = _("roles")
        ordering = ["key"]

    def __str__(self):
        return self.name or self.key

    def natural_key(self):
        return (self.key,)

    @property
    def group_name(self) -> str:
        return f"role:{self.key}"

    @classmethod
    def graph(cls) -> tuple[dict[int, str], dict[int, list[int]]]:
        """Return {role id: key} and {role id: parent ids} of the tenant's roles."""
        keys = dict(cls.objects.values_list("id", "key"))
        parents: dict[int, list[int]] = defaultdict(list)
        for child, parent in cls.parents.through.objects.values_list("from_role_id", "to_role_id"):
            parents[child].append(parent)
        return keys, parents

    def clean(self):
        validation.validate_operations(self.operations)


class Department(TimestampedModel):
    """A node of the department tree (RB-6); members and managers get its roles."""

    name = models.CharField(_("name"), max_length=100)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children",
                               verbose_name=_("parent department"))
    path = models.CharField(_("path"), max_length=500, editable=False, db_index=True, default="",
                            help_text=_("Ids from the root, e.g. /3/7/: selects a department and those below."))
    managers = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="rbac_managed_departments",
                                      verbose_name=_("managers"))
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="rbac_departments",
                                     verbose_name=_("members"))
    roles = models.ManyToManyField(Role, blank=True, related_name="departments", verbose_name=_("roles"),
                                   help_text=_("Members and managers of the department get these roles."))

    class Meta:
        verbose_name = _("department")
        verbose_name_plural = _("departments")
        ordering = ["path", "name"]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        """Save, keeping `path` (and the paths of every department below) materialized."""
        validation.validate_department_parent(self, self.parent)
        with transaction.atomic():
            old_path = self.path
            if self.pk is None:
                super().save(*args, **kwargs)
                kwargs.pop("force_insert", None)
            parent_path = (type(self).objects.filter(pk=self.parent_id).values_list("path", flat=True).first()
                           if self.parent_id else "/") or "/"
            self.path = f"{parent_path}{self.pk}/"
            if "update_fields" in kwargs and kwargs["update_fields"] is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "path"}
            super().save(*args, **kwargs)
            if old_path and old_path != self.path:
                # Move the subtree: every path below starts with the old prefix.
                type(self).objects.filter(path__startswith=old_path).exclude(pk=self.pk).update(
                    path=Concat(models.Value(self.path), Substr("path", len(old_path) + 1)))

    def clean(self):
        validation.validate_department_parent(self, self.parent)

    @property
    def depth(self) -> int:
        return max(self.path.count("/") - 2, 0)


class DataScope(models.Model):
    """Which records of an entity a role's holders may act on (RB-4).

    Scopes of a user's roles are combined with OR. A scope for "view" also applies to change
    and delete unless the role has one for that action. The kinds other than `expression`
    may add an expression, which then must hold too (own records while status == 'draft').
    """

    class Action(models.TextChoices):
        VIEW = "view", _("view (and change/delete unless set)")
        CHANGE = "change", _("change")
        DELETE = "delete", _("delete")

    #: ALL, OWN, DEPARTMENT, DEPARTMENT_TREE, EXPRESSION: the built-in kinds of `rbac.scopes`.
    Kind = models.TextChoices("Kind", [(kind.type.upper(), (kind.type, kind.label)) for kind in BUILTIN_SCOPE_KINDS])

    role = models.ForeignKey(Role, on_delete=models.CASCADE, related_name="scopes", verbose_name=_("role"))
    entity_key = models.CharField(_("entity"), max_length=40)
    action = models.CharField(_("action"), max_length=10, choices=Action.choices, default=Action.VIEW)
    kind = models.CharField(_("scope"), max_length=20, choices=scope_kind_choices, default=Kind.OWN)
    owner_field = models.CharField(
        _("owner field"), max_length=50, default="created_by",
        help_text=_("The user field that makes a record someone's: created_by or a user field of the entity."))
    expression = models.TextField(
        _("expression"), blank=True,
        help_text=_("A condition over the record, e.g. status == 'draft' or amount < 1000; "
                    "user.id, user.department_ids... are the caller's."))

    class Meta:
        verbose_name = _("data scope")
        verbose_name_plural = _("data scopes")
        ordering = ["role", "entity_key", "action", "id"]

    def __str__(self):
        return f"{self.role_id and self.role.key}: {self.entity_key}.{self.action} = {self.kind}"

    def clean(self):
        validation.validate_scope(self)


class ColumnRule(models.Model):
    """A field's treatment for a role's holders (RB-5)."""

    class Rule(models.TextChoices):
        HIDDEN = "hidden", _("hidden")
        MASKED = "masked", _("masked")
        READ_ONLY = "read_only", _("read-only")

    role = models.ForeignKey(Role, on_delete=models.CASCADE, related_name="column_rules", verbose_name=_("role"))
    entity_key = models.CharField(_("entity"), max_length=40)
    field_key = models.CharField(_("field"), max_length=50)
    rule = models.CharField(_("rule"), max_length=10, choices=Rule.choices)

    class Meta:
        verbose_name = _("column rule")
        verbose_name_plural = _("column rules")
        ordering = ["role", "entity_key", "field_key"]
        constraints = [models.UniqueConstraint(fields=["role", "entity_key", "field_key"],
                                               name="rbac_columnrule_unique_field")]

    def __str__(self):
        return f"{self.entity_key}.{self.field_key}: {self.rule}"
