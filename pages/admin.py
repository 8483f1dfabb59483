"""The end-user site in the tenant's admin: the theme (colour, light or dark, logo), the menu's
groups and order, and the saved views people keep."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from audit.admin import AuditedAdminMixin
from files.exceptions import FileRefused
from pages import services
from pages.models import MenuGroup, MenuItem, SavedView, Theme


class ThemeForm(forms.ModelForm):
    logo_upload = forms.ImageField(label=_("New logo"), required=False,
                                   help_text=_("PNG, JPEG, GIF, WebP or SVG; shown 28 pixels high."))

    class Meta:
        model = Theme
        fields = ["brand_colour", "mode"]
        widgets = {"brand_colour": forms.TextInput(attrs={"type": "color"})}


@admin.register(Theme)
class ThemeAdmin(AuditedAdminMixin, admin.ModelAdmin):
    form = ThemeForm
    fields = ["brand_colour", "mode", "logo_preview", "logo_upload"]
    readonly_fields = ["logo_preview"]
    list_display = ["__str__", "brand_colour", "mode", "updated_at"]

    @admin.display(description=_("Logo"))
    def logo_preview(self, obj):
        url = services.logo_url(obj)
        return format_html('<img src="{}" alt="" style="height: 28px">', url) if url else "—"

    def has_add_permission(self, request):
        return super().has_add_permission(request) and not Theme.objects.exists()  # One theme per tenant.

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        upload = form.cleaned_data.get("logo_upload")
        if upload:
            try:
                services.set_logo(obj, upload, user=request.user)
            except FileRefused as error:
                raise ValidationError({"logo_upload": str(error)}) from error


class MenuItemForm(forms.ModelForm):
    target = forms.ChoiceField(label=_("link"))

    class Meta:
        model = MenuItem
        fields = ["target", "label", "group", "position", "hidden"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target"].choices = services.menu_targets()


class MenuItemInline(admin.TabularInline):
    model = MenuItem
    form = MenuItemForm
    extra = 0


@admin.register(MenuGroup)
class MenuGroupAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["label", "position"]
    list_editable = ["position"]
    inlines = [MenuItemInline]


@admin.register(MenuItem)
class MenuItemAdmin(AuditedAdminMixin, admin.ModelAdmin):
    form = MenuItemForm
    list_display = ["__str__", "target", "group", "position", "hidden"]
    list_editable = ["group", "position", "hidden"]
    list_filter = ["group", "hidden"]


@admin.register(SavedView)
class SavedViewAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["name", "entity_key", "owner", "updated_at"]
    list_filter = ["entity_key"]
    search_fields = ["name"]
    list_select_related = ["owner"]
    filter_horizontal = ["roles"]
    readonly_fields = ["entity_key", "owner", "state"]
