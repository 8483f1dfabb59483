"""Property-based test of the whole tenant API against its own OpenAPI schema (schemathesis).

Generated requests (valid and invalid) go to every operation of acme's schema on a live server:
records of `project`, `expense` and `scratch`, import jobs, `me`, the metadata API and rbac's
explain. No answer may be a 5xx or contradict the schema (status codes, content types, headers,
bodies, allowed methods), requests the schema forbids must be refused, and requests without
credentials must be. Data the schema allows may still break business rules it cannot express
(a future date, an unknown related id, a field key that is reserved, a design that does not
publish), so a 4xx for valid-looking data is accepted: `positive_data_acceptance` is the one
check left out.

Random ids and keys mostly name nothing (404), so hooks put things that exist into a good share
of the cases: record ids of the entity in the path, the entity `scratch` and its fields, its
versions, schema migrations, import jobs, users and operations for explain. Writes of the
metadata API to an existing design (publish, roll back, purge, delete, field changes, bundle
imports) only ever name `scratch`: `project` and `expense` keep their design for the record
operations; new designs get keys of their own. Some coverage-phase cases that repeat others are
left out (`thin_coverage`), to keep the run within a few minutes. The schema is
loaded once, before the run; operations run in its order, records before metadata, so a
design that the metadata API changes later cannot make earlier answers contradict it.
"""

from __future__ import annotations

import datetime
import json
import zlib

import pytest
import schemathesis
from django_tenants.utils import tenant_context
from hypothesis import HealthCheck, settings
from rest_framework.throttling import SimpleRateThrottle
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.meta import TestPhase
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.dynamic_models.conftest import EXPENSE_FIELDS, PROJECT_FIELDS, design

pytestmark = pytest.mark.django_db(transaction=True)

PATH, QUERY, BODY = ParameterLocation.PATH, ParameterLocation.QUERY, ParameterLocation.BODY

SCRATCH = "scratch"
#: Entities whose design the run must not change: the record operations use them.
KEPT = ("project", "expense")
SCRATCH_FIELDS = [
    {"key": "title", "type": "text", "required": True, "searchable": True, "options": {"max_length": 80}},
    {"key": "count", "type": "integer", "filterable": True, "options": {"min": 0, "max": 1000}},
    {"key": "price", "type": "decimal", "options": {"max_digits": 8, "decimal_places": 2}},
    {"key": "done", "type": "boolean", "required": True, "default": False},
    {"key": "due", "type": "date"},
    {"key": "seen_at", "type": "datetime"},
    {"key": "contact", "type": "email"},
    {"key": "size", "type": "choice", "options": {"choices": [{"value": "s"}, {"value": "m"}, {"value": "l"}]}},
    {"key": "tags", "type": "multiple_choice", "options": {"choices": [{"value": "red"}, {"value": "blue"}]}},
    {"key": "extra", "type": "json"},
    {"key": "project", "type": "relation", "options": {"target": "project", "on_delete": "set_null"}},
]
#: Share of generated values (of 16) that are replaced by one that exists.
EXISTING_SHARE = 12

#: What exists in acme for this run, filled by the `api_auth` fixture before cases are generated.
existing: dict = {}


