"""Roles, departments, scopes and column rules in the tenant's admin (RB-1, RB-4..RB-8).

Forms write the rows; `save_related` (after the many-to-many fields and inlines are saved)
then calls rbac.services so that groups are synced, caches invalidated and the change audited.
"""

from __future__ import annotations

from django import forms
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.db.models import Q
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from lowcode.tenancy.admin import TenantUserAdmin
from rbac import services
from rbac.models import ColumnRule, DataScope, Department, Role
from rbac.registries import (
    ENTITY_ACTIONS,
    ENTITY_PREFIX,
    UnknownOperation,
    entity_operation,
    entity_records,
    operation_type_registry,
    parse_entity_operation,
)


def entity_name(key: str, resource) -> str:
    """The entity's name in the request's language (its translations), else its label."""
    try:
        return str(entity_records().get_model(key)._meta.verbose_name)
    except LookupError:
        return resource.label


def entity_choices(current: str = "") -> list[tuple[str, str]]:
    resources = entity_records().published()
    choices = [(key, f"{entity_name(key, resource)} ({key})") for key, resource in sorted(resources.items())]
    if current and current not in resources:
        choices.append((current, current))
    return [("", "---------"), *choices]


def field_choices(current: str = "", *, user_fields_only: bool = False) -> list:
    """Fields grouped by entity (values are field keys; the model's clean checks the pair)."""
    groups, known = [], set()
    resource_type = entity_records()
    if user_fields_only:
        groups.append((_("System"), [(key, key) for key in resource_type.system_owner_fields]))
        known.update(resource_type.system_owner_fields)
    for key, resource in sorted(resource_type.published().items()):
        fields = [(field.key, field.key) for field in resource.fields if not user_fields_only or field.owner]
        known.update(value for value, _label in fields)
        if fields:
            groups.append((entity_name(key, resource), fields))
    if current and current not in known:
        groups.append((current, current))
    return [("", "---------"), *groups]


def people(queryset=None):
    """The tenant's people (of `queryset`, default every user), without guardian's AnonymousUser."""
    from guardian.conf import settings as guardian_settings

    users = get_user_model().objects.order_by("username") if queryset is None else queryset
    return users.exclude(username=guardian_settings.ANONYMOUS_USER_NAME)


def operation_choices() -> list:
    """Registered operations of installed apps, grouped by the app's name."""
    groups: dict[str, list] = {}
    for op in sorted(operation_type_registry.get_all(), key=lambda op: op.type):
        if op.installed:
            groups.setdefault(str(apps.get_app_config(op.app_label).verbose_name), []).append(
                (op.type, f"{op.label} ({op.type})"))
    return sorted(groups.items())


def offered(operation: str) -> bool:
    return operation_type_registry.is_registered(operation) and operation_type_registry.get(operation).installed


ACTION_NAMES = {"view": gettext_lazy("View"), "add": gettext_lazy("Add"), "change": gettext_lazy("Change"),
                "delete": gettext_lazy("Delete"), "export": gettext_lazy("Export"), "import": gettext_lazy("Import")}


def entity_action_choices() -> list:
    """Each published entity's actions, as operations ("data.expense.view"), grouped by entity."""
    return [(entity_name(key, resource), [(entity_operation(key, action), str(ACTION_NAMES[action]))
                                          for action in ENTITY_ACTIONS])
            for key, resource in sorted(entity_records().published().items())]


class EntityActionsWidget(forms.CheckboxSelectMultiple):
    """A grid: one row per entity, one column per action."""

    template_name = "rbac/widgets/entity_actions.html"

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        context["actions"] = [ACTION_NAMES[action] for action in ENTITY_ACTIONS]
        return context


def _entity_permission_q(operations) -> Q:
    wanted = Q(pk__in=[])
    for operation in operations:
        parsed = parse_entity_operation(operation)
        wanted |= Q(content_type__model=parsed.entity_key, codename=f"{parsed.action}_{parsed.entity_key}")
    return wanted & Q(content_type__app_label=ENTITY_PREFIX)


