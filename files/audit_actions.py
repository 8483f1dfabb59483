"""The audit actions of stored files. (A deleted tenant's files are removed after its schema, and
so its trail, is gone: that purge is logged, not audited.)"""

from django.utils.translation import gettext_lazy as _

from audit.actions import AuditAction

UPLOAD = AuditAction("file.upload", _("File uploaded"), "files.storedfile")
DELETE = AuditAction("file.delete", _("File deleted (no longer used)"), "files.storedfile")

ACTIONS = [UPLOAD, DELETE]