@pytest.fixture
def api_auth(committed_acme, make_user):
    from dynamic_models import runtime, services
    from dynamic_models.models import ImportJob, SchemaMigration
    from lowcode.apikeys import services as apikeys

    user = make_user(committed_acme, "frank", is_superuser=True, is_staff=True)
    make_user(committed_acme, "alice")
    with tenant_context(committed_acme):
        services.publish(design("project", PROJECT_FIELDS, label="Project", display_field="name"))
        services.publish(design("expense", EXPENSE_FIELDS, label="Expense", display_field="title"))
        services.publish(design(SCRATCH, SCRATCH_FIELDS, label="Scratch", display_field="title"))
        projects = [runtime.get_model("project").objects.create(name=f"Project {n}", code=f"PRJ-00{n}")
                    for n in range(1, 4)]
        expenses = [runtime.get_model("expense").objects.create(
            title=f"Taxi {n}", amount="12.50", spent_on=datetime.date(2026, 1, n), project=projects[n - 1],
            submitted_by=user) for n in range(1, 4)]
        scratches = [runtime.get_model(SCRATCH).objects.create(
            title=f"Row {n}", count=n, price="1.50", done=n % 2 == 0, due=datetime.date(2026, 2, n),
            contact=f"row{n}@example.com", size="m", tags=["red"], extra={"n": n}, project=projects[0])
            for n in range(1, 4)]
        jobs = [ImportJob.objects.create(entity_key="expense", file_format=ImportJob.Format.CSV, user=user),
                ImportJob.objects.create(entity_key=SCRATCH, file_format=ImportJob.Format.JSON, user=user,
                                         status=ImportJob.Status.SUCCEEDED, total=1, processed=1, valid=1,
                                         created=1)]
        existing.clear()
        existing.update({
            "tenant": committed_acme,
            "records": {"project": [r.pk for r in projects], "expense": [r.pk for r in expenses],
                        SCRATCH: [r.pk for r in scratches]},
            "fields": {key: [spec["key"] for spec in fields] for key, fields in
                       (("project", PROJECT_FIELDS), ("expense", EXPENSE_FIELDS), (SCRATCH, SCRATCH_FIELDS))},
            "import_jobs": [job.pk for job in jobs],
            "migrations": list(SchemaMigration.objects.values_list("pk", flat=True)),
            "users": ["frank", "alice"],
            "operations": ["data.expense.view", "data.scratch.change", "designer.access", "rbac.manage"],
        })
        _key, secret = apikeys.create_key(user, name="schemathesis", scopes=["*:write", "metadata:write"])
    # requests cannot resolve acme.localhost: connect to the address, name the tenant in Host.
    return {"Authorization": f"Api-Key {secret}", "Host": "acme.localhost"}


# --- Hooks: a good share of the generated values name things that exist ------------------------


