"""Who does a user task (WF-3): the built-in assignment kinds and the people behind a queue.

A user task names one kind: a user, a role (a queue its members claim from, or every member
for a committee), a department (likewise), the manager of a user field of the record (through
rbac's department tree) or an expression giving a username.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from lowcode.expressions import ExpressionError, compile_expression
from rbac.models import Department, Role
from workflows.context import StepContext
from workflows.exceptions import WorkflowError
from workflows.registries import Assignee, AssignmentKind


def _users():
    return get_user_model().objects.filter(is_active=True)


def role_members(key: str):
    """The active users holding role `key`: directly, through a department, or through a role below it."""
    keys, frontier = {key}, {key}
    while frontier:  # A role whose parent is `key` gives its holders `key` too.
        frontier = set(Role.objects.filter(parents__key__in=frontier).values_list("key", flat=True)) - keys
        keys |= frontier
    departments = Department.objects.filter(roles__key__in=keys).values("pk")
    return _users().filter(Q(rbac_roles__key__in=keys) | Q(rbac_departments__in=departments)
                           | Q(rbac_managed_departments__in=departments)).distinct()


def department_members(department_id: int):
    return _users().filter(Q(rbac_departments=department_id) | Q(rbac_managed_departments=department_id)).distinct()


def manager_of(user) -> object | None:
    """The manager of `user`: of the user's department, or of the nearest one above that has
    another manager (a department's manager answers to the manager above)."""
    departments = list(Department.objects.filter(Q(members=user) | Q(managers=user)).distinct().order_by("path"))
    for department in departments:
        current = department
        while current is not None:
            manager = current.managers.filter(is_active=True).exclude(pk=user.pk).order_by("pk").first()
            if manager is not None:
                return manager
            current = current.parent
    return None


def queue_members(queue: str):
    """The users who may claim a task of `queue` ("role:<key>" or "department:<id>")."""
    kind, _sep, value = queue.partition(":")
    if kind == "role":
        return role_members(value)
    if kind == "department" and value.isdigit():
        return department_members(int(value))
    return _users().none()


def queue_labels(queues) -> dict[str, str]:
    """{queue: the queue in words} ("Finance (role)", "Sales (department)"; the raw text if it names
    nothing), two queries whatever the number of queues."""
    queues = {queue for queue in queues if queue}
    keys = {queue.partition(":")[2] for queue in queues if queue.startswith("role:")}
    ids = {int(queue.partition(":")[2]) for queue in queues
           if queue.startswith("department:") and queue.partition(":")[2].isdigit()}
    roles = dict(Role.objects.filter(key__in=keys).values_list("key", "name")) if keys else {}
    departments = dict(Department.objects.filter(pk__in=ids).values_list("pk", "name")) if ids else {}
    labels = {}
    for queue in queues:
        kind, _sep, value = queue.partition(":")
        if kind == "role" and value in roles:
            labels[queue] = _("%(name)s (role)") % {"name": roles[value]}
        elif kind == "department" and value.isdigit() and int(value) in departments:
            labels[queue] = _("%(name)s (department)") % {"name": departments[int(value)]}
        else:
            labels[queue] = queue
    return labels


def label_queues(tasks) -> list:
    """Set `queue_label` (the queue of each task in words, "" for none) on `tasks`, for pages."""
    tasks = list(tasks)
    labels = queue_labels(task.owner_permission for task in tasks)
    for task in tasks:
        task.queue_label = labels.get(task.owner_permission or "", "")
    return tasks


def queues_of(user) -> list[str]:
    """The queues `user` may claim tasks from: one per role held and per department."""
    from rbac import services as rbac

    effective = rbac.effective(user)
    return [f"role:{key}" for key in sorted(effective.roles)] + [
        f"department:{pk}" for pk in sorted(effective.department_ids)]


def user_field_problems(key: str, body: dict) -> list[tuple[str, str]]:
    """(code, message) if `key` is no user field of the workflow's entity (who a step is about)."""
    from dynamic_models import runtime

    entity = runtime.published_entity_bodies().get(body.get("entity") or "") or {"fields": []}
    if key not in [spec["key"] for spec in entity["fields"] if spec["type"] == "user"]:
        return [("unknown_user_field", _("%(field)r is no user field of the workflow's entity.") % {"field": key})]
    return []


class UserAssignment(AssignmentKind):
    type = "user"
    verbose_name = gettext_lazy("User")

    def problems(self, value, body, fields):
        if not _users().filter(username=value).exists():
            return [("unknown_user", _("No active user %(name)r.") % {"name": value})]
        return []

    def resolve(self, value, context, *, committee):
        user = _users().filter(username=value).first()
        if user is None:
            raise WorkflowError(_("No active user %(name)r to assign the task to.") % {"name": value})
        return Assignee(users=(user,))


class RoleAssignment(AssignmentKind):
    type = "role"
    verbose_name = gettext_lazy("Role")

    def problems(self, value, body, fields):
        if not Role.objects.filter(key=value).exists():
            return [("unknown_role", _("No role %(key)r.") % {"key": value})]
        return []

    def resolve(self, value, context, *, committee):
        if committee:
            return Assignee(users=tuple(role_members(value).order_by("username")))
        return Assignee(queue=f"role:{value}")


class DepartmentAssignment(AssignmentKind):
    """A department by name (names are what builders see; the first by tree order wins)."""

    type = "department"
    verbose_name = gettext_lazy("Department")

    def problems(self, value, body, fields):
        if not Department.objects.filter(name=value).exists():
            return [("unknown_department", _("No department %(name)r.") % {"name": value})]
        return []

    def resolve(self, value, context, *, committee):
        department = Department.objects.filter(name=value).order_by("path").first()
        if department is None:
            raise WorkflowError(_("No department %(name)r to assign the task to.") % {"name": value})
        if committee:
            return Assignee(users=tuple(department_members(department.pk).order_by("username")))
        return Assignee(queue=f"department:{department.pk}")


class ManagerAssignment(AssignmentKind):
    """The manager of the user a field of the record names (the submitter, usually)."""

    type = "manager_of"
    verbose_name = gettext_lazy("Manager of")

    def problems(self, value, body, fields):
        return user_field_problems(value, body)

    def resolve(self, value, context, *, committee):
        user_id = getattr(context.record, f"{value}_id", None) if context.record is not None else None
        user = _users().filter(pk=user_id).first() if user_id else None
        manager = manager_of(user) if user else None
        if manager is None:
            raise WorkflowError(_("Nobody manages the user in %(field)s.") % {"field": value})
        return Assignee(users=(manager,))


class ExpressionAssignment(AssignmentKind):
    """An expression over the record and the last decision giving a username."""

    type = "expression"
    verbose_name = gettext_lazy("Expression")

    def problems(self, value, body, fields):
        from rbac.scopes import USER_ATTRIBUTE_TYPES

        if fields is None:
            return []
        try:
            result = compile_expression(value).check(fields, user=USER_ATTRIBUTE_TYPES, database=False)
        except ExpressionError as error:
            return [(getattr(error, "code", None) or "expression", str(error))]
        if result.kind not in ("text", "null"):
            return [("not_text", _("The expression must give a username (text)."))]
        return []

    def resolve(self, value, context: StepContext, *, committee):
        username = compile_expression(value).evaluate(context.expression_context())
        user = _users().filter(username=username).first() if isinstance(username, str) else None
        if user is None:
            raise WorkflowError(_("The assignment expression gave no active user (%(value)r).") % {"value": username})
        return Assignee(users=(user,))


BUILTIN_ASSIGNMENT_KINDS = (UserAssignment, RoleAssignment, DepartmentAssignment, ManagerAssignment,
                            ExpressionAssignment)


def delegate_of(user, at):
    """Whom `user` delegated their tasks to at `at` (None: nobody)."""
    from workflows.models import Delegation

    delegation = (Delegation.objects.filter(user=user, starts__lte=at, ends__gt=at)
                  .select_related("delegate").order_by("-starts").first())
    return delegation.delegate if delegation else None


def assign(task, owner, queue: str) -> None:
    """Give `task` to `owner` (or whom they delegated to now), else put it in `queue` (unsaved)."""
    from viewflow.workflow.status import STATUS

    task.data.pop("delegated_from", None)
    if owner is None:
        task.owner, task.owner_permission, task.status, task.assigned = None, queue, STATUS.NEW, None
        return
    delegate = delegate_of(owner, timezone.now())
    if delegate is not None:
        task.data["delegated_from"] = owner.pk
        owner = delegate
    task.owner, task.owner_permission, task.status, task.assigned = owner, None, STATUS.ASSIGNED, timezone.now()


def task_users(task) -> list:
    """Who a task waits for: its owner, or the members of its queue."""
    return [task.owner] if task.owner_id else list(queue_members(task.owner_permission or ""))


def may_complete(task, user) -> bool:
    """Whether `user` may decide `task`: its owner, or a member of its queue while nobody claimed it."""
    from viewflow.workflow.status import STATUS

    if user is None or not user.is_authenticated or task.status not in (STATUS.NEW, STATUS.ASSIGNED, STATUS.STARTED):
        return False
    if task.owner_id:
        return task.owner_id == user.pk
    return bool(task.owner_permission) and task.owner_permission in queues_of(user)
