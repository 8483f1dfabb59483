"""The audit actions of workflows: every step of a process and every staff intervention."""

from django.utils.translation import gettext_lazy as _

from audit.actions import AuditAction

_PROCESS = "viewflow.process"
_TASK = "viewflow.task"

PROCESS_START = AuditAction("workflows.process.started", _("Workflow started"), _PROCESS)
PROCESS_FINISH = AuditAction("workflows.process.finished", _("Workflow finished"), _PROCESS)
PROCESS_CANCEL = AuditAction("workflows.process.cancelled", _("Workflow cancelled"), _PROCESS)
TOKEN_MOVE = AuditAction("workflows.process.token_moved", _("Workflow token moved"), _PROCESS)
TASK_ASSIGN = AuditAction("workflows.task.assigned", _("Task assigned"), _TASK)
TASK_CLAIM = AuditAction("workflows.task.claimed", _("Task claimed"), _TASK)
TASK_REASSIGN = AuditAction("workflows.task.reassigned", _("Task reassigned"), _TASK)
TASK_ESCALATE = AuditAction("workflows.task.escalated", _("Task escalated"), _TASK)
TASK_REMIND = AuditAction("workflows.task.reminded", _("Task reminder sent"), _TASK)
TASK_COMPLETE = AuditAction("workflows.task.completed", _("Task completed"), _TASK)
TASK_FAIL = AuditAction("workflows.task.failed", _("Service task failed"), _TASK)
TASK_RETRY = AuditAction("workflows.task.retried", _("Service task retried"), _TASK)
DELEGATE = AuditAction("workflows.delegation.created", _("Tasks delegated"), "workflows.delegation")

ACTIONS = [PROCESS_START, PROCESS_FINISH, PROCESS_CANCEL, TOKEN_MOVE, TASK_ASSIGN, TASK_CLAIM, TASK_REASSIGN,
           TASK_ESCALATE, TASK_REMIND, TASK_COMPLETE, TASK_FAIL, TASK_RETRY, DELEGATE]
