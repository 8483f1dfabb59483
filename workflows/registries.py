"""Registries plugins extend: service actions (what a service task does) and assignment kinds
(who a user task goes to). Built-ins: workflows.actions and workflows.assignment."""

from __future__ import annotations

from dataclasses import dataclass

from lowcode.registry import Instance, Registry
from workflows.context import StepContext


class ServiceAction(Instance):
    """What a service task does (`"action": type`); its options sit beside it in the node."""

    verbose_name: str = ""
    #: Option names of the node this action reads, for the designer's properties panel.
    options: tuple[str, ...] = ()

    def problems(self, node: dict, body: dict, fields: dict | None) -> list[tuple[str, str]]:
        """Return (code, message) pairs for options of `node` that cannot run."""
        return []

    def run(self, context: StepContext) -> None:
        """Do the step; raising marks the service task failed (staff can retry it)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Assignee:
    """Who a task goes to: named users, or a queue members of a role or department can claim."""

    users: tuple = ()
    #: viewflow's `owner_permission`: "role:<key>" or "department:<id>" ("" : none).
    queue: str = ""


class AssignmentKind(Instance):
    """A way to name who does a user task (`"assign": {type: value}`)."""

    verbose_name: str = ""

    def problems(self, value, body: dict, fields: dict | None) -> list[tuple[str, str]]:
        """Return (code, message) pairs if `value` names nobody who could exist."""
        return []

    def resolve(self, value, context: StepContext, *, committee: bool) -> Assignee:
        """Who does the task now; `committee`: every member rather than a queue to claim from."""
        raise NotImplementedError

    def queue_members(self, queue_value: str):
        """The users who may claim tasks of this kind's queue named `queue_value` (a queryset)."""
        raise NotImplementedError


class ScriptHook(Instance):
    """Python code a plugin registers under a name, run by a `script` service task."""

    verbose_name: str = ""

    def run(self, context: StepContext) -> None:
        raise NotImplementedError


service_action_registry: Registry[ServiceAction] = Registry("service action")
assignment_kind_registry: Registry[AssignmentKind] = Registry("assignment kind")
script_hook_registry: Registry[ScriptHook] = Registry("script hook")
