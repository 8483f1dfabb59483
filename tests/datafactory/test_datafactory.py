"""Data-factory modules (PL-4): a module's form judged by the forms engine, its handler run in the
sandbox with the records API as the requesting user (rbac, audit), every run logged, results cached
on request, served as an HTML page and a JSON API."""

from pathlib import Path

import pytest
from django.db import connection

from audit.models import AuditEvent
from datafactory.models import ModuleRun
from datafactory.modules import DataFactoryModule, module_registry
from dynamic_models import runtime
from rbac import services as rbac
from rbac.models import Role
from tests.designers import client_of

HANDLERS = (str(Path(__file__).parent / "handlers"),)
FORM = {
    "schema": {"type": "object", "properties": {"title": {"type": "string", "minLength": 3, "maxLength": 40},
                                                "amount": {"type": "number", "exclusiveMinimum": 0}},
               "required": ["title", "amount"]},
    "fields": {"title": {"widget": "text", "label": "Title"}, "amount": {"widget": "number", "label": "Amount"}},
    "layout": {"steps": [{"key": "main", "label": "", "items": [{"field": "title"}, {"field": "amount"}]}]},
}


def module(route: str, handler: str, **attributes) -> DataFactoryModule:
    instance = DataFactoryModule()
    instance.type, instance.label, instance.group, instance.handler = route, f"Test {route}", "Tests", handler
    instance.form, instance.paths = FORM, HANDLERS
    instance.limits = {"cpu_seconds": 2, "wall_seconds": 5}
    for name, value in attributes.items():
        setattr(instance, name, value)
    return instance


@pytest.fixture
def modules():
    registered = [module("tests/expense", "sample_handlers:add_expense", requires=("data.expense.add",)),
                  module("tests/iban", "sample_handlers:read_iban"),
                  module("tests/spin", "sample_handlers:spin"),
                  module("tests/environment", "sample_handlers:environment"),
                  module("tests/cached", "sample_handlers:add_expense", cache_seconds=60),
                  module("tests/trusted", "tests.datafactory.handlers.sample_handlers:plain_value", trusted=True)]
    for instance in registered:
        module_registry.register(instance)
    yield {instance.type: instance for instance in registered}
    for instance in registered:
        module_registry.unregister(instance.type)


@pytest.fixture
def runners(people):
    """Members may run modules (a tenant admin grants it to roles)."""
    rbac.grant(Role.objects.get(key=Role.MEMBER), "datafactory.run")
    return people


def test_alice_runs_a_module_that_creates_her_expense_audited(runners, modules):
    alice = client_of(runners["alice"])
    page = alice.get("/dmm/tests/expense/")
    assert page.status_code == 200
    assert 'name="title"' in page.content.decode() and "Test tests/expense" in page.content.decode()

    last_event = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    response = alice.post("/dmm/tests/expense/", {"title": "Taxi to the airport", "amount": "42.50"})

    assert response.status_code == 200
    run = ModuleRun.objects.get()
    assert (run.status, run.user, run.input) == ("ok", runners["alice"], {"title": "Taxi to the airport",
                                                                          "amount": 42.5})
    assert run.logs == [f"created #{run.output['id']}"] and run.duration_ms > 0
    assert "One expense." in response.content.decode()
    expense = runtime.get_model("expense").objects.get(pk=run.output["id"])
    assert (expense.title, expense.submitted_by_id) == ("Taxi to the airport", runners["alice"].pk)
    assert AuditEvent.objects.filter(action="data.expense.create", target_id=str(expense.pk),
                                     actor_id=runners["alice"].pk, seq__gt=last_event).exists()
    assert AuditEvent.objects.filter(action="datafactory.module.run", target_id=str(run.pk)).exists()


def test_bad_input_is_refused_naming_the_field_and_nothing_runs(runners, modules):
    alice = client_of(runners["alice"])

    page = alice.post("/dmm/tests/expense/", {"title": "ab", "amount": "-1"})
    api = alice.post("/api/v1/dmm/tests/expense/", {"title": "Taxi"}, content_type="application/json")

    assert page.status_code == 400
    assert api.status_code == 400
    assert set(api.json()) == {"amount"} and api.json()["amount"][0]["message"]
    assert not ModuleRun.objects.exists()


