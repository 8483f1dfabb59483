"""What a data-factory module is (PL-4), and the registry plugins add theirs to.

A module is declarative: its route, its texts, its form (a forms-engine form body: JSON Schema,
widgets, layout, conditions, checks) and the dotted path of its handler. The web process never
runs the handler's code itself unless the module is `trusted`: lowcode.sandbox runs it in a
separate, limited process with the module's `paths` (its plugin's folder) on sys.path.

A handler is `handle(data, context)`: `data` is the form's cleaned data (uploads as
[{"id", "name", "size", "content_type"}]), `context` gives `context.user` ({"id", "username"}),
`context.log(message)` and the allow-listed API (`context.records.create("expense", {...})`,
see `services.API`). It returns `{"status": "ok" | "warning" | "error", "data": ..., "message":
"..."}` (its Result), or any JSON value, taken as `{"status": "ok", "data": value}`.
"""

from __future__ import annotations

from lowcode.registry import Instance, Registry


class DataFactoryModule(Instance):
    """One module; `type` is its route `space/action`, served at /dmm/<space>/<action>/."""

    group = ""
    label = ""
    help = ""
    #: A forms-engine form body ({"schema", "fields", "layout", ...}).
    form: dict = {}
    #: "package.module:function".
    handler = ""
    #: Run the handler in this process instead of the sandbox (a module of a trusted plugin).
    trusted = False
    #: Serve a result again for the same input for this long (0: never).
    cache_seconds = 0
    #: Operations the user needs besides "datafactory.run" (e.g. "data.expense.add").
    requires: tuple[str, ...] = ()
    #: Limits of lowcode.sandbox.Limits this module changes ({"wall_seconds": 30}).
    limits: dict = {}
    #: Folders put on sys.path for the handler (its plugin's; set when the plugin registers it).
    paths: tuple[str, ...] = ()

    @property
    def space(self) -> str:
        return self.type.partition("/")[0]

    @property
    def action(self) -> str:
        return self.type.partition("/")[2]

    @property
    def form_key(self) -> str:
        return "dmm-" + self.type.replace("/", "-")


module_registry: Registry[DataFactoryModule] = Registry("data-factory module")
