"""Plugins in the platform admin (publisher keys; install and upgrade by upload; uninstall; the
lifecycle's events) and in each tenant's admin (enable and disable, for its superusers)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from lowcode.admin_site import ReadOnlyAdminMixin
from lowcode.tenancy.admin import platform_site
from plugins import services
from plugins.models import Activation, Plugin, PluginEvent, PublisherKey
from plugins.packages import load_public_key


def _actor(request) -> str:
    return request.user.get_username()


class PublisherKeyForm(forms.ModelForm):
    class Meta:
        model = PublisherKey
        fields = ["name", "public_key"]

    def clean_public_key(self):
        load_public_key(self.cleaned_data["public_key"])
        return self.cleaned_data["public_key"].strip()


@admin.register(PublisherKey, site=platform_site)
class PublisherKeyAdmin(admin.ModelAdmin):
    form = PublisherKeyForm
    list_display = ["name", "key_id", "created_at", "revoked_at"]
    readonly_fields = ["key_id", "created_at", "revoked_at"]
    actions = ["revoke"]

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        key = services.register_key(obj.name, obj.public_key, actor=_actor(request))
        obj.pk = key.pk

    @admin.action(description=_("Revoke the selected keys"))
    def revoke(self, request, queryset):
        for key in queryset:
            services.revoke_key(key.key_id, actor=_actor(request))
        self.message_user(request, ngettext("%(count)d key revoked.", "%(count)d keys revoked.", len(queryset))
                          % {"count": len(queryset)}, messages.SUCCESS)


class PackageForm(forms.ModelForm):
    """Install a package, or upgrade the installed plugin of the same name; a refusal is the form's error."""

    package = forms.FileField(label=_("Signed package (.zip)"))

    class Meta:
        model = Plugin
        fields = []

    def clean_package(self):
        data = self.cleaned_data["package"].read()
        try:
            package = services.verify(data)
            installed = Plugin.objects.filter(name=package.name).exists()
            change = services.upgrade if installed else services.install
            self.plugin = change(data, actor=self.actor)
        except ValidationError as error:
            raise ValidationError(error.messages, code=getattr(error, "code", "invalid")) from error
        return None


@admin.register(Plugin, site=platform_site)
class PlatformPluginAdmin(admin.ModelAdmin):
    list_display = ["name", "version", "author", "publisher_key", "updated_at"]
    readonly_fields = ["name", "version", "description", "author", "publisher_key", "manifest", "path",
                       "created_at", "updated_at"]
    fields = readonly_fields
    actions = ["uninstall"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is not None:
            return super().get_form(request, obj, change, **kwargs)
        form = type("BoundPackageForm", (PackageForm,), {"actor": _actor(request)})
        return form

    def get_fields(self, request, obj=None):
        return ["package"] if obj is None else self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        obj.pk = form.plugin.pk

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description=_("Uninstall the selected plugins (their data is kept)"))
    def uninstall(self, request, queryset):
        for plugin in queryset:
            try:
                services.uninstall(plugin.name, actor=_actor(request))
            except ValidationError as error:
                self.message_user(request, " ".join(error.messages), messages.ERROR)


@admin.register(PluginEvent, site=platform_site)
class PluginEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "action", "plugin", "version", "result", "actor"]
    list_filter = ["action", "result"]
    readonly_fields = ["created_at", "action", "plugin", "version", "result", "actor", "detail"]


@admin.register(Plugin)
class TenantPluginAdmin(admin.ModelAdmin):
    """The installed plugins in a tenant's admin: its superusers enable and disable them here."""

    list_display = ["name", "version", "enabled", "description"]
    readonly_fields = ["name", "version", "description", "author", "manifest"]
    fields = readonly_fields
    actions = ["enable", "disable"]

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_change_permission(self, request, obj=None):
        return obj is None and self.has_module_permission(request)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def get_queryset(self, request):
        here = Activation.objects.filter(plugin=OuterRef("pk"), tenant=request.tenant)
        return super().get_queryset(request).annotate(enabled_here=Exists(here))

    @admin.display(description=_("enabled here"), boolean=True)
    def enabled(self, obj):
        return obj.enabled_here

    def _step(self, request, queryset, step, done):
        for plugin in queryset:
            try:
                step(request.tenant, plugin.name, user=request.user)
            except ValidationError as error:
                self.message_user(request, " ".join(error.messages), messages.ERROR)
                continue
            self.message_user(request, done % {"name": plugin.name}, messages.SUCCESS)

    @admin.action(description=_("Enable the selected plugins here"))
    def enable(self, request, queryset):
        self._step(request, queryset, services.enable, _("%(name)s is enabled."))

    @admin.action(description=_("Disable the selected plugins here"))
    def disable(self, request, queryset):
        self._step(request, queryset, services.disable, _("%(name)s is disabled."))