def test_the_api_describes_and_runs_a_module(runners, modules):
    alice = client_of(runners["alice"])

    described = alice.get("/api/v1/dmm/tests/expense/").json()
    response = alice.post("/api/v1/dmm/tests/expense/", {"title": "Hotel night", "amount": 120},
                          content_type="application/json")

    assert described["route"] == "tests/expense" and described["schema"]["required"] == ["title", "amount"]
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["data"]["amount"], body["message"]) == ("ok", "120.00", "One expense.")
    schema = alice.get("/api/schema/?format=json").json()
    assert "/api/v1/dmm/{space}/{action}/" in schema["paths"]


def test_the_handler_reads_through_the_one_read_path(runners, modules):
    """A member's handler sees her own expenses only, with the IBAN masked as she would."""
    alice = client_of(runners["alice"])

    body = alice.post("/api/v1/dmm/tests/iban/", {"title": "List", "amount": 1}, content_type="application/json").json()

    Expense = runtime.get_model("expense")
    assert len(body["data"]) == Expense.objects.filter(submitted_by=runners["alice"]).count()
    assert body["data"] and all(iban is None or iban.startswith("****") for iban in body["data"])


def test_permissions_the_module_and_the_records_need(people, modules):
    bea = client_of(people["bea"])  # A builder: no datafactory.run.
    assert bea.get("/dmm/tests/expense/").status_code == 403
    assert bea.post("/api/v1/dmm/tests/expense/", {}, content_type="application/json").status_code == 403
    assert "datafactory.run" in bea.get("/api/v1/dmm/tests/expense/").json()["detail"]
    rbac.grant(Role.objects.get(key=Role.MEMBER), "datafactory.run")
    frank = client_of(people["frank"])  # Finance may not add expenses: the module needs it.
    assert frank.get("/dmm/tests/expense/").status_code == 403
    assert client_of(people["alice"]).get("/dmm/no/such/").status_code == 404
    listed = client_of(people["alice"]).get("/dmm/").content.decode()
    assert "Test tests/expense" in listed


@pytest.mark.parametrize(("route", "errors"), [
    ("tests/spin", {"cpu", "timeout"}),  # CPU time, or the wall clock first on a busy machine.
    ("tests/environment", {"forbidden"}),
])
def test_a_failing_handler_is_an_error_result_logged_as_such(runners, modules, route, errors):
    alice = client_of(runners["alice"])

    body = alice.post(f"/api/v1/dmm/{route}/", {"title": "Attack", "amount": 1}, content_type="application/json").json()

    assert body["status"] == "error" and body["error"] in errors
    assert ModuleRun.objects.get().error == body["error"]


def test_a_module_that_asks_for_it_serves_a_cached_result(runners, modules):
    alice = client_of(runners["alice"])
    Expense = runtime.get_model("expense")
    before = Expense.objects.count()

    first = alice.post("/api/v1/dmm/tests/cached/", {"title": "Lunch", "amount": 9}, content_type="application/json").json()
    second = alice.post("/api/v1/dmm/tests/cached/", {"title": "Lunch", "amount": 9}, content_type="application/json").json()
    other = alice.post("/api/v1/dmm/tests/cached/", {"title": "Lunch", "amount": 10}, content_type="application/json").json()

    assert (first["cached"], second["cached"], other["cached"]) == (False, True, False)
    assert second["data"] == first["data"]
    assert Expense.objects.count() == before + 2


def test_a_trusted_module_runs_in_this_process(runners, modules):
    body = client_of(runners["alice"]).post("/api/v1/dmm/tests/trusted/", {"title": "quick", "amount": 1},
                                            content_type="application/json").json()

    assert (body["status"], body["data"]) == ("ok", "QUICK")


def test_modules_of_one_tenant_are_not_anothers_runs(runners, modules, globex):
    client_of(runners["alice"]).post("/api/v1/dmm/tests/trusted/", {"title": "quick", "amount": 1},
                                     content_type="application/json")
    connection.set_tenant(globex)
    assert not ModuleRun.objects.exists()


def test_the_menu_links_the_data_factory_for_those_who_may_run_a_module(people, modules):
    alice = client_of(people["alice"])
    assert 'href="/dmm/"' not in alice.get("/forms/").content.decode()

    rbac.grant(Role.objects.get(key=Role.MEMBER), "datafactory.run")

    assert 'href="/dmm/"' in alice.get("/forms/").content.decode()