class RoleForm(forms.ModelForm):
    """A role's grants as people read them: entity actions in a grid, operations of installed apps by app.

    Django's own permissions of other models are the superusers' advanced view (`permissions`); for
    others the form leaves them as they are.
    """

    entity_actions = forms.MultipleChoiceField(
        label=gettext_lazy("Entity actions"), required=False, widget=EntityActionsWidget,
        help_text=gettext_lazy("What holders of the role may do with the records of each published entity. "
                               "Data scopes below narrow which records."))
    operations = forms.MultipleChoiceField(
        label=gettext_lazy("Operations"), required=False, widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy("What holders of the role may do besides entity actions."))

    class Meta:
        model = Role
        fields = ["key", "name", "description", "parents", "entity_actions", "operations", "permissions", "users"]
        labels = {"permissions": gettext_lazy("Other Django permissions")}
        help_texts = {"permissions": gettext_lazy("Permissions of the other models, as Django names them (advanced)."
                                                  " Entity actions are set above.")}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        role = self.instance
        self.fields["operations"].choices = operation_choices()
        self.fields["entity_actions"].choices = entity_action_choices()
        if "permissions" in self.fields:
            self.fields["permissions"].queryset = self.fields["permissions"].queryset.exclude(
                content_type__app_label=ENTITY_PREFIX)
        if role.pk:
            self.initial["entity_actions"] = [
                entity_operation(model, codename.split("_", 1)[0]) for model, codename in
                role.permissions.filter(content_type__app_label=ENTITY_PREFIX).values_list(
                    "content_type__model", "codename")]

    def clean_operations(self):
        # Operations of apps not installed (the tenant admin's pages.*, say) are not offered: they stay as held.
        kept = [operation for operation in self.instance.operations or () if not offered(operation)]
        return [*self.cleaned_data["operations"], *kept]

    def clean(self):
        cleaned = super().clean()
        parents = cleaned.get("parents")
        if parents is not None and self.instance.pk is not None:
            self.instance.key = cleaned.get("key") or self.instance.key
            try:
                services.validate_parents(self.instance, list(parents))
            except forms.ValidationError as error:
                self.add_error("parents", error.message_dict.get("parents", error.messages))
        return cleaned

    def _save_m2m(self):
        role = self.instance
        shown = {operation for _entity, actions in self.fields["entity_actions"].choices for operation, _label in actions}
        # Actions on entities not published now (not shown) stay as they are.
        unshown = list(role.permissions.filter(content_type__app_label=ENTITY_PREFIX).exclude(
            _entity_permission_q(shown)))
        super()._save_m2m()  # The advanced `permissions`, of other models, if the form has them.
        others = role.permissions.exclude(content_type__app_label=ENTITY_PREFIX)
        chosen = Permission.objects.filter(_entity_permission_q(self.cleaned_data["entity_actions"]))
        role.permissions.set([*others, *unshown, *chosen])


