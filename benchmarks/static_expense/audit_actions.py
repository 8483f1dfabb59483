"""The audit actions of the hand-written benchmark API."""

from audit.actions import AuditAction

RECORD_CREATE = AuditAction("static.*.create", "Static %(name)s created")
RECORD_UPDATE = AuditAction("static.*.update", "Static %(name)s changed")

ACTIONS = [RECORD_CREATE, RECORD_UPDATE]
