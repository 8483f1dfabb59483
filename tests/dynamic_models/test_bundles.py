"""App bundles (MD-4): export from acme, import into a tenant created by the test, on real schemas."""

import copy
import datetime
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django_tenants.utils import tenant_context

from dynamic_models import runtime, services
from dynamic_models.models import Entity, Field
from lowcode.tenancy.services import create_tenant
from metadata.bundles import export_bundle, import_bundle
from metadata.exceptions import BundleError, InvalidBundle
from metadata.models import Definition
from metadata.services import get_published
from rbac import services as rbac
from tests.dynamic_models.conftest import EXPENSE_FIELDS, PROJECT_FIELDS, RECEIPT_FIELD, design

EXAMPLES = Path(settings.BASE_DIR) / "examples"


@pytest.fixture
def initech(db):
    """A tenant created by the test (its schema goes with the test's transaction)."""
    return create_tenant(schema_name="initech", name="Initech", domain="initech.localhost")


@pytest.fixture
def bundle(tenant) -> dict:
    """acme's scenario entities, in app `expenses`, exported."""
    services.publish(design("project", PROJECT_FIELDS, label="Project", label_plural="Projects",
                            display_field="name", app="expenses"))
    services.publish(design("expense", EXPENSE_FIELDS, label="Expense", label_plural="Expenses",
                            display_field="title", app="expenses"))
    return export_bundle(app="expenses")


def write(directory: Path, bundle) -> Path:
    path = directory / "bundle.json"
    path.write_text(json.dumps(bundle))
    return path


def entity_tables(schema: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
                       "AND table_name LIKE 'dm\\_%%'", [schema])
        return {row[0] for row in cursor.fetchall()}


def assert_untouched(tenant) -> None:
    with tenant_context(tenant):
        assert not Definition.objects.exists()
        assert not Entity.objects.exists()
        assert runtime.published_entity_bodies() == {}
    assert entity_tables(tenant.schema_name) == set()


def rows(report: list[dict]) -> list[tuple[str, str]]:
    return [(row["key"], row["action"]) for row in report]


def test_export_import_through_the_commands_reproduces_the_entities(bundle, initech, tmp_path):
    path = tmp_path / "expenses.json"
    call_command("lowcode", "export", "--tenant", "acme", "--app", "expenses", "--output", str(path),
                 stdout=io.StringIO())
    stdout = io.StringIO()
    call_command("lowcode", "export", "--tenant", "acme", "--app", "expenses", stdout=stdout)
    exported = json.loads(path.read_text())
    assert json.loads(stdout.getvalue())["definitions"] == exported["definitions"]
    assert exported["format"] == "lowcode.bundle" and exported["format_version"] == 1
    assert exported["app"] == "expenses"
    assert [(d["kind"], d["key"]) for d in exported["definitions"]] == [("entity", "project"), ("entity", "expense")]
    acme_bodies = {d["key"]: d["body"] for d in exported["definitions"]}
    assert acme_bodies["expense"] == get_published("entity", "expense").body

    out = io.StringIO()
    call_command("lowcode", "import", str(path), "--tenant", "initech", stdout=out)
    assert "Imported into initech: 2 create" in out.getvalue()

    with tenant_context(initech):
        for key in ("project", "expense"):
            assert get_published("entity", key).body == acme_bodies[key]
            assert services.entity_body(Entity.objects.get(key=key)) == acme_bodies[key]
            assert Entity.objects.get(key=key).published_version == 1
        Project, Expense = runtime.get_model("project"), runtime.get_model("expense")
        project = Project.objects.create(name="Initrode", code="INI-001", budget=Decimal("10.00"))
        expense = Expense.objects.create(title="Stapler", amount=Decimal("9.90"), spent_on=datetime.date(2026, 3, 1),
                                         project=project)
        expense.refresh_from_db()
        assert expense.number == "EXP-0001" and expense.currency == "CNY"
    assert entity_tables("initech") == {"dm_project", "dm_expense"}


