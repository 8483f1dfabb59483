from django.db import models
from django.utils.translation import gettext_lazy as _

from metadata.models import Definition


class FormDefinitionManager(models.Manager):
    def get_queryset(self):
        return super().get_queryset().filter(kind="form")


class FormDefinition(Definition):
    """The versions of `form` definitions, as the admin lists and designs them."""

    objects = FormDefinitionManager()

    class Meta:
        proxy = True
        verbose_name = _("form")
        verbose_name_plural = _("forms")