def _pick(values: list, seed) -> object | None:
    """One of `values` for most seeds, None (keep the generated value) for the others; the same
    seed always gives the same answer, so the run stays deterministic."""
    digest = zlib.crc32(json.dumps(seed, sort_keys=True, default=str).encode())
    if not values or digest % 16 >= EXISTING_SHARE:
        return None
    return values[(digest // 16) % len(values)]


def _is_id_list(value) -> bool:
    return isinstance(value, list) and 0 < len(value) <= 1000 and all(
        isinstance(item, int) and not isinstance(item, bool) for item in value)


def _path_entity(path: str) -> str | None:
    """The entity whose records a /api/v1/data/<entity>/... operation handles."""
    parts = path.split("/")
    return parts[4] if len(parts) > 4 and parts[3] == "data" and parts[4] != "import-jobs" else None


def _versions(key: str) -> list[int]:
    from metadata.models import Definition

    with tenant_context(existing["tenant"]):
        return list(Definition.objects.filter(kind="entity", key=key).values_list("version", flat=True))


class _Replacer:
    """Puts existing values into the case's containers that were generated as valid values (a case
    meant to break the schema stays broken where it breaks it)."""

    def __init__(self, case):
        self.case = case
        # The whole generated request: the coverage phase sends one path value with many bodies.
        self.seed = [case.operation.label, case.path_parameters, case.query,
                     case.body if isinstance(case.body, dict | list | str | int | float) else None]
        meta = case.meta
        self.valid = {location for location in ParameterLocation
                      if meta is None or not meta.is_negative_at(location)}

    def new_key(self) -> None:
        """A body that creates an entity or a field gets a key of its own (the coverage phase sends one key)."""
        body = self.case.body
        if BODY in self.valid and isinstance(body, dict) and isinstance(body.get("key"), str):
            digest = zlib.crc32(json.dumps(self.seed, sort_keys=True, default=str).encode())
            body["key"] = f"{body['key'][:30]}_{digest % 10000}"

    def __call__(self, location: ParameterLocation, name: str, candidates: list) -> None:
        container = self.case.get_container(location)
        if location not in self.valid or not isinstance(container, dict) or name not in container:
            return
        value = container[name]
        if value is None or isinstance(value, bool | dict):
            return
        choice = _pick(candidates, [*self.seed, name])
        if choice is not None:
            # Path and query values travel as text; bodies keep JSON types.
            container[name] = choice if isinstance(value, int | list) else str(choice)


def use_existing(context, case):
    """Most generated ids and keys name records, entities, fields, versions, jobs and users that exist."""
    path, method = case.operation.path, case.method.upper()
    records = existing["records"]
    replace = _Replacer(case)
    entity = _path_entity(path)
    if entity in records:
        replace(PATH, "id", records[entity])
        replace(BODY, "project", records["project"])
        if _is_id_list(case.body.get("ids") if isinstance(case.body, dict) else None):
            replace(BODY, "ids", [records[entity][:1], records[entity]])
    elif path.startswith("/api/v1/data/import-jobs/"):
        replace(PATH, "id", existing["import_jobs"])
    elif path.startswith("/api/v1/meta/migrations/"):
        replace(PATH, "id", existing["migrations"])
        replace(QUERY, "entity", list(records))
    elif path == "/api/v1/rbac/explain/":
        replace(QUERY, "user", existing["users"])
        replace(QUERY, "operation", existing["operations"])
        replace(QUERY, "record", records[SCRATCH] + records["expense"])
    elif path == "/api/v1/meta/bundles/export/":
        replace(QUERY, "entity", [[key] for key in records])
    elif path == "/api/v1/meta/entities/" and method == "POST":
        replace.new_key()
    elif path.startswith("/api/v1/meta/entities/{"):
        name = "key" if "key" in case.path_parameters else "entity_key"
        # Reads may look at any entity; writes change scratch only.
        replace(PATH, name, list(records) if method == "GET" else [SCRATCH])
        key = case.path_parameters[name]
        if key in records:
            versions = _versions(key)
            replace(PATH, "field_key", existing["fields"][key])
            replace(PATH, "version", versions)
            for name in ("from", "to", "version"):
                replace(QUERY, name, versions)
            replace(BODY, "to_version", versions)
            if path.endswith("/fields/") and method == "POST":
                replace.new_key()
    return keep_designs(case)


def keep_designs(case):
    """The metadata API changes no design but scratch's (whatever value was generated)."""
    path, params = case.operation.path, case.path_parameters or {}
    if case.method.upper() != "GET":
        for name in ("key", "entity_key"):
            if params.get(name) in KEPT:
                params[name] = SCRATCH
        if path == "/api/v1/meta/bundles/import/" and isinstance(case.body, dict):
            definitions = case.body.get("definitions")
            for definition in definitions if isinstance(definitions, list) else ():
                if isinstance(definition, dict) and definition.get("key") in KEPT:
                    definition["key"] = SCRATCH
    return case


def thin_coverage(context, case) -> bool:
    """Leave out coverage-phase cases that repeat others, to keep the run within minutes:
    - exports filter as their entity's list does, whose coverage varies every filter;
    - a value varied while other filters are blank meets the 400 for the blank ones first (each
      value is also varied alone);
    - form bodies of records reach the serializer that JSON ones do;
    - invalid bodies of updates (PUT, PATCH) and invalid rows of bulk requests meet the serializer
      whose every field the create's invalid bodies vary (the wrong shapes of a bulk body stay).
    The fuzzing phase still sends all kinds."""
    meta = case.meta
    if meta is None or meta.phase.name != TestPhase.COVERAGE:
        return True
    location, varied = meta.phase.data.parameter_location, meta.phase.data.parameter
    path, body = case.operation.path, case.body
    if "/export." in path and location == QUERY:
        return False
    if location == QUERY and any(value == "" for name, value in (case.query or {}).items() if name != varied):
        return False
    if location == BODY and case.media_type not in (None, "application/json") and path.startswith("/api/v1/data/"):
        return False
    if location != BODY or not meta.generation.mode.is_negative:
        return True
    if path.endswith("/bulk/"):
        return not (isinstance(body, list) and body and all(isinstance(row, dict) for row in body))
    return case.method.upper() not in ("PUT", "PATCH")


@pytest.fixture
def api_schema(live_acme, api_auth, monkeypatch):
    # Throttles read their rates once, when DRF's settings load.
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"api_key": "100000/min", "user": "100000/min"})
    address = live_acme.replace("acme.localhost", "127.0.0.1")
    loaded = schemathesis.openapi.from_url(f"{address}/api/schema/?format=json", headers=api_auth)
    loaded.hook("filter_case")(thin_coverage)
    loaded.hook("map_case")(use_existing)
    return loaded


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture])
def test_api_keeps_its_schema(case, api_auth):
    case.call_and_validate(headers=api_auth, excluded_checks=[positive_data_acceptance])