def test_dry_run_changes_nothing_and_then_the_real_import_works(bundle, initech, tmp_path):
    with tenant_context(initech):
        report = import_bundle(bundle, dry_run=True)
    assert rows(report) == [("project", "create"), ("expense", "create")]
    # The dependant was previewed against its dependency, published inside the dry run.
    assert any('CREATE TABLE "dm_expense"' in sql for sql in report[1]["preview"]["sql"])
    assert any("REFERENCES" in sql and "dm_project" in sql for sql in report[1]["preview"]["sql"])
    assert_untouched(initech)

    out = io.StringIO()
    call_command("lowcode", "import", str(write(tmp_path, bundle)), "--tenant", "initech", "--dry-run", stdout=out)
    assert "Dry run: the import would succeed (2 create). Nothing was changed." in out.getvalue()
    assert_untouched(initech)

    # The rolled-back publishes must leave no stale runtime models or cached content types behind.
    with tenant_context(initech):
        assert rows(import_bundle(bundle, dry_run=False)) == [("project", "create"), ("expense", "create")]
        project = runtime.get_model("project").objects.create(name="Initrode")
        runtime.get_model("expense").objects.create(title="Pens", amount=Decimal("3.00"),
                                                    spent_on=datetime.date(2026, 1, 5), project=project)
        assert runtime.get_model("expense").objects.count() == 1
        # Deferred foreign keys (permissions -> content types) are checked now, not at a commit.
        connection.cursor().execute("SET CONSTRAINTS ALL IMMEDIATE")


def _unknown_kind(bundle):
    bundle["definitions"].append({"kind": "report", "key": "expense_claim", "body": {"entity": "expense"}})
    return "report 'expense_claim'", "Unknown kind 'report'"


def _malformed_body(bundle):
    expense = bundle["definitions"][1]
    expense["body"]["fields"][2]["type"] = "money"
    del expense["checksum"]
    return "entity 'expense'", "fields/2/type: 'money' is not one of"


def _rule_broken_body(bundle):
    expense = bundle["definitions"][1]
    expense["body"]["display_field"] = "nope"
    del expense["checksum"]
    return "entity 'expense'", "display_field: Unknown field 'nope'"


def _missing_relation_target(bundle):
    del bundle["definitions"][0]
    return "entity 'expense'", "needs entity 'project', which is neither in the bundle nor published"


def _edited_body(bundle):
    bundle["definitions"][0]["body"]["label"] = "Projekt"
    return "entity 'project'", "checksum does not match"


@pytest.mark.parametrize("spoil", [_unknown_kind, _malformed_body, _rule_broken_body, _missing_relation_target,
                                   _edited_body])
def test_a_bad_definition_is_refused_and_nothing_changes(bundle, initech, spoil, tmp_path):
    bad = copy.deepcopy(bundle)
    definition, message = spoil(bad)
    with tenant_context(initech):
        report = import_bundle(bad, dry_run=True)
        assert message in next(row["message"] for row in report if row["action"] == "error")
        assert_untouched(initech)
        with pytest.raises(BundleError) as refused:
            import_bundle(bad, dry_run=False)
    assert "nothing was changed" in str(refused.value) and definition in str(refused.value)
    assert message in str(refused.value)
    assert_untouched(initech)

    out = io.StringIO()
    with pytest.raises(CommandError, match="Import refused, nothing was changed"):
        call_command("lowcode", "import", str(write(tmp_path, bad)), "--tenant", "initech", stdout=out)
    assert "error" in out.getvalue()
    assert_untouched(initech)


@pytest.mark.parametrize("document, message", [
    ({"format": "lowcode.bundle", "format_version": 2, "definitions": []}, "format_version: 1 was expected"),
    ({"format": "zip", "format_version": 1, "definitions": []}, "format: 'lowcode.bundle' was expected"),
    ({"format": "lowcode.bundle", "format_version": 1, "definitions": [{"kind": "entity", "body": {}}]},
     "definitions/0: 'key' is a required property"),
    ({"format": "lowcode.bundle", "format_version": 1, "definitions": [{"kind": "entity", "key": "x", "body": []}]},
     "definitions/0/body: [] is not of type 'object'"),
    ([], "(bundle): [] is not of type 'object'"),
])
def test_a_document_that_is_not_a_bundle_is_refused_with_the_path(initech, document, message, tmp_path):
    with tenant_context(initech), pytest.raises(InvalidBundle) as refused:
        import_bundle(document, dry_run=True)
    assert message in str(refused.value)
    with pytest.raises(CommandError, match="format_version|format|definitions|bundle"):
        call_command("lowcode", "import", str(write(tmp_path, document)), "--tenant", "initech", stdout=io.StringIO())


