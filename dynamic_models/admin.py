"""Entity design in admin (DM-4), and the generated admin of every published entity."""

from __future__ import annotations

import html

import nh3
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.db.models import Exists, OuterRef, Q
from django.forms.fields import InvalidJSONInput
from django.http import Http404, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, re_path, reverse
from django.utils import formats, timezone
from django.utils.functional import cached_property
from django.utils.html import escape, format_html, format_html_join, strip_tags
from django.utils.http import urlencode
from django.utils.safestring import mark_safe
from django.utils.text import Truncator, capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from audit.actions import audit_action_registry
from audit.models import AuditEvent
from dynamic_models import (
    business_types,
    children,
    designer,
    diagram,
    file_fields,
    formulas,
    keys,
    records,
    runtime,
    services,
    single,
    transfer,
)
from dynamic_models.api.transfer import export_response
from dynamic_models.models import Entity, Field, ImportJob, SchemaMigration
from dynamic_models.registries import field_type_registry
from lowcode.admin_site import ReadOnlyAdminMixin
from lowcode.api.parsers import JSONTooDeep, load_json
from metadata.exceptions import MetadataError
from rbac import columns as rbac_columns
from rbac import services as rbac


def _plain_help_texts(formfield):
    """Admin renders help texts as HTML; ours are plain text ("the table is dm_<key>")."""
    if formfield is not None and formfield.help_text:
        formfield.help_text = escape(formfield.help_text)
    return formfield


class JSONInput(forms.JSONField):
    """A JSON box that shows nothing, rather than `null`, when there is no value, and refuses
    JSON nested deeper than the API takes (Django's parser would fail with a RecursionError)."""

    def _too_deep(self, value) -> bool:
        try:
            load_json(value)
        except JSONTooDeep:
            return True
        except ValueError:  # Not JSON: Django's own message says so.
            pass
        return False

    def to_python(self, value):
        if isinstance(value, str) and not self.disabled and self._too_deep(value):
            raise ValidationError(str(JSONTooDeep()), code="too_deep")
        return super().to_python(value)

    def bound_data(self, data, initial):
        if isinstance(data, str) and not self.disabled and self._too_deep(data):
            return InvalidJSONInput(data)
        return super().bound_data(data, initial)

    def prepare_value(self, value):
        return "" if value is None else super().prepare_value(value)


#: Every JSON box of these admins (designs, records) is a JSONInput.
JSON_INPUTS = {models.JSONField: {"form_class": JSONInput}}


class FieldFormSet(forms.BaseInlineFormSet):
    """The fields of a design, checked with their entity as publishing would check them, before
    anything is saved: the errors show on the field and option they are about."""

    def clean(self):
        super().clean()
        if any(self.errors):
            return  # A field's own errors (a key too long) first.
        kept = sorted((form for form in self.forms if not self._should_delete_form(form)
                       and (form.instance.pk or form.has_changed())),
                      key=lambda form: form.cleaned_data.get("position") or 0)
        body = services.entity_body(self.instance, fields=[form.instance for form in kept])
        entity_errors = []
        for error in services.design_errors(body):
            parts = error["path"].split("/")
            if parts[0] == "fields" and len(parts) > 1 and parts[1].isdigit():
                form = kept[int(parts[1])]
                name = parts[2] if len(parts) > 2 else None
                form.add_error(name if name in form._meta.fields else None, error["message"])  # Not the hidden id.
            elif parts[0] != "key":  # The entity form checks its key itself (EntityForm.clean_key).
                entity_errors.append(_("%(name)s: %(message)s") % {
                    "name": _entity_attribute(parts[0]), "message": error["message"]})
        if entity_errors:
            raise ValidationError(entity_errors)


def _entity_attribute(name: str) -> str:
    try:
        return str(Entity._meta.get_field(name).verbose_name).capitalize()
    except LookupError:
        return name


class FieldForm(forms.ModelForm):
    def clean_options(self):
        return self.cleaned_data["options"] or {}  # An emptied box means no options, not null.


class FieldInline(admin.TabularInline):
    """The fields of an entity as the designer's list and properties panel (entity_fields_designer.html)."""

    model = Field
    form = FieldForm
    formset = FieldFormSet
    extra = 0
    template = "dynamic_models/entity_fields_designer.html"
    fields = ["position", "key", "label", "type", "required", "unique", "index", "default", "options",
              "show_in_list", "filterable", "searchable", "read_only", "encrypted", "help_text"]
    ordering = ["position", "id"]

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        if obj is not None and obj.pk and "position" in formset.form.base_fields:
            # A new row goes after the existing ones, not first with position 0.
            last = obj.fields.aggregate(last=models.Max("position"))["last"]
            formset.form.base_fields["position"].initial = 0 if last is None else last + 1
        return formset

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if isinstance(db_field, models.JSONField):
            # Raw JSON, shown in the panel's "Advanced: JSON" part; the widgets fill it.
            kwargs["form_class"] = JSONInput
            kwargs["widget"] = forms.Textarea(attrs={"rows": 2 if db_field.name == "default" else 5,
                                                     "class": f"designer-json designer-json-{db_field.name}"})
        elif db_field.name == "position":
            kwargs["widget"] = forms.HiddenInput(attrs={"class": "designer-position"})
        formfield = _plain_help_texts(super().formfield_for_dbfield(db_field, request, **kwargs))
        if db_field.name == "default":
            formfield.help_text = _('JSON, e.g. true, 0 or "CNY".')
        return formfield


class EntityForm(forms.ModelForm):
    def clean_translations(self):
        return self.cleaned_data["translations"] or {}  # An emptied box means none, not null.

    def clean_rules(self):
        return self.cleaned_data["rules"] or []

    def clean_key(self):
        errors = keys.key_errors(self.cleaned_data["key"], what="entity", max_length=keys.ENTITY_KEY_MAX)
        if errors:
            raise ValidationError([error["message"] for error in errors])
        return self.cleaned_data["key"]


