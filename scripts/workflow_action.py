"""The workflow service task "Run a script" (`"action": "run_script", "script": key`): the script runs
as the tenant's workflow user with the process's record and variables; its result goes into the
variable `scripts.<node id>`, and a failed run fails the task (staff can retry it)."""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from workflows.context import system_user
from workflows.exceptions import WorkflowError
from workflows.registries import ServiceAction


class RunScript(ServiceAction):
    type = "run_script"
    verbose_name = gettext_lazy("Run a script")
    options = ("script",)

    def problems(self, node, body, fields):
        from scripts.models import Script

        if not Script.objects.filter(key=node.get("script") or "", enabled=True).exists():
            return [("unknown_script", _("No enabled script %(key)r.") % {"key": node.get("script")})]
        return []

    def run(self, context):
        from dynamic_models import records_api
        from scripts import services

        user = system_user()
        script = services.get_script(context.node["script"])
        record = None
        if context.record is not None:
            entity = context.record.lowcode_entity["key"]
            record = {"entity": entity, **records_api.get_record(user, entity, context.record.pk)}
        params = {key: value for key, value in context.variables.items() if key != "scripts"}
        result = services.run(script, user=user, params=params, record=record, trigger="workflow")
        if result.status != result.Status.OK:
            raise WorkflowError(_("The script %(key)s failed: %(message)s") % {"key": script.key,
                                                                               "message": result.message})
        context.variables.setdefault("scripts", {})[context.node["id"]] = result.output
