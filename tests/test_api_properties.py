"""Property-based test of the entity API against its own OpenAPI schema (schemathesis).

Generated requests (valid and invalid) go to every entity endpoint of a live server; no answer
may be a 5xx or contradict the schema (status codes, content types, headers, bodies), and
requests the schema forbids must be refused. Data the schema allows may still break business
rules it cannot express (a future date, an unknown related id), so a 4xx for valid-looking data
is accepted: `positive_data_acceptance` is the one check left out.
"""

from __future__ import annotations

import pytest
import schemathesis
from django_tenants.utils import tenant_context
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.dynamic_models.conftest import EXPENSE_FIELDS, PROJECT_FIELDS, design

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def api_auth(committed_acme, make_user):
    from dynamic_models import runtime, services
    from lowcode.apikeys import services as apikeys

    with tenant_context(committed_acme):
        services.publish(design("project", PROJECT_FIELDS, label="Project", display_field="name"))
        services.publish(design("expense", EXPENSE_FIELDS, label="Expense", display_field="title"))
        runtime.get_model("project").objects.create(name="Apollo", code="APO-001")
    user = make_user(committed_acme, "frank", is_superuser=True, is_staff=True)
    with tenant_context(committed_acme):
        _key, secret = apikeys.create_key(user, name="schemathesis", scopes=["*:write"])
    # requests cannot resolve acme.localhost: connect to the address, name the tenant in Host.
    return {"Authorization": f"Api-Key {secret}", "Host": "acme.localhost"}


@pytest.fixture
def api_schema(live_acme, api_auth, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        "api_key": "100000/min", "user": "100000/min"}}
    address = live_acme.replace("acme.localhost", "127.0.0.1")
    return schemathesis.openapi.from_url(f"{address}/api/schema/?format=json", headers=api_auth)


schema = schemathesis.pytest.from_fixture("api_schema").include(path_regex=r"^/api/v1/data/")


@schema.parametrize()
@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture])
def test_entity_endpoints_keep_their_schema(case, api_auth):
    case.call_and_validate(headers=api_auth, excluded_checks=[positive_data_acceptance])