@admin.register(Entity)
class EntityAdmin(admin.ModelAdmin):
    form = EntityForm
    formfield_overrides = JSON_INPUTS
    list_display = ["key", "label", "app", "published_version", "updated_at"]
    search_fields = ["key", "label"]
    list_filter = ["app"]
    readonly_fields = ["published_version", "created_at", "updated_at"]
    inlines = [FieldInline]
    change_form_template = "dynamic_models/entity_change_form.html"
    change_list_template = "dynamic_models/entity_change_list.html"

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        return _plain_help_texts(super().formfield_for_dbfield(db_field, request, **kwargs))

    def get_readonly_fields(self, request, obj=None):
        # The key names the table: fixed once published.
        if obj and obj.published_version:
            return [*self.readonly_fields, "key", "table_key"]
        return self.readonly_fields

    def get_fieldsets(self, request, obj=None):
        # The key first, shown with its table once it is fixed; what few designs need, folded.
        key = "table_key" if obj and obj.published_version else "key"
        return [
            (None, {"fields": [key, ("label", "label_plural"), ("app", "display_field", "ordering")]}),
            (_("More settings"), {"classes": ["collapse"], "fields": [
                "description", "single", "child_of", "sensitive", "translations", "rules", "published_version", "created_at",
                "updated_at"]}),
        ]

    @admin.display(description=gettext_lazy("key"))
    def table_key(self, obj):
        return format_html('{} <span class="help">({})</span>', obj.key, _("table dm_%s") % obj.key)

    def get_list_display(self, request):
        published = runtime.published_entity_bodies()  # Read once for the whole list.

        @admin.display(description=_("state"))
        def state(entity):
            return _state_badge(services.design_state(entity, published=published))

        *columns, last = super().get_list_display(request)
        return [*columns, state, last]

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/preview/", wrap(self.preview_view), name="dynamic_models_entity_preview"),
            path("<int:pk>/rollback/", wrap(self.rollback_view), name="dynamic_models_entity_rollback"),
            path("<int:pk>/discard/", wrap(self.discard_view), name="dynamic_models_entity_discard"),
            path("check-expression/", wrap(self.check_expression_view), name="dynamic_models_entity_check_expression"),
            path("diagram/", wrap(self.diagram_view), name="dynamic_models_entity_diagram"),
            *super().get_urls(),
        ]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        state = services.design_state(obj) if obj is not None and obj.pk else services.DesignState.NEW
        context.update({
            "designer_config": designer.config(obj.key if obj is not None else ""),
            "design_state": state, "state_badge": _state_badge(state) if obj is not None and obj.pk else "",
            "can_roll_back": bool(obj and obj.pk and services.can_roll_back(obj.key)),
            "migrations": SchemaMigration.objects.filter(entity_key=obj.key)[:20] if obj is not None and obj.pk
            else [],
        })
        return super().render_change_form(request, context, add, change, form_url, obj)

    def response_change(self, request, obj):
        if "_preview" in request.POST:
            return redirect("admin:dynamic_models_entity_preview", obj.pk)
        return super().response_change(request, obj)

    def response_add(self, request, obj, post_url_continue=None):
        if "_preview" in request.POST:
            return redirect("admin:dynamic_models_entity_preview", obj.pk)
        return super().response_add(request, obj, post_url_continue)

    def _check_change(self, request, entity):
        if not self.has_change_permission(request, entity):
            raise PermissionDenied

    def _page(self, request, template: str, entity, title: str, **context):
        return TemplateResponse(request, template, {
            **self.admin_site.each_context(request), "opts": self.model._meta, "original": entity, "title": title,
            **context})

    def preview_view(self, request, pk):
        """Show the planned migration; POST publishes it (if nobody published since)."""
        entity = get_object_or_404(Entity, pk=pk)
        self._check_change(request, entity)
        if request.method == "POST":
            expected = request.POST.get("expected_version", "")
            if expected and not expected.isdigit():
                return HttpResponseBadRequest(_("expected_version must be a whole number."))
            try:
                migration = services.publish(entity, author=request.user, note=request.POST.get("note", ""),
                                             expected_version=int(expected) if expected else None)
            except MetadataError as error:
                self.message_user(request, str(error), messages.ERROR)
            else:
                self.message_user(request, _("Published %(key)s version %(version)s in %(ms)d ms.")
                                  % {"key": entity.key, "version": migration.to_version, "ms": migration.duration_ms},
                                  messages.SUCCESS)
                return redirect("admin:dynamic_models_entity_change", entity.pk)
        try:
            plan, errors = services.preview(entity), []
        except MetadataError as error:
            plan, errors = None, getattr(error, "errors", [{"path": "", "message": str(error)}])
        return self._page(request, "dynamic_models/entity_preview.html", entity,
                          _("Preview publishing %s") % entity.key, plan=plan, errors=errors)

    def rollback_view(self, request, pk):
        entity = get_object_or_404(Entity, pk=pk)
        self._check_change(request, entity)
        if not services.can_roll_back(entity.key):
            self.message_user(request, _("%(key)s has no earlier version to roll back to.") % {"key": entity.key},
                              messages.WARNING)
            return redirect("admin:dynamic_models_entity_change", entity.pk)
        if request.method == "POST":
            try:
                migration = services.rollback(entity.key, author=request.user)
            except MetadataError as error:
                self.message_user(request, str(error), messages.ERROR)
            else:
                self.message_user(request, _("Rolled %(key)s back: version %(version)s is live.")
                                  % {"key": entity.key, "version": migration.to_version}, messages.SUCCESS)
            return redirect("admin:dynamic_models_entity_change", entity.pk)
        return self._page(request, "dynamic_models/entity_rollback.html", entity, _("Roll back %s") % entity.key)

    def discard_view(self, request, pk):
        """Confirm, then put the design back as its live version."""
        entity = get_object_or_404(Entity, pk=pk)
        self._check_change(request, entity)
        if services.design_state(entity) != services.DesignState.CHANGED:
            self.message_user(request, _("%(key)s has no unpublished changes to discard.") % {"key": entity.key},
                              messages.WARNING)
            return redirect("admin:dynamic_models_entity_change", entity.pk)
        if request.method == "POST":
            try:
                services.discard_changes(entity, author=request.user, request=request)
            except MetadataError as error:
                self.message_user(request, str(error), messages.ERROR)
            else:
                self.message_user(request, _("The unpublished changes of %(key)s are discarded: the design is version "
                                             "%(version)s again.") % {"key": entity.key,
                                                                      "version": entity.published_version},
                                  messages.SUCCESS)
            return redirect("admin:dynamic_models_entity_change", entity.pk)
        return self._page(request, "dynamic_models/entity_discard.html", entity, _("Discard the changes of %s")
                          % entity.key, changes=services.unpublished_summary(entity))

    def check_expression_view(self, request):
        """The formula editor's check as the builder types: POST {"entity", "fields", "expression"}."""
        if not (self.has_add_permission(request) or self.has_change_permission(request)):
            raise PermissionDenied
        if request.method != "POST":
            return JsonResponse({"detail": _("Use POST."), "code": "method_not_allowed"}, status=405)
        try:
            data = load_json(request.body)
        except (ValueError, JSONTooDeep):
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("expression"), str) \
                or not isinstance(data.get("fields", []), list):
            return JsonResponse({"expression": [{"code": "invalid", "message": _(
                "Send a JSON object with the expression (text) and the fields (a list).")}]}, status=400)
        return JsonResponse(services.check_expression(str(data.get("entity") or ""), data.get("fields", []),
                                                      data["expression"]))

    def diagram_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        return TemplateResponse(request, "dynamic_models/entity_diagram.html", {
            **self.admin_site.each_context(request), "opts": self.model._meta, "title": _("Entity diagram"),
            "svg": diagram.render_svg(runtime.published_entity_bodies()),
        })


