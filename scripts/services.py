"""Running scripts (SC-1): the one service the test console, the API and workflow steps call.

A run gets the records API bound to the user it runs for (rbac's one read and write path:
scopes, masking, audit); what it writes stays only if it ends without an error. Every run is
logged (ScriptRun) and audited.
"""

from __future__ import annotations

from django.db import transaction
from django.http import Http404
from django.utils.translation import gettext as _

from audit import services as audit
from dynamic_models import records_api
from scripts import audit_actions, engine
from scripts.models import Script, ScriptRun


def get_script(key: str) -> Script:
    """The enabled script `key`; Http404 if there is none."""
    script = Script.objects.filter(key=key, enabled=True).first()
    if script is None:
        raise Http404(_("No such script."))
    return script


def load_record(user, reference) -> dict | None:
    """`{"entity": key, "id": id}` as the user may read the record (records_api), or None."""
    if not reference:
        return None
    if not isinstance(reference, dict) or not reference.get("entity") or not reference.get("id"):
        raise records_api.RecordsApiError(_('Give the record as {"entity": "<key>", "id": <id>}.'))
    return {"entity": reference["entity"], **records_api.get_record(user, reference["entity"], reference["id"])}


def run(script: Script, *, user, params: dict | None = None, record: dict | None = None,
        trigger: str = ScriptRun.Trigger.CONSOLE) -> ScriptRun:
    """Run `script` as `user` with `params` and `record` (already read as the user may see it)."""
    who = {"id": user.pk, "username": user.get_username()} if user is not None else None
    inputs = {"params": params or {}, "record": record, "user": who}
    with transaction.atomic():
        outcome = engine.run(script.code, inputs, api=records_api.functions(user), time_limit=script.time_limit,
                             memory_mb=script.memory_limit)
        if not outcome.ok:
            transaction.set_rollback(True)
    result = ScriptRun.objects.create(
        script=script, user=user, trigger=trigger, input=inputs, output=outcome.value if outcome.ok else None,
        logs=outcome.logs, status=ScriptRun.Status.OK if outcome.ok else ScriptRun.Status.ERROR,
        error=outcome.error, message=outcome.message, duration_ms=round(outcome.duration_ms, 2))
    audit.record(audit_actions.RUN, target=result, actor=user, data={
        "script": script.key, "trigger": trigger, "status": result.status, "error": result.error or None})
    return result


def last_runs(script: Script, limit: int = 10):
    return script.runs.select_related("user")[:limit]
