"""Emulate on_delete for runtime foreign keys to User.

Django's deletion collector walks `User._meta`, which never learns about runtime models (they
live in private registries), so a user delete would otherwise fail at commit on the
database constraint. This applies each user field's rule first (stack-notes.md).
"""

from django.db import models

from dynamic_models import runtime
from dynamic_models.data.apps import connection_has_tenant


def apply_user_on_delete(sender, instance, **kwargs) -> None:
    if not connection_has_tenant():
        return
    for model in runtime.current().get_models():
        for field in model._meta.fields:
            if not (isinstance(field, models.ForeignKey) and field.remote_field.model is sender):
                continue
            rows = model.all_objects.filter(**{field.name: instance})
            if field.remote_field.on_delete is models.PROTECT and rows.exists():
                raise models.ProtectedError(
                    f"{instance} is referenced by {model._meta.verbose_name_plural} ({field.name}).", set(rows[:10]))
            rows.update(**{field.name: None})