def _state_badge(state: str) -> str:
    text = {services.DesignState.NEW: _("Not published"), services.DesignState.CHANGED: _("Unpublished changes"),
            services.DesignState.LIVE: _("Live")}[state]
    return format_html('<span class="design-state design-state-{}">{}</span>', state, text)


@admin.register(SchemaMigration)
class SchemaMigrationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["entity_key", "from_version", "to_version", "status", "author", "duration_ms",
                    "rows_affected", "created_at"]
    list_filter = ["status", "entity_key"]
    readonly_fields = [f.name for f in SchemaMigration._meta.fields]


class DeletedFilter(admin.SimpleListFilter):
    title = gettext_lazy("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("deleted", _("Deleted")), ("all", _("All"))]

    def choices(self, changelist):
        # Active (the default) replaces the usual "All", which here is one of the lookups.
        yield {"selected": self.value() is None, "query_string": changelist.get_query_string(remove=[self.parameter_name]),
               "display": _("Active")}
        for value, title in self.lookup_choices:
            yield {"selected": self.value() == value, "display": title,
                   "query_string": changelist.get_query_string({self.parameter_name: value})}

    def queryset(self, request, queryset):
        if self.value() == "deleted":
            return queryset.filter(deleted_at__isnull=False)
        if self.value() == "all":
            return queryset
        return queryset.filter(deleted_at__isnull=True)


class RecordForm(forms.ModelForm):
    """The form of a record: its file fields' widgets link to the record's files."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            if isinstance(field, file_fields.RecordFilesField):
                field.widget.record = self.instance

    def _get_validation_exclusions(self):
        # Files are checked and written by records.save (the admin passes them in save_model).
        return super()._get_validation_exclusions() | set(file_fields.file_specs(self._meta.model))


class RecordAdmin(admin.ModelAdmin):
    """Base of the generated admin of an entity; its options come from the entity's metadata."""

    form = RecordForm
    formfield_overrides = JSON_INPUTS
    change_list_template = "dynamic_models/record_change_list.html"
    actions = ["restore_selected", "purge_selected"]
    #: Field key -> the form widget its field type asks for.
    widgets: dict = {}
    #: Display column -> the field it shows (formulas, files, auto numbers, rich text), for the column rules.
    column_fields: dict = {}
    #: Field key -> the display that shows it read-only (an auto number "assigned on save", rich text rendered).
    read_only_as: dict = {}
    #: Relation fields shown as list columns (named only if the viewer may see the related record).
    related_columns: frozenset = frozenset()

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        kwargs["queryset"] = records.pickable(request.user, db_field.related_model, request=request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        kwargs["queryset"] = records.pickable(request.user, db_field.related_model, request=request)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if obj is not None:
            for name, field in form.base_fields.items():
                if isinstance(field, forms.ModelChoiceField):
                    _keep_unseen_values(field, obj, name, request)
        return form

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if isinstance(db_field, file_fields.FILE_MODEL_FIELDS):
            return db_field.formfield(user=request.user)  # Uploads are the signed-in user's.
        if db_field.name in self.widgets:
            kwargs["widget"] = self.widgets[db_field.name]
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    # --- rbac: operations, data scope and column rules (RB-2, RB-4, RB-5) --------------------

    def _allowed(self, request, action: str, obj=None) -> bool:
        return rbac.check(request.user, rbac.entity_operation(self.opts.model_name, action), obj, request=request)

    def has_view_permission(self, request, obj=None):
        return self._allowed(request, "view", obj) or self.has_change_permission(request, obj)

    def has_add_permission(self, request):
        return self._allowed(request, "add")

    def has_change_permission(self, request, obj=None):
        return self._allowed(request, "change", obj)

    def has_delete_permission(self, request, obj=None):
        return self._allowed(request, "delete", obj)

    def get_queryset(self, request):
        # A record outside the caller's scope is not found: its URL answers like a wrong id.
        return rbac.scope_queryset(request.user, self.model.all_objects.all(), request=request)

    def get_changelist(self, request, **kwargs):
        return RecordChangeList

    def with_visible_relations(self, queryset, request):
        """`queryset` telling, for each relation column, whether the viewer may see the related
        record (rbac's read path, records.pickable): the list names it, or shows its id only."""
        return queryset.annotate(**{
            f"{VISIBLE}{key}": Exists(records.pickable(request.user, self.model._meta.get_field(key).related_model,
                                                       request=request).filter(pk=OuterRef(key)))
            for key in self.related_columns})

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        # A 404, as the API answers: a guessed id tells nothing about records outside the scope.
        raise Http404(_("No %(name)s with this id.") % {"name": opts.verbose_name})

    def _access(self, request):
        return rbac_columns.column_access(request.user, self.model, request=request)

    def _shown_as(self, name: str, access) -> str | None:
        """A column or form field as the caller may see it: itself, its masked display, or None (hidden)."""
        key = self.column_fields.get(name, name)
        rule = access.rule(key)
        if rule == rbac_columns.HIDDEN:
            return None
        return f"masked_{key}" if rule == rbac_columns.MASKED else name

    def get_list_display(self, request):
        access = self._access(request)
        return [shown for shown in (self._shown_as(name, access) for name in super().get_list_display(request))
                if shown]

    def get_list_filter(self, request):
        access = self._access(request)
        return [(name, VisibleRelatedFilter) if isinstance(name, str) and self.model._meta.get_field(name).is_relation
                else name for name in super().get_list_filter(request)
                if access.can_query(name if isinstance(name, str) else getattr(name, "field_key", ""))]

    def get_search_fields(self, request):
        access = self._access(request)
        return [name for name in super().get_search_fields(request) if access.can_query(name)]

    def lookup_allowed(self, lookup, value, request=None):
        # A filter by a value the caller cannot read would reveal it one question at a time.
        if request is not None and not self._access(request).can_query(lookup.split("__", 1)[0]):
            return False
        return super().lookup_allowed(lookup, value, request)

    def get_readonly_fields(self, request, obj=None):
        access = self._access(request)
        shown = [self._shown_as(name, access) for name in super().get_readonly_fields(request, obj)]
        return [*(name for name in shown if name),
                *(self.read_only_as.get(name, name) if rule == rbac_columns.READ_ONLY else f"masked_{name}"
                  for name, rule in access.rules.items()
                  if rule in (rbac_columns.READ_ONLY, rbac_columns.MASKED) and name not in self.model.lowcode_formulas)]

    def get_fields(self, request, obj=None):
        # In the entity's order: read-only fields (auto numbers, formulas) would come last.
        order = {spec["key"]: position for position, spec in enumerate(self.model.lowcode_entity["fields"])}
        access = self._access(request)
        fields = dict.fromkeys(shown for shown in (self._shown_as(name, access)
                                                   for name in super().get_fields(request, obj)) if shown)
        return sorted(fields, key=lambda name: order.get(self._field_key(name), len(order)))

    def _field_key(self, name: str) -> str:
        """The entity field a form field or column shows (`masked_iban` -> `iban`)."""
        return self.column_fields.get(name) or (name.removeprefix("masked_") if name.startswith("masked_") else name)

    def get_exclude(self, request, obj=None):
        # Hidden and masked fields are not in the form at all, so a post cannot set them; nor are
        # those shown read-only by a display of theirs (rich text).
        refused = sorted(self._access(request).unreadable() - set(self.model.lowcode_formulas))
        read_only = set(self.get_readonly_fields(request, obj))
        shown = [key for key, display in self.read_only_as.items() if display in read_only]
        return [*(super().get_exclude(request, obj) or []), *refused, *shown] or None

    def save_model(self, request, obj, form, change):
        files = {key: form.cleaned_data[key] for key in file_fields.file_specs(self.model) if key in form.cleaned_data}
        records.save(obj, user=request.user, request=request, files=files)

    def delete_model(self, request, obj):
        records.delete(obj, user=request.user, request=request)

    def save_formset(self, request, form, formset, change):
        if not children.is_child_relation(formset.model, getattr(getattr(formset, "fk", None), "name", None)):
            return super().save_formset(request, form, formset, change)
        # Child rows: each written through the record services (rbac, audit); a new row without an
        # order number goes last.
        order_field = children.child_option(formset.model)["order_field"]
        rows = formset.save(commit=False)
        for record in formset.deleted_objects:
            records.delete(record, user=request.user, request=request)
        last = max([getattr(record, order_field) or 0 for record in formset.get_queryset()] +
                   [getattr(record, order_field) or 0 for record in rows], default=0)
        for record in rows:
            if getattr(record, order_field) is None:
                last += 1
                setattr(record, order_field, last)
            records.save(record, user=request.user, request=request)
        formset.save_m2m()

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for obj in queryset:
                records.delete(obj, user=request.user, request=request)

    def get_urls(self):
        wrap, name = self.admin_site.admin_view, f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("<path:object_id>/history/<int:seq>/restore/", wrap(self.restore_version_view),
                 name=f"{name}_restore_version"),
            re_path(r"^export\.(?P<file_format>csv|xlsx)$", wrap(self.export_view), name=f"{name}_export"),
            path("import/", wrap(self.import_view), name=f"{name}_import"),
            path("import/<int:job_id>/", wrap(self.import_job_view), name=f"{name}_import_job"),
            *super().get_urls(),
        ]

    # --- export and import, with the API's services (DM-5) -----------------------------------

    def changelist_view(self, request, extra_context=None):
        if single.is_single(self.model) and not request.GET:
            return self._open_the_record()
        extra_context = {**(extra_context or {}), "can_export": self._allowed(request, "export"),
                         "can_import": self._allowed(request, "import"), "list_query": request.GET.urlencode()}
        return super().changelist_view(request, extra_context)

    def add_view(self, request, form_url="", extra_context=None):
        if single.is_single(self.model) and single.the_record(self.model) is not None:
            return self._open_the_record()
        return super().add_view(request, form_url, extra_context)

    def _open_the_record(self):
        """A settings entity's list and add pages open its one record (or the form creating it)."""
        record = single.the_record(self.model)
        info = self.opts.app_label, self.opts.model_name
        if record is None:
            return redirect(reverse("admin:{}_{}_add".format(*info), current_app=self.admin_site.name))
        return redirect(reverse("admin:{}_{}_change".format(*info), args=[record.pk], current_app=self.admin_site.name))

    def _transfer_serializer(self, request):
        """The entity's API serializer for the signed-in user (their column rules), relations as ids."""
        return transfer.record_serializer(self.opts.model_name)(
            context={"request": request, "user": request.user, "fields": None, "expand": set()})

    def export_view(self, request, file_format: str):
        """The list as filtered, searched and ordered on the page, as one file (permission `export`)."""
        if not self._allowed(request, "export"):
            raise PermissionDenied
        try:
            queryset = self.get_changelist_instance(request).queryset
        except IncorrectLookupParameters:
            return HttpResponseBadRequest(_("The list's filters are not valid."))
        return export_response(transfer.export_file(
            self.opts.model_name, self._transfer_serializer(request), queryset, file_format, user=request.user,
            query=request.GET.dict()))

    def _import_page(self, request, **context):
        return TemplateResponse(request, "dynamic_models/record_import.html", {
            **self.admin_site.each_context(request), "opts": self.opts, "title": _("Import %s") %
            self.opts.verbose_name_plural, "max_mb": round(settings.API_IMPORT_MAX_BYTES / (1024 * 1024), 1),
            "sync_rows": settings.API_IMPORT_SYNC_MAX_ROWS, **context})

    def import_view(self, request):
        """Upload a CSV/XLSX file, see its dry run, confirm to import; big files run as a job (permission `import`)."""
        if not self._allowed(request, "import"):
            raise PermissionDenied
        key, form = self.opts.model_name, ImportUploadForm(request.POST or None, request.FILES or None)
        if request.method != "POST":
            return self._import_page(request, form=form)
        token = request.POST.get("token", "")
        try:
            if token:  # The dry run was seen: import for real.
                outcome = transfer.run_import(key, transfer.held_upload(key, token, user=request.user),
                                              user=request.user)
                transfer.release_upload(token)
                token = ""
            elif form.is_valid():
                source = transfer.source_from_upload(form.cleaned_data["file"])
                token = transfer.hold_upload(key, source, user=request.user)
                outcome = transfer.run_import(key, source, user=request.user, dry_run=True)
            else:
                return self._import_page(request, form=form)
        except transfer.TransferError as error:
            return self._import_page(request, form=ImportUploadForm(), error=error.message)
        if isinstance(outcome, ImportJob):
            url = reverse(f"admin:{self.opts.app_label}_{key}_import_job", args=[outcome.pk])
            return redirect(f"{url}?{urlencode({'token': token})}" if token else url)
        return self._import_page(request, report=self._readable_report(outcome), token=token,
                                 form=ImportUploadForm() if outcome["errors"] else None)

    def import_job_view(self, request, job_id: int):
        """A background import: its progress bar (polling the API's job status), then its report."""
        job = get_object_or_404(ImportJob, pk=job_id, entity_key=self.opts.model_name)
        if job.user_id != request.user.pk and not self.has_view_permission(request):
            raise Http404
        job = transfer.with_live_progress(job)
        report = None
        if job.status == ImportJob.Status.SUCCEEDED or job.errors:
            report = self._readable_report({"dry_run": job.dry_run, "total": job.total, "valid": job.valid,
                                            "created": job.created, "errors": job.errors})
        return self._import_page(request, job=job, report=report, token=request.GET.get("token", ""),
                                 status_url=reverse("data-import-job", args=[job.pk]),
                                 form=ImportUploadForm() if job.is_finished and (
                                     job.status == ImportJob.Status.FAILED or job.errors) else None)

    def _readable_report(self, report: dict) -> dict:
        """An import report with each row's errors by field label."""
        labels = {field.name: capfirst(field.verbose_name) for field in self.model._meta.get_fields()
                  if hasattr(field, "verbose_name")}
        rows = [{"row": error["row"], "errors": [
            {"field": labels.get(name, "" if name == "non_field_errors" else name), "message": detail["message"]}
            for name, details in error["errors"].items() for detail in _flat_details(details)]}
            for error in report["errors"]]
        return {**report, "rows": rows, "bad": report["total"] - report["valid"]}

    def _record_or_404(self, request, object_id):
        record = self.get_object(request, object_id)
        if record is None:
            self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        return record

    def _page(self, request, template: str, record, title: str, **context):
        return TemplateResponse(request, template, {
            **self.admin_site.each_context(request), "opts": self.opts, "original": record, "title": title,
            **context})

    def history_view(self, request, object_id, extra_context=None):
        """The record's timeline from the audit trail, in words, with a restore link per version (AD-3)."""
        record = self._record_or_404(request, object_id)
        if not self.has_view_or_change_permission(request, record):
            raise PermissionDenied
        entries = [{"event": version.event, "verb": version.verb, "changes": version.changes, "actor": version.actor,
                    "label": audit_action_registry.describe(version.event.action),
                    "restorable": version.verb in ("create", "update", "restore_version")}
                   for version in records.history(record, user=request.user, request=request)]
        return self._page(request, "dynamic_models/record_history.html", record, _("History: %s") % record,
                          entries=entries[::-1], can_change=self.has_change_permission(request, record),
                          **(extra_context or {}))

    def restore_version_view(self, request, object_id, seq):
        """GET: what restoring the version would change; POST: restore it."""
        record = self._record_or_404(request, object_id)
        if not self.has_change_permission(request, record):
            raise PermissionDenied
        history_url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_history", args=[record.pk])
        try:
            if request.method != "POST":
                event = records.history_event(record, seq)
                return self._page(request, "dynamic_models/record_restore.html", record,
                                  _("Restore a version of %s") % record, event=event, history_url=history_url,
                                  changes=records.restore_changes(record, seq, user=request.user, request=request))
            event = records.restore_version(record, seq, user=request.user, request=request)
        except AuditEvent.DoesNotExist:
            raise Http404(_("This record has no such version.")) from None
        except PermissionDenied as error:
            self.message_user(request, _("Not restored: %s") % error, messages.ERROR)
        except ValidationError as error:
            self.message_user(request, _("Not restored: %s") % "; ".join(error.messages), messages.ERROR)
        else:
            self.message_user(request, _("The version of %(time)s is restored.") % {
                "time": formats.localize(timezone.localtime(event.created_at))}, messages.SUCCESS)
        return redirect(history_url)

    @admin.action(description=gettext_lazy("Restore selected records"))
    def restore_selected(self, request, queryset):
        try:
            count = records.restore(queryset, user=request.user, request=request)
        except ValidationError as error:
            self.message_user(request, _("Not restored: %s") % "; ".join(error.messages), messages.ERROR)
            return
        self.message_user(request, _("%d records restored.") % count, messages.SUCCESS)

    @admin.action(description=gettext_lazy("Purge selected deleted records for good"), permissions=["delete"])
    def purge_selected(self, request, queryset):
        try:
            count = records.purge(queryset, user=request.user, request=request)
        except models.ProtectedError as error:
            self.message_user(request, _("Not purged: %s") % error.args[0], messages.ERROR)
            return
        self.message_user(request, _("%d records purged.") % count, messages.SUCCESS)


#: Related records shown per inline on a change page: a record with many dependants (or an entity
#: that many others point at) keeps a page of a reasonable size.
INLINE_ROWS = 10


class FirstRowsFormSet(forms.BaseInlineFormSet):
    """The first INLINE_ROWS related records; past them, how many there are and a link to their list."""

    def get_queryset(self):
        if not hasattr(self, "_queryset"):
            self.all_rows = super().get_queryset()
            self._queryset = self.all_rows[:INLINE_ROWS]
        return self._queryset

    @cached_property
    def shown_rows(self) -> int:
        return len(self.get_queryset())

    @cached_property
    def total_rows(self) -> int:
        return self.all_rows.count() if self.shown_rows == INLINE_ROWS else self.shown_rows

    @property
    def more_rows(self) -> bool:
        return self.total_rows > self.shown_rows

    @property
    def all_rows_url(self) -> str:
        opts = self.model._meta
        return f"{reverse(f'admin:{opts.app_label}_{opts.model_name}_changelist')}?{self.fk.name}={self.instance.pk}"


class RecordInline(ReadOnlyAdminMixin, admin.TabularInline):
    """The records of another entity that point at a record, as their viewer may see them: in their
    data scope, without the columns a rule hides or masks. Read-only: each is changed on its own
    page (the link), through the record services. Collapsed, the first INLINE_ROWS of them (an
    entity many others point at has many inlines)."""

    extra = 0
    show_change_link = True
    can_delete = False
    exclude = ["deleted_at"]
    classes = ["collapse"]
    formset = FirstRowsFormSet
    template = "dynamic_models/record_inline.html"

    def has_view_permission(self, request, obj=None):
        return any(rbac.check(request.user, rbac.entity_operation(self.opts.model_name, action), request=request)
                   for action in ("view", "change"))

    def get_queryset(self, request):
        return rbac.scope_queryset(request.user, super().get_queryset(request), request=request)

    def get_fields(self, request, obj=None):
        unreadable = rbac_columns.column_access(request.user, self.model, request=request).unreadable()
        return [name for name in super().get_fields(request, obj) if name not in unreadable]


class ChildInline(admin.TabularInline):
    """The ordered child rows of a record (an entity with the option `child_of`, see
    dynamic_models.children), edited in place: added, changed, reordered (dragged, moved by buttons
    or, without JavaScript, by their order number) and deleted under the child entity's
    permissions, each written by RecordAdmin.save_formset through the record services."""

    extra = 0
    form = RecordForm
    formfield_overrides = JSON_INPUTS
    exclude = ["deleted_at"]
    template = "dynamic_models/child_inline.html"

    class Media:
        js = ["lowcode/vendor/sortablejs/Sortable.min.js", "lowcode/records/child_rows.js"]
        css = {"all": ["lowcode/records/child_rows.css"]}

    @property
    def order_field(self) -> str:
        return children.child_option(self.model)["order_field"]

    def _allowed(self, request, action: str, obj=None) -> bool:
        return rbac.check(request.user, rbac.entity_operation(self.opts.model_name, action), obj, request=request)

    def has_view_permission(self, request, obj=None):
        return self._allowed(request, "view") or self._allowed(request, "change")

    def has_add_permission(self, request, obj=None):
        return self._allowed(request, "add")

    def has_change_permission(self, request, obj=None):
        return self._allowed(request, "change")

    def has_delete_permission(self, request, obj=None):
        return self._allowed(request, "delete")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        kwargs["queryset"] = records.pickable(request.user, db_field.related_model, request=request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_queryset(self, request):
        return rbac.scope_queryset(request.user, super().get_queryset(request), request=request).order_by(
            self.order_field, "pk")

    def get_fields(self, request, obj=None):
        # The order number first (child_rows.js puts the handle beside it); no column the caller may not read.
        unreadable = rbac_columns.column_access(request.user, self.model, request=request).unreadable()
        fields = [name for name in super().get_fields(request, obj) if name not in unreadable and name != self.order_field]
        return fields if self.order_field in unreadable else [self.order_field, *fields]

    def get_readonly_fields(self, request, obj=None):
        # A column a rule makes read-only is shown, not sent (records.save would refuse it); a
        # read-only order number gets no handle.
        rules = rbac_columns.column_access(request.user, self.model, request=request).rules
        stored = {model_field.name for model_field in self.model._meta.fields}
        return [*super().get_readonly_fields(request, obj),
                *(name for name, rule in rules.items() if rule == rbac_columns.READ_ONLY and name in stored)]


#: Prefix of the annotation telling whether the viewer may see a row's related record.
VISIBLE = "lowcode_visible_"


class RecordChangeList(ChangeList):
    """The list of records, knowing which related records the viewer may see, with the values of
    formulas, lookups, rollups and counts (its columns sort by them, its filters read them)."""

    def get_queryset(self, request, exclude_parameters=None):
        self.root_queryset = formulas.annotated(self.root_queryset)
        return self.model_admin.with_visible_relations(super().get_queryset(request, exclude_parameters), request)


class ChoicesListFilter(admin.SimpleListFilter):
    """A list filter of a field Django's own filters do not fit (a formula, lookup, rollup or count;
    users; a link to any record): `options()` gives each choice as (value, label, condition)."""

    #: The entity field it filters by, for the column rules (RB-5).
    field_key = ""

    def options(self, request) -> list[tuple[str, str, Q]]:
        raise NotImplementedError

    def lookups(self, request, model_admin):
        self.conditions = {value: condition for value, _label, condition in self.options(request)}
        return [(value, label) for value, label, _condition in self.options(request)]

    def queryset(self, request, queryset):
        condition = self.conditions.get(self.value())
        return queryset if condition is None else queryset.filter(condition)


def _computed_options(model, spec: dict):
    """The choices of a computed field's list filter: yes and no, the choices of the field read,
    none and some (counts), zero and not (sums), or empty and not; none if records cannot be filtered by it (the
    filter is then not shown). Found on the list's first request, not as the admin is built."""
    key = spec["key"]

    def options(request):
        kind = formulas.value_kind(model, key)
        if kind is None or not kind.lookups:
            return []
        if isinstance(kind.field, models.BooleanField):
            return [("yes", _("Yes"), Q(**{key: True})), ("no", _("No"), Q(**{key: False}))]
        if kind.field.choices:
            return [(str(value), str(label), Q(**{key: value})) for value, label in kind.field.choices]
        if spec["type"] == "count" or spec.get("options", {}).get("function") == "count":
            return [("none", _("None"), Q(**{key: 0})), ("some", _("Some"), Q(**{f"{key}__gt": 0}))]
        if spec.get("options", {}).get("function") == "sum":  # Never empty: a sum over none is 0.
            return [("zero", _("Zero"), Q(**{key: 0})), ("nonzero", _("Not zero"), ~Q(**{key: 0}))]
        return [("empty", _("Empty"), Q(**{f"{key}__isnull": True})),
                ("filled", _("Not empty"), Q(**{f"{key}__isnull": False}))]

    return options


def _users_options(key: str):
    return lambda request: [(str(pk), name, Q(**{f"{key}__contains": [pk]}))
                            for pk, name in business_types.user_choices()]


def _link_options(spec: dict):
    def options(request):
        bodies = runtime.published_entity_bodies()
        return [(entity, (bodies.get(entity) or {}).get("label") or entity, Q(**{f"{spec['key']}__entity": entity}))
                for entity in business_types.GenericLinkType.linkable(spec)]

    return options


def _choices_filter(spec: dict, options) -> type[ChoicesListFilter]:
    key = spec["key"]
    return type(f"{key}_filter", (ChoicesListFilter,), {
        "field_key": key, "parameter_name": key, "title": spec.get("label") or key, "options": staticmethod(options)})


class ImportUploadForm(forms.Form):
    file = forms.FileField(label=gettext_lazy("File"), help_text=gettext_lazy(
        "CSV (UTF-8) or XLSX; the first row holds the field keys, as in an export."))


def _flat_details(details) -> list[dict]:
    """A field's import errors ({"code", "message"} items), nested ones (a list's items) flattened."""
    if isinstance(details, dict):
        return [details] if "message" in details else [item for value in details.values()
                                                       for item in _flat_details(value)]
    return [item for value in details for item in _flat_details(value)]


class VisibleRelatedFilter(admin.RelatedFieldListFilter):
    """A relation's filter that lists only the related records the viewer may see."""

    def field_choices(self, field, request, model_admin):
        queryset = records.pickable(request.user, field.related_model, request=request)
        ordering = self.field_admin_ordering(field, request, model_admin)
        return [(related.pk, str(related)) for related in (queryset.order_by(*ordering) if ordering else queryset)]


def _keep_unseen_values(field: forms.ModelChoiceField, record, name: str, request) -> None:
    """Keep a relation's current values the user may not see as choices, named by id only.

    Otherwise the form would offer none of them as selected, and saving would clear them.
    """
    db_field = record._meta.get_field(name)
    if db_field.many_to_many:
        current = set(getattr(record, name).values_list("pk", flat=True))
    else:
        current = {getattr(record, db_field.attname)} - {None}
    unseen = current - set(field.queryset.filter(pk__in=current).values_list("pk", flat=True))
    if not unseen:
        return
    field.queryset = records.pickable(request.user, field.queryset.model, request=request, keep=unseen)
    named = field.label_from_instance
    field.label_from_instance = lambda related: f"#{related.pk}" if related.pk in unseen else named(related)


def _masked_display(key: str, label: str):
    def display(obj):
        value = obj.formula_value(key) if key in obj.lowcode_formulas else getattr(obj, key)
        return "" if value in (None, "") else rbac.mask(value)

    display.short_description = label
    display.__name__ = f"masked_{key}"
    return display


def _files_display(key: str, label: str):
    """A file column of the list: each file's thumbnail (once made) and name, linked to the file."""

    def display(obj):
        links = []
        for stored in file_fields.current_files(obj, key):
            described = file_fields.describe(stored, obj, key)
            thumbnail = format_html('<img src="{}" alt="" style="max-height: 48px; vertical-align: middle;"> ',
                                    described["preview_url"]) if described["preview_url"] else ""
            links.append(format_html('<a href="{}" target="_blank" rel="noopener">{}{}</a>', described["open_url"],
                                     thumbnail, stored.name))
        return format_html_join(" ", "{}", ((link,) for link in links))

    display.short_description = label
    display.__name__ = f"files_{key}"
    return display


def _masked_files_display(key: str, label: str):
    def display(obj):
        return ", ".join(rbac.mask(stored.name) for stored in file_fields.current_files(obj, key))

    display.short_description = label
    display.__name__ = f"masked_{key}"
    return display


def _named(display, name: str, label: str):
    display.short_description = label
    display.__name__ = name
    return display


def _formula_display(key: str, label: str):
    """A formula (lookup, rollup, count): its value computed for the stored record (the list's
    query computes it with the rows, and sorts by it); a new record has none yet."""

    def display(obj):
        if obj._state.adding:
            return _("Computed on save")
        value = obj.formula_value(key)
        return admin.site.empty_value_display if value is None else value

    return _named(admin.display(ordering=key)(display), f"formula_{key}", label)


def _assigned_display(key: str, label: str):
    """A value the database fills (an auto number): a new record shows that it will get one."""

    def display(obj):
        return _("Assigned on save") if obj._state.adding else getattr(obj, key)

    return _named(display, f"assigned_{key}", label)


def _rich_text_display(key: str, label: str):
    """Rich text read-only in a form: rendered, cleaned again (nh3) as when it was saved."""

    def display(obj):
        value = getattr(obj, key)
        return mark_safe(nh3.clean(value)) if value else admin.site.empty_value_display  # noqa: S308 (cleaned)

    return _named(display, f"rich_{key}", label)


def _related_display(key: str, label: str):
    """A relation column: the related record by its display field if the viewer may see it, else its id."""

    def display(obj):
        related_id = getattr(obj, obj._meta.get_field(key).attname)
        if related_id is None:
            return None
        return str(getattr(obj, key)) if getattr(obj, f"{VISIBLE}{key}", False) else f"#{related_id}"

    return _named(admin.display(ordering=f"{key}__pk")(display), f"related_{key}", label)


#: Characters of rich text a list shows.
LIST_TEXT_CHARS = 80


def _formatted_display(field_type, spec: dict, label: str):
    """A value its type formats in a list: money, a duration, stars, names of users."""
    key = spec["key"]

    def display(obj):
        value = getattr(obj, key)
        return None if value in (None, "", []) else field_type.display_text(spec, obj, value)

    ordering = key if field_type.can_order(spec) else None
    return _named(admin.display(ordering=ordering)(display), f"shown_{key}", label)


def _plain_text_display(key: str, label: str):
    """Rich text in a list: its text without markup, shortened."""

    def display(obj):
        value = getattr(obj, key)
        return Truncator(html.unescape(strip_tags(value))).chars(LIST_TEXT_CHARS) if value else None

    return _named(admin.display(ordering=key)(display), f"plain_{key}", label)


def model_admin_for(model, referrers: list) -> type[RecordAdmin]:
    """Generate the ModelAdmin of one runtime model from its entity body; `referrers`, the
    (model, foreign key) of the other entities pointing at it, become its inlines."""
    body = model.lowcode_entity
    display = body.get("display_field")
    # The first column links to the record: its display field, else its text.
    list_display, list_filter, search_fields, readonly = [display or "__str__"], [DeletedFilter], [], []
    attrs, widgets, column_fields, read_only_as, related_columns = {}, {}, {}, {}, set()
    # The relations the list shows, by name: select_related() alone skips nullable ones (a query per row each).
    select_related = []
    for spec in body["fields"]:
        field_type = field_type_registry.get(spec["type"])
        key, label = spec["key"], spec.get("label") or spec["key"]
        cardinality = spec.get("options", {}).get("cardinality")
        if not field_type.has_column:
            attrs[f"formula_{key}"] = staticmethod(_formula_display(key, label))
            attrs[f"masked_{key}"] = staticmethod(_masked_display(key, label))
            column_fields[f"formula_{key}"] = key
            readonly.append(f"formula_{key}")
            if spec.get("show_in_list", True):
                list_display.append(f"formula_{key}")
            if spec.get("filterable"):
                list_filter.append(_choices_filter(spec, _computed_options(model, spec)))
            continue
        if isinstance(field_type, file_fields.FileType):
            attrs[f"files_{key}"] = staticmethod(_files_display(key, label))
            attrs[f"masked_{key}"] = staticmethod(_masked_files_display(key, label))
            column_fields[f"files_{key}"] = key
            if spec.get("show_in_list", True):
                list_display.append(f"files_{key}")
            if spec.get("read_only"):
                readonly.append(key)
            continue
        attrs[f"masked_{key}"] = staticmethod(_masked_display(key, label))  # Shown to callers a rule masks it for.
        column = key
        if spec["type"] == "rich_text":
            column, read_only_as[key] = f"plain_{key}", f"rich_{key}"
            attrs[column] = staticmethod(_plain_text_display(key, label))
            attrs[read_only_as[key]] = staticmethod(_rich_text_display(key, label))
        elif field_type.filled_by_database:
            read_only_as[key] = f"assigned_{key}"
            attrs[read_only_as[key]] = staticmethod(_assigned_display(key, label))
        elif field_type.formatted:
            column = f"shown_{key}"
            attrs[column] = staticmethod(_formatted_display(field_type, spec, label))
        elif field_type.is_relation and cardinality != "many_to_many":
            column = f"related_{key}"
            attrs[column] = staticmethod(_related_display(key, label))
            related_columns.add(key)
        column_fields.update({name: key for name in (column, read_only_as.get(key)) if name and name != key})
        # The builder's "show in list" decides; a wide list scrolls (record_change_list.html).
        if spec.get("show_in_list", True) and cardinality != "many_to_many" and key != display:
            list_display.append(column)
            if model._meta.get_field(key).many_to_one:
                select_related.append(key)
        if spec.get("filterable") and field_type.filterable:
            options = _users_options(key) if spec["type"] == "users" else _link_options(spec) \
                if spec["type"] == "generic_link" else None
            list_filter.append(key if options is None else _choices_filter(spec, options))
        if spec.get("searchable") and field_type.searchable:
            search_fields.append(key)
        if spec.get("read_only") or field_type.filled_by_database or not model._meta.get_field(key).editable:
            readonly.append(read_only_as.get(key, key))
        widget = field_type.form_widget(spec)
        if widget is not None:
            widgets[key] = widget
    inlines = [type(f"{other.__name__}_{foreign_key.name}_inline",
                    (ChildInline if children.is_child_relation(other, foreign_key.name) else RecordInline,), {
        "model": other, "fk_name": foreign_key.name}) for other, foreign_key in referrers]
    attrs.update({
        "list_display": list_display, "list_filter": list_filter, "search_fields": search_fields,
        "readonly_fields": [*readonly, "created_at", "updated_at", "created_by", "updated_by"],
        "inlines": inlines, "list_select_related": select_related, "widgets": widgets, "column_fields": column_fields,
        "read_only_as": read_only_as, "related_columns": frozenset(related_columns),
    })
    return type(f"{model.__name__}Admin", (RecordAdmin,), attrs)


class RuntimeProtectionMixin:
    """Turn a runtime relation's PROTECT into a message instead of a server error.

    The delete confirmation of a static model (a user) collects dependants through the
    global registry, which does not know runtime models; their rule fires on delete.
    """

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except models.ProtectedError as error:
            self.message_user(request, _("Cannot delete: %s") % error.args[0], messages.ERROR)
            return redirect(request.path.rsplit("/delete/", 1)[0] + "/change/")


def register_entity_admins(site: admin.AdminSite, snapshot) -> None:
    """Register the generated admin of every entity of `snapshot` on a tenant's admin site."""
    models_by_key = {key: snapshot.get_model(key) for key in snapshot.bodies}
    referrers = {model: [] for model in models_by_key.values()}  # One pass: not each entity's fields per entity.
    for other in models_by_key.values():
        for foreign_key in other._meta.fields:
            target = foreign_key.remote_field.model if isinstance(foreign_key, models.ForeignKey) else None
            if target in referrers and target is not other:
                referrers[target].append((other, foreign_key))
    for model in models_by_key.values():
        site.register(model, model_admin_for(model, referrers[model]))


@admin.register(ImportJob)
class ImportJobAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Imports run by Celery: read-only, for operators following a job (the API reports it too)."""

    list_display = ["entity_key", "status", "rows", "progress_display", "created_at", "user", "report_link"]
    list_filter = ["status", "entity_key"]
    list_select_related = ["user"]
    exclude = ["payload"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in ImportJob._meta.fields if f.name != "payload"]

    @admin.display(description=gettext_lazy("rows"), ordering="total")
    def rows(self, job):
        return job.total

    @admin.display(description=gettext_lazy("progress"))
    def progress_display(self, job):
        return f"{transfer.with_live_progress(job).progress} %"

    @admin.display(description=gettext_lazy("report"))
    def report_link(self, job):
        """The job's page in its entity's admin: the progress bar, then the report (if the entity is live)."""
        try:
            url = reverse(f"admin:{runtime.APP_LABEL}_{job.entity_key}_import_job", args=[job.pk])
        except NoReverseMatch:
            return ""
        return format_html('<a href="{}">{}</a>', url, _("Progress and report"))

