"""An entity publish in one process is seen by another on its next request (DM-2, MD-5); a publish of
another kind rebuilds no model there."""

import pytest
from django_tenants.utils import tenant_context

from dynamic_models import services
from dynamic_models.models import Field
from metadata import services as definitions
from metadata.registries import DefinitionKind, definition_kind_registry
from tests.second_process import SecondProcess

from .conftest import design

# A long-lived second process answering "requests": each loads the tenant row as
# TenantMainMiddleware does, then looks the runtime model up (its snapshot stays cached).
SECOND_PROCESS = """
import sys
import django
django.setup()
from django.db import connection
from django_tenants.utils import get_tenant_model
from dynamic_models import runtime
for line in sys.stdin:
    connection.set_tenant(get_tenant_model().objects.get(schema_name="acme"))
    model = runtime.get_model(line.strip())
    print(id(model), ",".join(sorted(f.name for f in model._meta.fields)), flush=True)
"""


@pytest.fixture
def note_kind():
    """A kind of definition with no runtime, standing for forms, pages and workflows."""
    kind = definition_kind_registry.register(type("NoteKind", (DefinitionKind,), {"type": "note"})())
    yield kind
    definition_kind_registry.unregister(kind.type)


def test_second_process_sees_a_publish_on_its_next_request(committed_acme, test_database_url, note_kind):
    with tenant_context(committed_acme):
        project = design("project", [{"key": "name", "type": "text"}])
        services.publish(project)
    with SecondProcess(SECOND_PROCESS, test_database_url) as worker:
        ask = worker.ask
        first_id, first_fields = ask("project")
        assert "budget" not in first_fields.split(",")
        assert ask("project")[0] == first_id  # Cached between requests.
        with tenant_context(committed_acme):
            definitions.save_and_publish(note_kind.type, "hello", {"title": "Hello"})
        assert ask("project")[0] == first_id  # Another kind's publish rebuilds no entity model.
        with tenant_context(committed_acme):
            Field.objects.create(entity=project, key="budget", type="decimal", position=1)
            services.publish(project)
        second_id, second_fields = ask("project")
        assert "budget" in second_fields.split(",") and second_id != first_id
