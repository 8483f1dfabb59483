"""The platform admin (public schema): tenants, domains, platform staff, schedules."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import AdminUserCreationForm
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from lowcode.tenancy import quotas, services
from lowcode.tenancy.models import Domain, Tenant


class PlatformAdminSite(admin.AdminSite):
    """The public schema's admin at the platform domain (localhost)."""

    site_header = _("Lowcode platform")
    site_title = _("Lowcode platform")
    index_title = _("Platform administration")


platform_site = PlatformAdminSite(name="platform")


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0


@admin.register(Tenant, site=platform_site)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["schema_name", "name", "status", "plan", "primary_domain", "created_at"]
    list_filter = ["status", "plan"]
    search_fields = ["schema_name", "name", "domains__domain"]
    readonly_fields = ["created_at", "updated_at", "quota_usage"]
    inlines = [DomainInline]
    actions = ["suspend", "resume"]
    fieldsets = [
        (None, {"fields": ["name", "schema_name", "status", "plan"]}),
        (_("Quotas"), {"fields": ["max_users", "max_records", "max_storage_bytes", "max_api_calls_per_day",
                                  "quota_usage"]}),
        (_("Uploads"), {"fields": ["max_upload_bytes", "allowed_upload_types"]}),
        (_("Data"), {"fields": ["phone_region"]}),
        (_("History"), {"fields": ["created_at", "updated_at"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("domains")

    def get_readonly_fields(self, request, obj=None):
        # The schema name is the tenant's identity in the database: fixed once created. The
        # public tenant is the platform itself: never suspended.
        if obj is None:
            return self.readonly_fields
        return [*self.readonly_fields, "schema_name", *(["status"] if obj.is_public else [])]

    def get_actions(self, request):
        # Deleting drops a schema after exporting it: one tenant at a time, from its page.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and not (obj is not None and obj.is_public)

    def delete_model(self, request, obj):
        path = services.delete_tenant(obj, export_dir=services.DEFAULT_EXPORT_DIR)
        self.message_user(request, _("Its data was exported to %s.") % path, messages.INFO)

    @admin.display(description=_("usage"))
    def quota_usage(self, obj):
        if obj is None or obj.pk is None or obj.is_public:
            return "-"
        return format_html_join(mark_safe("<br>"), "{}: {}", ((usage.quota.verbose_name, str(usage))
                                                              for usage in quotas.usage_report(obj)))

    @admin.display(description=_("primary domain"))
    def primary_domain(self, obj):
        return next((d.domain for d in obj.domains.all() if d.is_primary), "")

    def _change_status(self, request, queryset, service, done_message):
        changed = 0
        for tenant in queryset:
            try:
                service(tenant)
                changed += 1
            except services.TenancyError as error:
                self.message_user(request, str(error), messages.ERROR)
        if changed:
            self.message_user(request, done_message(changed), messages.SUCCESS)

    @admin.action(description=_("Suspend selected tenants"))
    def suspend(self, request, queryset):
        self._change_status(request, queryset, services.suspend_tenant,
                            lambda n: ngettext("%d tenant suspended.", "%d tenants suspended.", n) % n)

    @admin.action(description=_("Resume selected tenants"))
    def resume(self, request, queryset):
        self._change_status(request, queryset, services.resume_tenant,
                            lambda n: ngettext("%d tenant resumed.", "%d tenants resumed.", n) % n)


class QuotaCheckedUserCreationForm(AdminUserCreationForm):
    def clean(self):
        cleaned = super().clean()
        try:
            quotas.check("users")
        except quotas.QuotaExceeded as error:
            raise forms.ValidationError(error.messages, code=error.code) from None
        return cleaned


class TenantUserAdmin(UserAdmin):
    """Django's user admin, whose add form tells when the tenant's user quota is reached."""

    add_form = QuotaCheckedUserCreationForm


def adopt_shared_models() -> None:
    """Show the public schema's models on the platform site.

    Apps whose tables live only in public (for example django-celery-beat) move off the
    tenant admin, where they would show platform data; apps in both schemas appear on both.
    Called from TenancyConfig.ready(), after the admin autodiscovery.
    """
    shared_only = set(settings.SHARED_APPS) - set(settings.TENANT_APPS)
    for model, model_admin in list(admin.site._registry.items()):
        app_name = model._meta.app_config.name
        if app_name not in settings.SHARED_APPS or platform_site.is_registered(model):
            continue
        platform_site.register(model, type(model_admin))
        if app_name in shared_only:
            admin.site.unregister(model)
    user_model = get_user_model()
    if isinstance(admin.site._registry.get(user_model), UserAdmin):
        admin.site.unregister(user_model)
        admin.site.register(user_model, TenantUserAdmin)
