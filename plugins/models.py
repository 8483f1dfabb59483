"""Plugins installed on the platform (public schema) and where they are enabled (PL-1, PL-2)."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from lowcode.models import TimestampedModel


class PublisherKey(TimestampedModel):
    """A publisher's Ed25519 public key, registered by platform staff; packages name it by `key_id`."""

    name = models.CharField(_("publisher"), max_length=100)
    key_id = models.CharField(_("key id"), max_length=64, unique=True, editable=False,
                              help_text=_("The first 16 bytes of the key's SHA-256, in hex."))
    public_key = models.CharField(_("public key"), max_length=64, unique=True,
                                  help_text=_("The raw 32-byte Ed25519 public key, base64-encoded."))
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("publisher key")
        verbose_name_plural = _("publisher keys")
        ordering = ["name", "key_id"]

    def __str__(self):
        return f"{self.name} ({self.key_id})"


class Plugin(TimestampedModel):
    """An installed plugin: the version in use, imported from its verified copy at `path`."""

    name = models.CharField(_("name"), max_length=64, unique=True)
    version = models.CharField(_("version"), max_length=64)
    description = models.TextField(_("description"), blank=True)
    author = models.CharField(_("author"), max_length=200, blank=True)
    manifest = models.JSONField(_("manifest"))
    #: {file name: SHA-256} of the signed package: the extracted copy is checked against it when loaded.
    checksums = models.JSONField(_("checksums"))
    path = models.CharField(_("path"), max_length=500, editable=False)
    publisher_key = models.ForeignKey(PublisherKey, models.PROTECT, related_name="plugins",
                                      verbose_name=_("publisher key"))

    class Meta:
        verbose_name = _("plugin")
        verbose_name_plural = _("plugins")
        ordering = ["name"]

    def __str__(self):
        return f"{self.name} {self.version}"

    @property
    def dependencies(self) -> dict[str, str]:
        return self.manifest.get("dependencies", {})


class Activation(models.Model):
    """A plugin enabled in a tenant."""

    tenant = models.ForeignKey(settings.TENANT_MODEL, models.CASCADE, related_name="plugin_activations",
                               verbose_name=_("tenant"))
    plugin = models.ForeignKey(Plugin, models.CASCADE, related_name="activations", verbose_name=_("plugin"))
    enabled_at = models.DateTimeField(_("enabled at"), auto_now_add=True)

    class Meta:
        verbose_name = _("plugin activation")
        verbose_name_plural = _("plugin activations")
        constraints = [models.UniqueConstraint(fields=["tenant", "plugin"], name="plugins_activation_unique")]

    def __str__(self):
        return f"{self.plugin.name} @ {self.tenant_id}"


class PluginEvent(models.Model):
    """A platform step of a plugin's lifecycle (install, upgrade, uninstall, a refusal): the public
    schema has no audit trail, so they are kept here; per-tenant steps go to the tenant's trail."""

    created_at = models.DateTimeField(_("at"), auto_now_add=True, db_index=True)
    action = models.CharField(_("action"), max_length=40)
    plugin = models.CharField(_("plugin"), max_length=64, blank=True)
    version = models.CharField(_("version"), max_length=64, blank=True)
    result = models.CharField(_("result"), max_length=20, default="ok")
    actor = models.CharField(_("actor"), max_length=150, blank=True)
    detail = models.JSONField(_("detail"), default=dict, blank=True)

    class Meta:
        verbose_name = _("plugin event")
        verbose_name_plural = _("plugin events")
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.action} {self.plugin} {self.version} ({self.result})"
