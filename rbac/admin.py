"""Roles, departments, scopes and column rules in the tenant's admin (RB-1, RB-4..RB-8).

Forms write the rows; `save_related` (after the many-to-many fields and inlines are saved)
then calls rbac.services so that groups are synced, caches invalidated and the change audited.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from rbac import services
from rbac.models import ColumnRule, DataScope, Department, Role
from rbac.registries import (
    ENTITY_ACTIONS,
    UnknownOperation,
    entity_operation,
    entity_records,
    operation_type_registry,
)


def entity_choices(current: str = "") -> list[tuple[str, str]]:
    resources = entity_records().published()
    choices = [(key, f"{resource.label} ({key})") for key, resource in sorted(resources.items())]
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
    for _key, resource in sorted(resource_type.published().items()):
        fields = [(field.key, field.key) for field in resource.fields if not user_fields_only or field.owner]
        known.update(value for value, _label in fields)
        if fields:
            groups.append((resource.label, fields))
    if current and current not in known:
        groups.append((current, current))
    return [("", "---------"), *groups]


def operation_choices() -> list[tuple[str, str]]:
    return [(op.type, f"{op.type}: {op.label}") for op in operation_type_registry.get_all()]


class RoleForm(forms.ModelForm):
    operations = forms.MultipleChoiceField(
        label=gettext_lazy("operations"), required=False, widget=forms.CheckboxSelectMultiple,
        choices=operation_choices, help_text=gettext_lazy("What holders of the role may do besides entity actions."))

    class Meta:
        model = Role
        fields = ["key", "name", "description", "parents", "operations", "permissions", "users"]

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
    readonly_fields = ["builtin", "group"]
    inlines = [DataScopeInline, ColumnRuleInline]
    change_list_template = "rbac/role_change_list.html"
    fieldsets = [
        (None, {"fields": ["key", "name", "description", "builtin", "group"]}),
        (gettext_lazy("Inheritance and holders"), {"fields": ["parents", "users"]}),
        (gettext_lazy("Grants"), {"fields": ["operations", "permissions"]}),
    ]

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
            raise PermissionDenied
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
