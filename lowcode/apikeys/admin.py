"""API keys in the tenant's admin: create (the key is shown once), rename, revoke."""

import re

from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from lowcode.apikeys import services
from lowcode.apikeys.models import ApiKey


class ApiKeyAddForm(forms.ModelForm):
    scopes = forms.CharField(
        label=gettext_lazy("scopes"), widget=forms.Textarea(attrs={"rows": 3}),
        initial=", ".join(services.DEFAULT_SCOPES),
        help_text=gettext_lazy("What the key may do, one scope per line or separated by commas. A scope is an "
                               "entity key, * for every entity or metadata for the design, then :read or :write "
                               "(write includes read). For example expense:read reads expenses, *:write reads and "
                               "changes every entity's records, metadata:read reads the design."))

    class Meta:
        model = ApiKey
        fields = ["name", "user", "scopes", "expires_at"]

    def clean_scopes(self):
        scopes = [scope for scope in re.split(r"[,\s]+", self.cleaned_data["scopes"]) if scope]
        return services.validate_scopes(scopes)

    def clean_expires_at(self):
        services.validate_expires_at(self.cleaned_data["expires_at"])
        return self.cleaned_data["expires_at"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "scope_list", "expires_at", "last_used_at", "revoked_at", "created_at"]
    list_select_related = ["user"]
    search_fields = ["name", "prefix", "user__username"]
    autocomplete_fields = ["user"]
    actions = ["revoke"]
    add_fields = ["name", "user", "scopes", "expires_at"]
    # A key's grants are fixed at creation: a different grant is a new key, so old copies stop working.
    change_fields = ["name", "user", "prefix", "hashed_key", "scope_list", "expires_at", "last_used_at",
                     "revoked_at", "created_at", "created_by"]

    def get_fields(self, request, obj=None):
        return self.change_fields if obj else self.add_fields

    def get_readonly_fields(self, request, obj=None):
        return [field for field in self.change_fields if field != "name"] if obj else []

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyAddForm
        return super().get_form(request, obj, change, **kwargs)

    @admin.display(description=gettext_lazy("scopes"))
    def scope_list(self, obj):
        return ", ".join(obj.scopes)

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        key, full_key = services.create_key(obj.user, name=obj.name, scopes=obj.scopes,
                                            expires_at=obj.expires_at, created_by=request.user)
        # The admin goes on with `obj` (log entry, redirect): make it the row the service created.
        for field in ApiKey._meta.concrete_fields:
            setattr(obj, field.attname, getattr(key, field.attname))
        obj._state.adding = False
        messages.success(request, _("The new API key %(name)s is %(key)s. Copy it now: it will not be shown again.")
                         % {"name": key.name, "key": full_key})

    @admin.action(description=gettext_lazy("Revoke selected keys"))
    def revoke(self, request, queryset):
        keys = list(queryset.filter(revoked_at__isnull=True))
        for key in keys:
            services.revoke(key)
        self.message_user(request, ngettext("%d API key revoked.", "%d API keys revoked.", len(keys)) % len(keys),
                          messages.SUCCESS)
