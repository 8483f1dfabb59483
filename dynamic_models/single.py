"""Settings entities (issue 17): an entity whose body says `"single": true` holds exactly one record,
such as a company's settings (Frappe's single DocTypes). A second record is refused on every
write path (model validation, which admin, API, imports and forms run); the admin's and the
end-user site's lists open the one record, or the form that creates it.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext as _


def is_single(model: type[models.Model]) -> bool:
    return bool(getattr(model, "lowcode_entity", {}).get("single"))


def the_record(model: type[models.Model]) -> models.Model | None:
    """The one live record of a settings entity, if it has been created."""
    return model.objects.order_by("pk").first()


def check_new_record(record: models.Model) -> None:
    """Refuse a second record of a settings entity.

    :raises ValidationError: (code `single`) the entity has its record already.
    """
    model = type(record)
    if record._state.adding and is_single(model) and model.objects.exists():
        raise ValidationError(_("%(entity)s holds one record: change it instead of adding another.")
                              % {"entity": str(model._meta.verbose_name).capitalize()}, code="single")
