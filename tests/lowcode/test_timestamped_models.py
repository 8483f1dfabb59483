"""The static models share their timestamps through one abstract base, without a schema change."""

from io import StringIO

import pytest
from django.core.management import call_command

from dynamic_models.models import Entity
from lowcode.models import TimestampedModel
from lowcode.tenancy.models import Tenant
from metadata.models import Definition
from rbac.models import Department, Role


@pytest.mark.django_db
def test_models_take_their_timestamps_from_the_base_and_migrations_agree():
    for model in (Definition, Entity, Tenant, Role, Department):
        assert issubclass(model, TimestampedModel)
        assert model._meta.get_field("created_at").auto_now_add and model._meta.get_field("updated_at").auto_now
    output = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=output)  # Exits if a migration were missing.
    assert "No changes detected" in output.getvalue()
