"""The audit actions of entity records (one family per change, for every entity) and schema migrations."""

from django.utils.translation import gettext_lazy as _

from audit.actions import AuditAction

RECORD_CREATE = AuditAction("data.*.create", _("Record created (%(name)s)"), "data.*")
RECORD_UPDATE = AuditAction("data.*.update", _("Record changed (%(name)s)"), "data.*")
RECORD_DELETE = AuditAction("data.*.delete", _("Record deleted (%(name)s)"), "data.*")
RECORD_RESTORE = AuditAction("data.*.restore", _("Record restored (%(name)s)"), "data.*")
RECORD_PURGE = AuditAction("data.*.purge", _("Record purged (%(name)s)"), "data.*")
RECORD_RESTORE_VERSION = AuditAction("data.*.restore_version", _("Former version of a record restored (%(name)s)"),
                                     "data.*")
RECORD_VIEW = AuditAction("data.*.view", _("Record viewed (%(name)s)"), "data.*")
RECORDS_EXPORT = AuditAction("data.*.export", _("Records exported (%(name)s)"), "data.*")
RECORDS_IMPORT = AuditAction("data.*.import", _("Records imported (%(name)s)"), "data.*")
MIGRATION_APPLY = AuditAction("dynamic_models.migration.apply", _("Schema migration applied"),
                              "dynamic_models.schemamigration")
DESIGN_DISCARD = AuditAction("dynamic_models.entity.discard_changes", _("Unpublished design changes discarded"),
                             "dynamic_models.entity")

#: The record actions by verb, as `records` names them.
RECORD_ACTIONS = {action.type.rsplit(".", 1)[-1]: action for action in (
    RECORD_CREATE, RECORD_UPDATE, RECORD_DELETE, RECORD_RESTORE, RECORD_PURGE, RECORD_RESTORE_VERSION)}

ACTIONS = [*RECORD_ACTIONS.values(), RECORD_VIEW, RECORDS_EXPORT, RECORDS_IMPORT, MIGRATION_APPLY, DESIGN_DISCARD]
