"""What a step of a process works on: its record, variables and actor, and how expressions see them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model

#: The tenant's own user that service tasks act as: it cannot sign in (no usable password).
SYSTEM_USERNAME = "workflow"


@dataclass
class StepContext:
    """One step of one process, as service actions and assignments see it."""

    process: Any
    #: The node of the body the step runs (its dict).
    node: dict
    #: The record the process is bound to (None for a workflow without an entity).
    record: Any = None
    #: The process variables (viewflow's Process.data), changed in place by actions.
    variables: dict = field(default_factory=dict)
    #: Who decided the last user task, else who started the process (None: nobody).
    actor: Any = None

    def expression_context(self) -> dict:
        return expression_context(self)


def system_user():
    """The tenant's workflow user (created on first use): records written by service tasks name it."""
    user, created = get_user_model().objects.get_or_create(
        username=SYSTEM_USERNAME, defaults={"is_superuser": True, "is_active": True})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def user(pk):
    return get_user_model().objects.filter(pk=pk).first() if pk else None


def record_of(process):
    """The record a process is bound to (None: no entity, or the record is gone).

    Kept on the process object: the steps of one activation chain share it, so a service task's
    write is what the next gateway reads, without loading the record again.
    """
    from dynamic_models import runtime as dm_runtime

    cached = process.__dict__.get("_workflow_record")
    if cached is not None and cached.pk == process.artifact_object_id:
        return cached
    flow = process.flow_class
    entity = flow.body.get("entity") if flow is not None else None
    if not entity or not process.artifact_object_id:
        return None
    record = dm_runtime.get_model(entity).objects.filter(pk=process.artifact_object_id).first()
    process.__dict__["_workflow_record"] = record
    return record


def actor_of(process):
    """Who decided the process's last user task, else who started it (kept on the process object)."""
    pk = process.data.get("actor") or process.data.get("started_by")
    cached = process.__dict__.get("_workflow_actor")
    if cached is None or cached.pk != pk:
        cached = process.__dict__["_workflow_actor"] = user(pk)
    return cached


def for_process(process, node: dict) -> StepContext:
    return StepContext(process=process, node=node, record=record_of(process), variables=process.data,
                       actor=actor_of(process))


def for_activation(activation) -> StepContext:
    return for_process(activation.process, activation.flow_task.spec)


def expression_context(step: StepContext) -> dict:
    """`record.<field>` (plus the variables `outcome` and `comment`) and `user.<attribute>` (the actor)."""
    from rbac import services as rbac
    from rbac.registries import entity_records
    from rbac.scopes import sample_context, user_context

    values = entity_records().record_values(step.record) if step.record is not None else {}
    values.update(outcome=step.variables.get("outcome"), comment=step.variables.get("comment"))
    actor = user_context(step.actor, rbac.effective(step.actor)) if step.actor else sample_context()["user"]
    return {"record": values, "user": actor}
