"""What a plugin may contribute (PL-3): each extension point names the registry its
contributions join. A manifest lists them under `entry_points` (and `permissions`)::

    "entry_points": {"expression_functions": ["fx_tools.functions:FxFunction"]}

Each value is a class (instantiated with no arguments) or an instance of the registry's base
type. A contribution is tagged with its plugin (`Instance.plugin`), so the registry shows it
only in tenants that enable the plugin (lowcode/registry.py). `signal_receivers` take a list of
(dotted path of a Signal, receiver) pairs instead; a receiver runs only in those tenants too.
`commands` are `lowcode.cli.Subcommand`s, run as `lowcode plugin run --tenant T <command> ...`
in tenants that enable their plugin.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.utils.module_loading import import_string

from lowcode.cli import Subcommand
from lowcode.registry import Instance, Registry, is_visible

#: Plugins' management commands (`lowcode plugin run`): apart from the `lowcode` subcommands,
#: whose parser is built before any tenant, and so before a plugin is known to be enabled.
plugin_command_registry: Registry[Subcommand] = Registry("plugin command")


class ExtensionPoint(Instance):
    """A kind of contribution; `add` registers one and returns how to take it back."""

    #: Dotted path of the registry the contributions join.
    registry_path: str = ""

    def __init__(self, name: str, registry_path: str = ""):
        self.type = name
        self.registry_path = registry_path

    def add(self, plugin, contribution) -> Callable[[], None]:
        registry: Registry = import_string(self.registry_path)
        instance = contribution() if isinstance(contribution, type) else contribution
        instance.plugin = plugin.name
        self.prepare(plugin, instance)
        registry.register(instance)
        return lambda: registry.unregister(instance.type)

    def prepare(self, plugin, instance: Instance) -> None:
        """Adapt a contribution of `plugin` before it is registered."""


def static_url(plugin, path: str) -> str:
    """The URL of a file of the plugin's static/ folder (plugins.views); the version in it makes
    it cacheable."""
    return f"/plugins/static/{plugin.name}/{plugin.version}/{path}"


class ExpressionFunctionPoint(ExtensionPoint):
    """A function's browser twin is a script of the plugin's static/ folder, served by this app."""

    def prepare(self, plugin, instance):
        if instance.browser_script and not instance.browser_script.startswith("/"):
            instance.browser_script = static_url(plugin, instance.browser_script)


@dataclass
class _PluginTag:
    """Stands for the plugin when asking whether a receiver may run (`is_visible`)."""

    plugin: str


class DataFactoryModulePoint(ExtensionPoint):
    """A module's handler runs in the sandbox with its plugin's folder on sys.path."""

    def prepare(self, plugin, instance):
        instance.paths = (plugin.path,)


class SignalReceiverPoint(ExtensionPoint):
    def add(self, plugin, contribution):
        undo = []
        for signal_path, receiver in contribution:
            signal = import_string(signal_path)
            tag = _PluginTag(plugin.name)

            def guarded(sender, _receiver=receiver, _tag=tag, **kwargs):
                if is_visible(_tag):
                    return _receiver(sender, **kwargs)
                return None

            uid = f"plugin:{plugin.name}:{signal_path}:{receiver.__module__}.{receiver.__qualname__}"
            signal.connect(guarded, weak=False, dispatch_uid=uid)
            undo.append(lambda _signal=signal, _uid=uid: _signal.disconnect(dispatch_uid=_uid))
        return lambda: [step() for step in undo]


extension_point_registry: Registry[ExtensionPoint] = Registry("plugin extension point")

EXTENSION_POINTS = (
    ExpressionFunctionPoint("expression_functions", "lowcode.expressions.function_registry"),
    ExtensionPoint("field_types", "dynamic_models.registries.field_type_registry"),
    ExtensionPoint("form_widgets", "forms_engine.widgets.widget_registry"),
    ExtensionPoint("page_view_types", "pages.registries.view_type_registry"),
    ExtensionPoint("workflow_actions", "workflows.registries.service_action_registry"),
    ExtensionPoint("notification_channels", "workflows.notifications.channel_registry"),
    ExtensionPoint("commands", "plugins.extension_points.plugin_command_registry"),
    DataFactoryModulePoint("datafactory_modules", "datafactory.modules.module_registry"),
    SignalReceiverPoint("signal_receivers"),
)