class DataScopeForm(forms.ModelForm):
    class Meta:
        model = DataScope
        fields = ["entity_key", "action", "kind", "owner_field", "expression"]
        widgets = {"expression": forms.TextInput(attrs={"size": 40})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["entity_key"] = forms.ChoiceField(
            label=gettext_lazy("entity"), choices=entity_choices(self.instance.entity_key or ""))
        self.fields["owner_field"] = forms.ChoiceField(
            label=gettext_lazy("owner field"), initial="created_by",
            choices=field_choices(self.instance.owner_field or "", user_fields_only=True),
            help_text=DataScope._meta.get_field("owner_field").help_text)


class ColumnRuleForm(forms.ModelForm):
    class Meta:
        model = ColumnRule
        fields = ["entity_key", "field_key", "rule"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["entity_key"] = forms.ChoiceField(
            label=gettext_lazy("entity"), choices=entity_choices(self.instance.entity_key or ""))
        self.fields["field_key"] = forms.ChoiceField(
            label=gettext_lazy("field"), choices=field_choices(self.instance.field_key or ""))

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("entity_key") and cleaned.get("field_key") and cleaned.get("rule"):
            rule = ColumnRule(entity_key=cleaned["entity_key"], field_key=cleaned["field_key"], rule=cleaned["rule"])
            try:
                services.validate_column_rule(rule)
            except forms.ValidationError as error:
                for name, messages in error.message_dict.items():
                    self.add_error(name if name in self.fields else None, messages)
        return cleaned


class DataScopeInline(admin.TabularInline):
    model = DataScope
    form = DataScopeForm
    extra = 0


class ColumnRuleInline(admin.TabularInline):
    model = ColumnRule
    form = ColumnRuleForm
    extra = 0


def _can_manage(request) -> bool:
    user = request.user
    return user.is_active and (user.is_superuser or services.check(user, "rbac.manage", request=request))


class ExplainForm(forms.Form):
    user = forms.CharField(label=gettext_lazy("User"), help_text=gettext_lazy("The username."))
    operation = forms.ChoiceField(label=gettext_lazy("Operation"))
    record = forms.CharField(label=gettext_lazy("Record id"), required=False,
                             help_text=gettext_lazy("Optional, for an entity operation: the record to check."))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        entity_ops = [(entity_operation(key, action), entity_operation(key, action))
                      for key in sorted(entity_records().published()) for action in ENTITY_ACTIONS]
        self.fields["operation"].choices = [(_("Entities"), entity_ops), (_("Operations"), operation_choices())]

    def clean_user(self):
        username = self.cleaned_data["user"]
        try:
            return get_user_model().objects.get_by_natural_key(username)
        except get_user_model().DoesNotExist:
            raise forms.ValidationError(_("No user %(user)s in this tenant.") % {"user": username}) from None

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("record") and cleaned.get("operation"):
            try:
                cleaned["record_object"] = services.find_record(cleaned["operation"], cleaned["record"])
            except (UnknownOperation, ObjectDoesNotExist) as error:
                self.add_error("record", str(error))
        return cleaned


@admin.register(Role)
class RoleAdmin(admin.ModelAdmin):
    form = RoleForm
    list_display = ["key", "name", "parent_keys", "builtin", "user_count"]
    search_fields = ["key", "name", "description"]
    list_filter = ["builtin"]
    filter_horizontal = ["parents", "permissions", "users"]
    readonly_fields = ["builtin"]
    inlines = [DataScopeInline, ColumnRuleInline]
    change_list_template = "rbac/role_change_list.html"
    fieldsets = [
        (None, {"fields": ["key", "name", "description", "builtin"]}),
        (gettext_lazy("Inheritance and holders"), {"fields": ["parents", "users"]}),
        (gettext_lazy("Grants"), {"fields": ["entity_actions", "operations"]}),
    ]
    advanced_fieldset = (gettext_lazy("Advanced"), {"fields": ["permissions"], "classes": ["collapse"]})

    def get_fieldsets(self, request, obj=None):
        # Raw Django permissions are for superusers; everyone else grants through entity actions and operations.
        return [*self.fieldsets, self.advanced_fieldset] if request.user.is_superuser else self.fieldsets

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("parents", "users")

    @admin.display(description=gettext_lazy("parents"))
    def parent_keys(self, role):
        return ", ".join(parent.key for parent in role.parents.all())

    @admin.display(description=gettext_lazy("users (direct)"))
    def user_count(self, role):
        return len(role.users.all())

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "key"] if obj is not None and obj.builtin else fields

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "permissions":
            kwargs["queryset"] = Permission.objects.select_related("content_type")
        if db_field.name == "parents":
            kwargs["queryset"] = Role.objects.order_by("key")
        if db_field.name == "users":
            kwargs["queryset"] = people()
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.builtin:
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        request._rbac_before = services.role_state(Role.objects.get(pk=obj.pk)) if change else None
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        services.role_changed(form.instance, before=getattr(request, "_rbac_before", None), created=not change,
                              actor=request.user)

    def delete_model(self, request, obj):
        services.delete_role(obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for role in queryset:
            services.delete_role(role, actor=request.user)

    def get_urls(self):
        urls = [path("explain/", self.admin_site.admin_view(self.explain_view), name="rbac_role_explain")]
        return urls + super().get_urls()

    def explain_view(self, request):
        """"Explain access": why a user can or cannot do an operation, on a record if given (RB-8)."""
        if not _can_manage(request):
            raise PermissionDenied(services.denial("rbac.manage"))
        form = ExplainForm(request.GET or None)
        explanation = None
        if form.is_bound and form.is_valid():
            explanation = services.explain(form.cleaned_data["user"], form.cleaned_data["operation"],
                                           form.cleaned_data.get("record_object"))
        context = {**self.admin_site.each_context(request), "title": _("Explain access"), "form": form,
                   "explanation": explanation, "opts": self.model._meta}
        return TemplateResponse(request, "rbac/explain.html", context)


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ["indented_name", "parent", "manager_names", "role_keys"]
    search_fields = ["name"]
    filter_horizontal = ["managers", "members", "roles"]
    fields = ["name", "parent", "managers", "members", "roles"]
    ordering = ["path", "name"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("parent").prefetch_related("managers", "roles")

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name in ("managers", "members"):
            kwargs["queryset"] = people()
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    @admin.display(description=gettext_lazy("name"), ordering="path")
    def indented_name(self, department):
        return format_html('<span style="padding-left: {}em">{}</span>', department.depth * 1.5, department.name)

    @admin.display(description=gettext_lazy("managers"))
    def manager_names(self, department):
        return ", ".join(user.get_username() for user in department.managers.all())

    @admin.display(description=gettext_lazy("roles"))
    def role_keys(self, department):
        return ", ".join(role.key for role in department.roles.all())

    def save_model(self, request, obj, form, change):
        request._rbac_before = services.department_state(Department.objects.get(pk=obj.pk)) if change else None
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        services.department_changed(form.instance, before=getattr(request, "_rbac_before", None),
                                    created=not change, actor=request.user)

    def delete_model(self, request, obj):
        services.delete_department(obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for department in queryset.order_by("-path"):
            services.delete_department(department, actor=request.user)


def role_sources_text(sources) -> str:
    """How a user holds a role, in words: "directly", "as member of Sales", "inherited from manager"."""
    words = {"direct": lambda via: _("directly"),
             "member": lambda via: _("as member of %(department)s") % {"department": via},
             "manager": lambda via: _("as manager of %(department)s") % {"department": via},
             "inherited": lambda via: _("inherited from %(role)s") % {"role": via}}
    return ", ".join(words[source.how](source.via) for source in sources)


class RoleUserAdmin(TenantUserAdmin):
    """The tenant's user page: the roles a user holds, read-only and linked; roles are granted on the role's page.

    Django's groups mirror the roles (rbac.services.sync) and raw user permissions are the superusers'
    advanced view: tenant staff never see Django's permission lists.
    """

    list_filter = ["is_staff", "is_superuser", "is_active", "rbac_roles"]

    def get_queryset(self, request):
        return people(super().get_queryset(request))  # django-guardian's stand-in for anonymous visitors is nobody.

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return super().get_fieldsets(request, obj)
        fieldsets = []
        for name, options in super().get_fieldsets(request, obj):
            fields = [field for field in options["fields"] if field not in ("groups", "user_permissions")]
            if "is_superuser" in fields:
                fields.append("roles")
            fieldsets.append((name, {**options, "fields": fields}))
        if request.user.is_superuser:
            fieldsets.append((_("Advanced"), {"fields": ["user_permissions"], "classes": ["collapse"],
                                              "description": _("Permissions given to this user alone, besides "
                                                               "their roles.")}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "roles"]

    @admin.display(description=gettext_lazy("roles"))
    def roles(self, user):
        sources = services.effective(user).role_sources if user.pk else {}
        if not sources:
            return _("No role. Give one on the role's page.")
        roles = Role.objects.in_bulk(sources, field_name="key")
        return format_html_join(
            mark_safe("<br>"), '<a href="{}">{}</a> <span class="quiet">({})</span>',
            ((reverse("admin:rbac_role_change", args=[roles[key].pk]), roles[key], role_sources_text(sources[key]))
             for key in sorted(sources) if key in roles))


def adopt_user_admin() -> None:
    """Show the tenant's users with their roles and leave the groups (the roles' mirrors) out of its admin.

    Called from RbacConfig.ready(), after lowcode.tenancy registered its user admin.
    """
    user_model = get_user_model()
    if admin.site.is_registered(user_model):
        admin.site.unregister(user_model)
    admin.site.register(user_model, RoleUserAdmin)
    if admin.site.is_registered(Group):
        admin.site.unregister(Group)
