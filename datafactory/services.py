"""Running data-factory modules (PL-4): the one service the HTML page, the API and tests call.

`run()` judges the input with the forms engine exactly as a form submission (JSON Schema,
conditions, checks; uploads stored by the files app), serves a cached result when the module
asks for one, else runs the handler (in lowcode.sandbox unless the module is trusted) with the
allow-listed API bound to the user, logs the run (ModuleRun) and audits it. The records a
handler writes are kept only when it ends with "ok" or "warning": an error rolls them back.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field, replace
from datetime import timedelta

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from audit import services as audit
from datafactory import audit_actions
from datafactory.models import ModuleRun
from datafactory.modules import DataFactoryModule, module_registry
from dynamic_models import records_api
from forms_engine import services as forms
from lowcode import sandbox
from rbac import services as rbac
from rbac.models import Department

OPERATION = "datafactory.run"


def departments_members(user, department_id: int) -> list[dict]:
    """The members and managers of a department: [{"id", "username"}]."""
    department = Department.objects.filter(pk=department_id).first()
    if department is None:
        raise ValueError(_("No department #%(id)s.") % {"id": department_id})
    people = {person.pk: person for person in [*department.members.all(), *department.managers.all()]}
    return [{"id": person.pk, "username": person.get_username()} for person in people.values()]


def api(user) -> dict:
    """The allow-listed API a handler calls, bound to the user it runs for."""
    return {**records_api.functions(user),
            "departments.members": lambda department_id: departments_members(user, department_id)}


def may_run(module: DataFactoryModule, user) -> bool:
    return all(rbac.check(user, operation) for operation in (OPERATION, *module.requires))


def modules_for(user) -> list[DataFactoryModule]:
    """The modules of this tenant (its enabled plugins') the user may run, by group and label."""
    return sorted((module for module in module_registry.get_all() if may_run(module, user)),
                  key=lambda module: (str(module.group).lower(), str(module.label).lower()))


def in_menu(request) -> bool:
    """The end-user menu links the data factory for those who may run one of its modules."""
    return request.user.is_authenticated and bool(modules_for(request.user))


def get_module(space: str, action: str, user) -> DataFactoryModule:
    """The module at space/action; Http404 if this tenant has none there, PermissionDenied if the
    user may not run it."""
    route = f"{space}/{action}"
    if not module_registry.is_registered(route):
        raise Http404(_("No such module."))
    module = module_registry.get(route)
    if not may_run(module, user):
        missing = next(op for op in (OPERATION, *module.requires) if not rbac.check(user, op))
        raise PermissionDenied(rbac.denial(missing))
    return module


def form(module: DataFactoryModule) -> forms.Form:
    return forms.Form(module.form_key, {"label": module.label, **module.form})


@dataclass
class RunResult:
    ok: bool
    """The input was valid and the handler ran (its status may still be "error")."""
    errors: dict[str, list[str]] = field(default_factory=dict)
    """The input's errors by field ("__all__" for the whole form); nothing ran."""
    run: ModuleRun | None = None
    data: dict = field(default_factory=dict)


def input_hash(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def run(module: DataFactoryModule, post, files, *, user, request=None) -> RunResult:
    """Judge `post` (a QueryDict, or a dict of JSON values) and run the module as `user`."""
    module_form = form(module)
    judged = forms.submit(module_form, _as_post(post), files or _NoFiles(), user=user, request=request)
    if not judged.ok:
        return RunResult(False, judged.errors, data=judged.data)
    data = judged.data
    digest = input_hash(data)
    if module.cache_seconds:
        cached = ModuleRun.objects.filter(module=module.type, input_hash=digest, status=ModuleRun.Status.OK,
                                          cached=False, created_at__gte=timezone.now()
                                          - timedelta(seconds=module.cache_seconds)).first()
        if cached is not None:
            return RunResult(True, run=_log(module, user, data, digest, cached=True, result={
                "status": cached.status, "data": cached.output, "message": cached.message}, logs=[], duration_ms=0),
                data=data)
    started = time.monotonic()
    # All or nothing: what the handler wrote stays only if it ends with "ok" or "warning".
    with transaction.atomic():
        outcome = _execute(module, data, user)
        if outcome.ok:
            result = _result(outcome.value)
        else:
            result = {"status": ModuleRun.Status.ERROR, "data": None, "message": outcome.message,
                      "error": outcome.error}
        if result["status"] == ModuleRun.Status.ERROR:
            transaction.set_rollback(True)
    duration_ms = outcome.duration_ms or (time.monotonic() - started) * 1000
    return RunResult(True, run=_log(module, user, data, digest, result=result, logs=outcome.logs,
                                    duration_ms=duration_ms), data=data)


def _execute(module: DataFactoryModule, data: dict, user) -> sandbox.Outcome:
    who = {"id": user.pk, "username": user.get_username()} if user is not None else {}
    if not module.trusted:
        limits = replace(sandbox.Limits.default(), **module.limits)
        return sandbox.run(module.handler, data, paths=module.paths, api=api(user), user=who, limits=limits)
    return sandbox.run_trusted(module.handler, data, api=api(user), user=who)


def _result(value) -> dict:
    """A handler's return value as {"status", "data", "message"}."""
    if isinstance(value, dict) and value.get("status") in ModuleRun.Status.values:
        return {"status": value["status"], "data": value.get("data"), "message": str(value.get("message") or "")}
    return {"status": ModuleRun.Status.OK, "data": value, "message": ""}


def _log(module: DataFactoryModule, user, data: dict, digest: str, *, result: dict, logs: list, duration_ms: float,
         cached: bool = False) -> ModuleRun:
    run = ModuleRun.objects.create(
        module=module.type, plugin=getattr(module, "plugin", "") or "", user=user, input=data, input_hash=digest,
        output=result.get("data"), status=result["status"], message=result.get("message", ""),
        error=result.get("error", ""), logs=logs, duration_ms=round(duration_ms, 1), cached=cached)
    audit.record(audit_actions.RUN, target=run, actor=user, data={
        "module": module.type, "status": run.status, "error": run.error or None, "cached": cached})
    return run


def recent_runs(module: DataFactoryModule, user, limit: int = 10):
    """The user's last runs of the module (a superuser sees everyone's)."""
    runs = ModuleRun.objects.filter(module=module.type).select_related("user")
    if not user.is_superuser:
        runs = runs.filter(user=user)
    return runs[:limit]


class _NoFiles:
    """request.FILES of a JSON call: no uploads."""

    def getlist(self, key):
        return []


def _as_post(post):
    """A JSON object as the QueryDict the widgets read (lists as repeated values)."""
    if hasattr(post, "getlist"):
        return post
    from django.http import QueryDict

    query = QueryDict(mutable=True)
    for key, value in (post or {}).items():
        for item in value if isinstance(value, list) else [value]:
            query.appendlist(key, "" if item is None else ("true" if item is True else str(item)))
    return query
