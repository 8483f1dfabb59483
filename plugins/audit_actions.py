"""The audit actions of plugins in a tenant's trail (platform steps are PluginEvents: the public
schema has no trail)."""

from django.utils.translation import gettext_lazy as _

from audit.actions import AuditAction

_PLUGIN = "plugins.plugin"

ENABLE = AuditAction("plugin.enabled", _("Plugin enabled"), _PLUGIN)
DISABLE = AuditAction("plugin.disabled", _("Plugin disabled"), _PLUGIN)

ACTIONS = [ENABLE, DISABLE]