def test_not_json_is_refused(initech, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{ nope")
    with pytest.raises(CommandError, match="Not valid JSON"):
        call_command("lowcode", "import", str(path), "--tenant", "initech", stdout=io.StringIO())


def test_importing_the_same_bundle_twice_reports_unchanged(bundle, initech, tmp_path):
    with tenant_context(initech):
        import_bundle(bundle, dry_run=False)
        versions = list(Definition.objects.values_list("key", "version", "status"))
        assert rows(import_bundle(bundle, dry_run=True)) == [("project", "unchanged"), ("expense", "unchanged")]
        assert rows(import_bundle(bundle, dry_run=False)) == [("project", "unchanged"), ("expense", "unchanged")]
        assert list(Definition.objects.values_list("key", "version", "status")) == versions
    out = io.StringIO()
    call_command("lowcode", "import", str(write(tmp_path, bundle)), "--tenant", "initech", stdout=out)
    assert "unchanged" in out.getvalue() and "2 unchanged" in out.getvalue()


def test_a_new_version_is_an_update_and_keeps_the_data(bundle, initech):
    with tenant_context(initech):
        import_bundle(bundle, dry_run=False)
        runtime.get_model("project").objects.create(name="Initrode")
    Field.objects.create(entity=Entity.objects.get(key="project"), key="owner", type="text", position=9)
    services.publish(Entity.objects.get(key="project"))
    newer = export_bundle(app="expenses")
    with tenant_context(initech):
        report = import_bundle(newer, dry_run=False)
        assert rows(report) == [("project", "update"), ("expense", "unchanged")]
        assert "Added field owner (text)" in report[0]["preview"]["summary"]
        assert get_published("entity", "project").version == 2
        assert runtime.get_model("project").objects.get().name == "Initrode"


def test_an_update_that_would_break_rows_is_a_conflict(bundle, initech):
    with tenant_context(initech):
        import_bundle(bundle, dry_run=False)
        runtime.get_model("project").objects.create(name="Initrode")
    Field.objects.create(entity=Entity.objects.get(key="project"), key="owner", type="text", required=True, position=9)
    services.publish(Entity.objects.get(key="project"))
    newer = export_bundle(app="expenses")
    with tenant_context(initech):
        report = import_bundle(newer, dry_run=True)
        assert rows(report) == [("project", "conflict"), ("expense", "unchanged")]
        assert "1 rows would have no value for the new required field owner" in report[0]["message"]
        with pytest.raises(BundleError, match="new required field owner"):
            import_bundle(newer, dry_run=False)
        assert get_published("entity", "project").version == 1


def test_a_different_entity_with_the_same_key_is_a_conflict(scenario):
    globex_bundle = json.loads((EXAMPLES / "globex_expenses.json").read_text())
    report = import_bundle(globex_bundle, dry_run=True)
    assert rows(report) == [("expense", "conflict")]
    assert "different entity" in report[0]["message"]
    with pytest.raises(CommandError, match="different entity"):
        call_command("lowcode", "import", str(EXAMPLES / "globex_expenses.json"), "--tenant", "acme",
                     stdout=io.StringIO())
    assert get_published("entity", "expense").body == services.entity_body(scenario["expense"])


def test_unpublished_design_changes_are_a_conflict(bundle, initech):
    with tenant_context(initech):
        import_bundle(bundle, dry_run=False)
        Field.objects.filter(entity__key="project", key="budget").update(label="Money")
    Field.objects.create(entity=Entity.objects.get(key="project"), key="owner", type="text", position=9)
    services.publish(Entity.objects.get(key="project"))
    newer = export_bundle(app="expenses")
    with tenant_context(initech):
        report = import_bundle(newer, dry_run=True)
        assert rows(report)[0] == ("project", "conflict")
        assert "unpublished changes" in report[0]["message"]


def test_export_takes_dependencies_from_other_apps_first(tenant):
    project = design("project", PROJECT_FIELDS, app="projects", display_field="name")
    services.publish(project)
    services.publish(design("expense", EXPENSE_FIELDS, app="expenses"))
    services.publish(design("memo", [{"key": "text", "type": "text"}], app="notes"))
    exported = export_bundle(app="expenses")
    assert [d["key"] for d in exported["definitions"]] == ["project", "expense"]
    assert [d["key"] for d in export_bundle(keys=[("entity", "expense")])["definitions"]] == ["project", "expense"]
    assert {d["key"] for d in export_bundle()["definitions"]} == {"project", "expense", "memo"}
    with pytest.raises(CommandError, match="Nothing to export"):
        call_command("lowcode", "export", "--tenant", "acme", "--app", "nope", stdout=io.StringIO())


@pytest.fixture
def loop(tenant) -> dict:
    """acme's alpha and beta, related to each other (published in two steps), exported."""
    alpha = design("alpha", [{"key": "name", "type": "text"}], app="loop")
    services.publish(alpha)
    services.publish(design("beta", [{"key": "name", "type": "text"},
                                     {"key": "alpha", "type": "relation", "options": {"target": "alpha"}},
                                     {"key": "alpha_name", "type": "formula", "options": {"expression": "name"}}],
                            app="loop"))
    Field.objects.create(entity=alpha, key="beta", type="relation", options={"target": "beta"}, position=1)
    Field.objects.create(entity=alpha, key="has_beta", type="formula", options={"expression": "not is_null(beta)"},
                         position=2)
    alpha.display_field, alpha.ordering = "name", "-beta,name"
    alpha.save()
    services.publish(alpha)
    return export_bundle(app="loop")


def test_entities_related_to_each_other_are_exported(loop):
    assert [d["key"] for d in loop["definitions"]] == ["alpha", "beta"]
    assert [d["key"] for d in export_bundle(keys=[("entity", "beta")])["definitions"]] == ["alpha", "beta"]
    out = io.StringIO()
    call_command("lowcode", "export", "--tenant", "acme", "--app", "loop", stdout=out)
    assert '"key": "alpha"' in out.getvalue()


def test_entities_related_to_each_other_round_trip(loop, initech):
    with tenant_context(initech):
        assert rows(import_bundle(loop, dry_run=True)) == [("alpha", "create"), ("beta", "create")]
        assert runtime.published_entity_bodies() == {}
        assert rows(import_bundle(loop, dry_run=False)) == [("alpha", "create"), ("beta", "create")]
        for definition in loop["definitions"]:
            assert get_published("entity", definition["key"]).body == definition["body"]
        alpha_model, beta_model = runtime.get_model("alpha"), runtime.get_model("beta")
        alpha = alpha_model.objects.create(name="A")
        beta = beta_model.objects.create(name="B", alpha=alpha)
        alpha.beta = beta
        alpha.save()
        assert alpha_model.objects.get().has_beta is True
        assert export_bundle(app="loop")["definitions"] == [
            {**d, "version": 2, "checksum": get_published("entity", d["key"]).checksum} for d in loop["definitions"]]
        # Imported again: nothing to do.
        assert rows(import_bundle(loop, dry_run=False)) == [("alpha", "unchanged"), ("beta", "unchanged")]
    assert {"dm_alpha", "dm_beta"} <= entity_tables("initech")


def test_a_refused_entity_of_a_cycle_refuses_the_import(loop, initech):
    spoiled = copy.deepcopy(loop)
    spoiled["definitions"][1]["body"]["fields"][0]["type"] = "no_such_type"
    spoiled["definitions"][1].pop("checksum")
    with pytest.raises(BundleError) as refused:
        import_bundle(spoiled, dry_run=False)
    assert {row["key"]: row["action"] for row in refused.value.report}["beta"] == "error"
    with tenant_context(initech):
        assert not Definition.objects.exists() and runtime.published_entity_bodies() == {}
    assert not {"dm_alpha", "dm_beta"} & entity_tables("initech")


def labelled(spec: dict) -> dict:
    """A field of the tests' expense as the example has it: its choices in words (Travel, Draft)."""
    if spec["key"] not in ("category", "status"):
        return spec
    choices = [{**choice, "label": choice["value"].title()} for choice in spec["options"]["choices"]]
    return {**spec, "options": {**spec["options"], "choices": choices}}


def test_the_example_bundle_is_the_scenario(initech):
    example = json.loads((EXAMPLES / "expenses.json").read_text())
    assert example["app"] == "expenses"
    bodies = {d["key"]: d["body"] for d in example["definitions"]}
    # The scenario's form (forms_engine) and workflow (workflows) too.
    assert list(bodies) == ["project", "expense", "expense_claim", "expense_approval"]
    for key, fields in (("project", PROJECT_FIELDS), ("expense", [*EXPENSE_FIELDS, RECEIPT_FIELD])):
        assert bodies[key]["app"] == "expenses" and bodies[key]["label"]
        exported = {spec["key"]: spec for spec in bodies[key]["fields"]}
        assert list(exported) == [spec["key"] for spec in fields]
        for spec in fields:
            assert {name: exported[spec["key"]].get(name) for name in spec} == labelled(spec)
    with tenant_context(initech):
        rbac.create_role("finance", "Finance")  # The workflow's queue: roles are the tenant's, not the bundle's.
        assert rows(import_bundle(example, dry_run=False)) == [("project", "create"), ("expense", "create"),
                                                               ("expense_claim", "create"),
                                                               ("expense_approval", "create")]


def test_a_real_import_right_after_a_dry_run_in_the_same_context(bundle, initech):
    with tenant_context(initech):
        import_bundle(bundle, dry_run=True)
        assert runtime.published_entity_bodies() == {}
        import_bundle(bundle, dry_run=False)
        assert set(runtime.published_entity_bodies()) == {"project", "expense"}
        # Deferred foreign keys (permissions -> content types) are checked now, not at a commit.
        connection.cursor().execute("SET CONSTRAINTS ALL IMMEDIATE")
