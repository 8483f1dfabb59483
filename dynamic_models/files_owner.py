"""Entity records as owners of files (FL-2): who may read a file of a record's field.

Registered from `DynamicModelsConfig.ready()` as the "record" owner; the download and open views
of `files` ask it for every request, so a file is readable exactly when its record and field are.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from dynamic_models import file_fields, runtime
from files.registries import FileOwner
from rbac import columns as rbac_columns
from rbac import services as rbac


class RecordFiles(FileOwner):
    """A file of a record's field: readable when rbac's read path shows the record (the view
    operation and its data scope) and the field in clear (not hidden, not masked)."""

    type = file_fields.OWNER_TYPE
    verbose_name = _("record")

    def may_read(self, user, *, owner_key, object_id, field, request=None):
        if user is None or not object_id.isdigit():
            return False
        try:
            model = runtime.get_model(owner_key)
        except LookupError:
            return False
        if field not in file_fields.file_specs(model):
            return False
        if not rbac.check(user, rbac.entity_operation(owner_key, "view"), request=request):
            return False
        if field in rbac_columns.column_access(user, model, request=request).unreadable():
            return False
        return rbac.scope_queryset(user, model.all_objects.filter(pk=int(object_id)), request=request).exists()
