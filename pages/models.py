"""The end-user site's own state in a tenant: its theme, how the builder groups and orders the
menu, and the views people save (PG-4, PG-5)."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from files.models import StoredFile
from lowcode.models import TimestampedModel
from rbac.models import Role

hex_colour = RegexValidator(r"^#[0-9a-fA-F]{6}$", _("Enter a colour as #rrggbb, for example #2f6fdf."))


class Theme(TimestampedModel):
    """The tenant's look on its end-user pages and admin: one row (the first), or the defaults."""

    class Mode(models.TextChoices):
        AUTO = "auto", _("As the device prefers")
        LIGHT = "light", _("Light")
        DARK = "dark", _("Dark")

    brand_colour = models.CharField(_("brand colour"), max_length=7, default="#2f6fdf", validators=[hex_colour],
                                    help_text=_("Buttons, links and the menu's highlight, as #rrggbb."))
    mode = models.CharField(_("light or dark"), max_length=5, choices=Mode.choices, default=Mode.AUTO)
    logo = models.ForeignKey(StoredFile, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                             verbose_name=_("logo"), editable=False)

    class Meta:
        verbose_name = _("theme")
        verbose_name_plural = _("theme")

    def __str__(self):
        return str(_("Theme"))


class MenuGroup(models.Model):
    """A heading of the end-user menu, in the builder's order."""

    label = models.CharField(_("label"), max_length=100)
    position = models.PositiveIntegerField(_("position"), default=0)

    class Meta:
        ordering = ["position", "id"]
        verbose_name = _("menu group")
        verbose_name_plural = _("menu groups")

    def __str__(self):
        return self.label


class MenuItem(models.Model):
    """Where one link of the menu goes (an entity's pages or an app's page), under which group and
    in what order; links without an item come last, by label. Permissions still decide who sees it."""

    target = models.CharField(_("link"), max_length=100, unique=True,
                              help_text=_("An entity (entity:expense) or an app's page."))
    label = models.CharField(_("label"), max_length=100, blank=True, help_text=_("Empty: the entity's or page's own."))
    group = models.ForeignKey(MenuGroup, null=True, blank=True, on_delete=models.SET_NULL, related_name="items",
                              verbose_name=_("group"))
    position = models.PositiveIntegerField(_("position"), default=0)
    hidden = models.BooleanField(_("hidden"), default=False, help_text=_("Left out of the menu (its pages stay)."))

    class Meta:
        ordering = ["position", "id"]
        verbose_name = _("menu item")
        verbose_name_plural = _("menu items")

    def __str__(self):
        return self.label or self.target


class SavedView(TimestampedModel):
    """A list as someone arranged it (view type, filters, sort, columns, the field a board groups,
    dates or pictures by), kept for themselves or shared with roles."""

    entity_key = models.CharField(_("entity"), max_length=40, db_index=True)
    name = models.CharField(_("name"), max_length=100)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_views",
                              verbose_name=_("owner"))
    roles = models.ManyToManyField(Role, blank=True, related_name="saved_views", verbose_name=_("shared with"))
    state = models.JSONField(_("state"), default=dict)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = _("saved view")
        verbose_name_plural = _("saved views")

    def __str__(self):
        return self.name
