"""Signals of workflows, sent when the transaction commits (notifications and others subscribe).

All are sent with sender = the viewflow Process model.
"""

from django.dispatch import Signal

#: A user task got people: `task`, `users` (the owners, or the members of its queue), `queue` ("" or
#: "role:<key>" / "department:<id>"), `reason` ("assigned", "escalated", "reassigned", "delegated").
task_assigned = Signal()
#: A user task was completed: `task`, `user`, `outcome`, `comment`.
task_completed = Signal()
#: A process reached its end (or was cancelled): `process`, `outcome` (the end's: approved, rejected,
#: cancelled, completed).
process_finished = Signal()
#: A notification was created: `notification` (workflows.models.Notification). Channels beyond the
#: in-app bell (email, plugins) deliver it.
notified = Signal()
