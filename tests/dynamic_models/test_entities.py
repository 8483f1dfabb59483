"""Entities become runtime models: publish, evolve, roll back, refuse bad changes (DM-1..DM-3, DM-7, DM-8)."""

import datetime
from decimal import Decimal

import psycopg
import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django_tenants.utils import tenant_context

from dynamic_models import runtime, schema, services
from dynamic_models.models import Entity, Field, SchemaMigration
from metadata.exceptions import DefinitionValidationError, PublishConflict
from metadata.models import Definition

from .conftest import design


def columns(table):
    with connection.cursor() as cursor:
        return {c.name: c for c in connection.introspection.get_table_description(cursor, table)}


def field(entity, key):
    return Field.objects.get(entity=entity, key=key)


def test_publish_creates_table_records_and_permissions(scenario):
    Expense = runtime.get_model("expense")
    assert Expense._meta.db_table == "dm_expense"
    assert {"title", "amount", "project_id", "submitted_by_id", "deleted_at"} <= set(columns("dm_expense"))
    project = runtime.get_model("project").objects.create(name="Apollo", code="APO-001")
    first = Expense.objects.create(title="Taxi", amount=Decimal("12.50"), spent_on=datetime.date(2026, 1, 2),
                                   project=project)
    second = Expense.objects.create(title="Hotel", amount=Decimal("99"), spent_on=datetime.date(2026, 1, 3))
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.number, second.number) == ("EXP-0001", "EXP-0002")
    content_type = ContentType.objects.get_for_model(Expense)
    assert (content_type.app_label, content_type.model) == ("data", "expense")
    assert content_type.model_class() is Expense
    assert set(content_type.permission_set.values_list("codename", flat=True)) == {
        "add_expense", "change_expense", "delete_expense", "view_expense", "export_expense", "import_expense"}
    migration = SchemaMigration.objects.get(entity_key="expense")
    assert migration.operations == [{"op": "create_model", "entity": "expense"}]
    assert 'CREATE TABLE "dm_expense"' in migration.forward_sql
    assert 'DROP TABLE "dm_expense"' in migration.backward_sql


def test_field_rules_validate_records(scenario):
    from django.core.exceptions import ValidationError

    Expense = runtime.get_model("expense")
    expense = Expense(title="x" * 121, amount=Decimal("0"), spent_on=datetime.date.today() + datetime.timedelta(days=2),
                      currency="GBP")
    with pytest.raises(ValidationError) as error:
        expense.full_clean()
    assert set(error.value.message_dict) == {"title", "amount", "spent_on", "currency"}
    Project = runtime.get_model("project")
    with pytest.raises(ValidationError) as error:
        Project(name="Bad", code="abc").full_clean()
    assert "code" in error.value.message_dict


def test_same_key_in_two_tenants_with_different_fields(scenario, globex):
    acme_expense = runtime.get_model("expense")
    with tenant_context(globex):
        services.publish(design("expense", [
            {"key": "title", "type": "text", "required": True},
            {"key": "cost_center", "type": "choice", "options": {"choices": [{"value": "ops"}, {"value": "rnd"}]}},
        ]))
        globex_expense = runtime.get_model("expense")
        globex_expense.objects.create(title="Server", cost_center="ops")
        assert {f.name for f in globex_expense._meta.fields} >= {"title", "cost_center"}
        assert "amount" not in {f.name for f in globex_expense._meta.fields}
        assert ContentType.objects.get_for_model(globex_expense).model_class() is globex_expense
    assert runtime.get_model("expense") is acme_expense
    assert "cost_center" not in {f.name for f in acme_expense._meta.fields}
    assert acme_expense.objects.count() == 0
    with tenant_context(globex):
        assert runtime.get_model("expense").objects.count() == 1


def test_a_fresh_process_cache_sees_a_publish_at_once(scenario, acme):
    stale = runtime.current()
    entity = scenario["expense"]
    Field.objects.create(entity=entity, key="vat_rate", type="decimal", default=0, position=20,
                         options={"max_digits": 5, "decimal_places": 2})
    services.publish(entity)
    # The tenant row now carries a new token: any process comparing it rebuilds.
    token = connection.tenant.definition_versions["entity"]
    assert acme.__class__.objects.get(pk=acme.pk).definition_versions["entity"] == token
    assert stale.token != token
    runtime._snapshots.clear()  # A second process starts with an empty cache.
    assert "vat_rate" in {f.name for f in runtime.get_model("expense")._meta.fields}


def test_scenario_evolution_keeps_data_and_rolls_back(scenario):
    Expense = runtime.get_model("expense")
    Expense.objects.create(title="Taxi", amount=Decimal("12.50"), spent_on=datetime.date(2026, 1, 2),
                           category="travel", notes="airport run")
    entity = scenario["expense"]

    Field.objects.create(entity=entity, key="vat_rate", type="decimal", default=0, required=True, position=20,
                         options={"max_digits": 5, "decimal_places": 2})
    plan = services.preview(entity)
    assert plan["impact"] == [] and any("vat_rate" in line for line in plan["summary"])
    services.publish(entity)
    assert runtime.get_model("expense").objects.get().vat_rate == Decimal("0.00")

    notes = field(entity, "notes")
    notes.key = "description"
    notes.save()
    assert any("RENAME COLUMN" in sql for sql in services.preview(entity)["sql"])
    services.publish(entity)
    assert runtime.get_model("expense").objects.get().description == "airport run"
    assert "notes" not in columns("dm_expense")

    category = field(entity, "category")
    category.options = {"choices": [{"value": "travel"}, {"value": "meals"}, {"value": "software"}]}
    category.save()
    services.publish(entity)
    assert [c[0] for c in runtime.get_model("expense")._meta.get_field("category").choices] == [
        "travel", "meals", "software"]

    services.rollback("expense")
    Expense = runtime.get_model("expense")
    assert [c[0] for c in Expense._meta.get_field("category").choices] == ["travel", "meals", "equipment", "other"]
    record = Expense.objects.get()
    assert (record.description, record.category, record.vat_rate) == ("airport run", "travel", Decimal("0.00"))
    # The design rows follow what is live.
    assert [c["value"] for c in field(entity, "category").options["choices"]][-1] == "other"
    assert Definition.objects.get(kind="entity", key="expense", status="published").version == 5


def test_rollback_of_an_added_field_keeps_its_data_and_restores_it(scenario):
    entity = scenario["expense"]
    Field.objects.create(entity=entity, key="vat_rate", type="decimal", position=20,
                         options={"max_digits": 5, "decimal_places": 2})
    services.publish(entity)
    Expense = runtime.get_model("expense")
    Expense.objects.create(title="Taxi", amount=1, spent_on=datetime.date(2026, 1, 2), vat_rate=Decimal("0.13"))

    services.rollback("expense")
    assert "vat_rate" not in {f.name for f in runtime.get_model("expense")._meta.fields}
    kept = schema.removed_columns("expense")
    assert len(kept) == 1

    services.rollback("expense", to_version=2)
    assert runtime.get_model("expense").objects.get().vat_rate == Decimal("0.13")
    assert schema.removed_columns("expense") == []


def test_removed_field_keeps_its_column_until_purge(scenario):
    Expense = runtime.get_model("expense")
    Expense.objects.create(title="Taxi", amount=1, spent_on=datetime.date(2026, 1, 2), iban="DE001")
    entity = scenario["expense"]
    field(entity, "iban").delete()
    services.publish(entity)
    kept = schema.removed_columns("expense")
    assert len(kept) == 1
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT "{kept[0]}" FROM dm_expense')
        assert cursor.fetchone() == ("DE001",)
    assert services.purge("expense") == kept
    assert schema.removed_columns("expense") == []


def test_publish_that_would_break_rows_is_refused_and_changes_nothing(scenario):
    Project = runtime.get_model("project")
    Project.objects.create(name="A", code="ABC-001")
    Project.objects.create(name="B", code=None)
    Project.objects.create(name="C", code="wrong")
    entity = scenario["project"]
    code = field(entity, "code")
    code.required = True
    code.options = {"max_length": 7, "regex": r"^[A-Z]{3}-\d{4}$"}
    code.save()
    before_columns = columns("dm_project")

    plan = services.preview(entity)
    codes = {item["code"]: item for item in plan["impact"]}
    assert codes["null"]["count"] == 1 and codes["regex"]["count"] == 2
    assert "1 rows have no value for code" in codes["null"]["message"]

    with pytest.raises(schema.MigrationRefused, match="which becomes required"):
        services.publish(entity)
    assert columns("dm_project")["code"].null_ok is before_columns["code"].null_ok is True
    assert Project.objects.count() == 3
    assert Definition.objects.get(kind="entity", key="project", status="published").version == 1
    assert not Definition.objects.filter(kind="entity", key="project", status="draft").exists()


def test_type_change_lists_values_that_cannot_be_cast(scenario):
    Project = runtime.get_model("project")
    Project.objects.create(name="A", code="12")
    Project.objects.create(name="B", code="ABC-001")
    code = field(scenario["project"], "code")
    code.type, code.options = "integer", {}
    code.save()
    impact = services.preview(scenario["project"])["impact"]
    assert impact[0]["code"] == "invalid_cast" and impact[0]["count"] == 1


def test_concurrent_publish_gets_a_clear_conflict(tenant):
    entity = design("project", [{"key": "name", "type": "text"}])
    db = connection.settings_dict
    with psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], password=db["PASSWORD"] or None,
                         dbname=db["NAME"]) as other:
        # Another session is in the middle of a publish in acme: it holds the tenant's lock.
        other.execute("SELECT pg_advisory_xact_lock(hashtext('lowcode.publish'), hashtext('acme'))")
        with pytest.raises(PublishConflict, match="Another publish is running"):
            services.publish(entity)
        assert "dm_project" not in connection.introspection.table_names()
    # The other publish finished: this one goes through.
    services.publish(entity)
    assert runtime.get_model("project").objects.count() == 0


def test_publish_based_on_a_stale_preview_is_refused(scenario):
    entity = scenario["expense"]
    preview = services.preview(entity)
    Field.objects.create(entity=entity, key="vat_rate", type="decimal", position=20)
    services.publish(entity)  # Someone else publishes after our preview of version 1.
    with pytest.raises(PublishConflict, match="published by someone else"):
        services.publish(entity, expected_version=preview["from_version"])


@pytest.mark.parametrize("key, message", [
    ("select", "SQL reserved word"),
    ("id", "system field"),
    ('"; drop table dm_expense; --', "must start with a lowercase letter"),
    ("x" * 200, "longer than 50 characters"),
    ("费用", "must start with a lowercase letter"),
    ("Amount", "must start with a lowercase letter"),
    ("a__b", "double underscore"),
    ("class", "Python keyword"),
])
def test_hostile_field_keys_are_refused(scenario, key, message):
    body = services.entity_body(scenario["expense"])
    body["fields"].append({"id": "hostile01", "key": key, "type": "text"})
    before = columns("dm_expense")
    with pytest.raises(DefinitionValidationError, match=message):
        services.publish_body(body)
    assert columns("dm_expense") == before
    assert Definition.objects.get(kind="entity", key="expense", status="published").version == 1


@pytest.mark.parametrize("key", ["select", "user", "x" * 41, "x" * 300, "Expense2", "pg-catalog", "费用"])
def test_hostile_entity_keys_are_refused(tenant, key):
    with pytest.raises(DefinitionValidationError):
        services.publish_body({"key": key, "fields": [{"id": "title001", "key": "title", "type": "text"}]})
    assert not Definition.objects.exists()
    assert not [t for t in connection.introspection.table_names() if t.startswith("dm_")]


def test_invalid_options_are_refused_with_their_path(tenant):
    entity = design("thing", [
        {"key": "price", "type": "decimal", "options": {"max_digits": 5, "decimal_places": 9}},
        {"key": "kind", "type": "choice", "options": {"choices": []}},
        {"key": "parent", "type": "relation", "options": {"target": "nowhere"}},
        {"key": "total", "type": "formula", "options": {"expression": "price * missing"}},
    ])
    with pytest.raises(DefinitionValidationError) as error:
        services.publish(entity)
    paths = {e["path"] for e in error.value.errors}
    assert {"fields/0/options/decimal_places", "fields/2/options/target", "fields/3/options/expression"} <= paths
    assert any(p.startswith("fields/1/options") for p in paths)
    assert not connection.introspection.table_names() or "dm_thing" not in connection.introspection.table_names()


def test_soft_delete_follows_on_delete_rules_and_restores(scenario):
    from django.db.models import ProtectedError

    Project, Expense = runtime.get_model("project"), runtime.get_model("expense")
    project = Project.objects.create(name="Apollo")
    expense = Expense.objects.create(title="Taxi", amount=1, spent_on=datetime.date(2026, 1, 2), project=project)
    with pytest.raises(ProtectedError):
        project.soft_delete()
    expense.soft_delete()
    assert Expense.objects.count() == 0 and Expense.all_objects.count() == 1
    project.soft_delete()
    assert Project.objects.count() == 0
    project.restore()
    assert Project.objects.get() == project


def test_formula_field_computes_in_python_and_sql(scenario):
    entity = scenario["expense"]
    Field.objects.create(entity=entity, key="vat_rate", type="decimal", default=0, position=20,
                         options={"max_digits": 5, "decimal_places": 2})
    Field.objects.create(entity=entity, key="gross", type="formula", position=21,
                         options={"expression": "amount * (1 + vat_rate)"})
    services.publish(entity)
    Expense = runtime.get_model("expense")
    Expense.objects.create(title="Taxi", amount=Decimal("100"), vat_rate=Decimal("0.13"), spent_on=datetime.date(2026, 1, 2))
    record = Expense.objects.get()
    assert record.gross == Decimal("113.00")
    assert Expense.objects.filter(gross__gt=110).count() == 1
    fresh = Expense(amount=Decimal("10"), vat_rate=Decimal("0.5"))
    assert fresh.formula_value("gross") == Decimal("15.0")


def test_entity_commands(scenario, capsys):
    from django.core.management import CommandError, call_command

    call_command("lowcode", "entity", "list", "--tenant", "acme")
    assert "expense" in capsys.readouterr().out
    Field.objects.create(entity=scenario["expense"], key="vat_rate", type="decimal", position=20)
    call_command("lowcode", "entity", "preview", "expense", "--tenant", "acme")
    assert 'ADD COLUMN "vat_rate"' in capsys.readouterr().out
    call_command("lowcode", "entity", "publish", "expense", "--tenant", "acme")
    assert "Published expense version 2" in capsys.readouterr().out
    call_command("lowcode", "entity", "rollback", "expense", "--tenant", "acme")
    assert "version 3 is live" in capsys.readouterr().out
    with pytest.raises(CommandError, match="--yes"):
        call_command("lowcode", "entity", "purge", "expense", "--tenant", "acme")
    call_command("lowcode", "entity", "purge", "expense", "--tenant", "acme", "--yes")
    assert "Dropped 1 columns" in capsys.readouterr().out
    with pytest.raises(CommandError, match="No tenant"):
        call_command("lowcode", "entity", "list", "--tenant", "nobody")
    with pytest.raises(CommandError, match="No entity"):
        call_command("lowcode", "entity", "publish", "ghost", "--tenant", "acme")
    assert Entity.objects.get(key="expense").published_version == 3


def test_eject_to_code(scenario, tmp_path, capsys):
    import ast

    from django.core.management import call_command

    entity = scenario["expense"]
    notes = field(entity, "notes")
    notes.key = "description"
    notes.save()
    services.publish(entity)
    created = services.eject("expense", version=1)
    ast.parse(created["migration"])
    assert "migrations.CreateModel(" in created["migration"] and "'db_table': 'dm_expense'" in created["migration"]
    assert "settings.AUTH_USER_MODEL" in created["migration"]
    renamed = services.eject("expense")
    assert "migrations.RenameField(" in renamed["migration"] and "old_name='notes'" in renamed["migration"]
    ast.parse(renamed["models"])
    assert "title = models.CharField(db_column='title', max_length=120" in renamed["models"]
    assert "db_table = 'dm_expense'" in renamed["models"]
    call_command("lowcode", "entity", "eject", "expense", "--tenant", "acme", "--output-dir", str(tmp_path))
    assert (tmp_path / "expense_migration.py").read_text() == renamed["migration"]


def test_encrypted_field_is_stored_encrypted_and_found_by_exact_value(scenario):
    iban = field(scenario["expense"], "iban")
    iban.encrypted = True
    iban.save()
    services.publish(scenario["expense"])
    assert columns("dm_expense")["iban"].type_code == columns("dm_expense")["notes"].type_code  # text
    Expense = runtime.get_model("expense")
    Expense.objects.create(title="Taxi", amount=1, spent_on=datetime.date(2026, 1, 2), iban="DE89370400440532013000")
    with connection.cursor() as cursor:
        cursor.execute("SELECT iban FROM dm_expense")
        stored = cursor.fetchone()[0]
    assert stored.startswith("enc1:") and "DE89" not in stored
    assert Expense.objects.get(iban="DE89370400440532013000").iban == "DE89370400440532013000"
    with pytest.raises(Exception, match="Unsupported lookup"):
        list(Expense.objects.filter(iban__icontains="DE89"))
    # Turning encryption off with values stored is refused, naming the rows.
    iban = field(scenario["expense"], "iban")
    iban.encrypted = False
    iban.save()
    assert "encryption" in {item["code"] for item in services.preview(scenario["expense"])["impact"]}


def test_encrypted_field_cannot_be_searchable(tenant):
    with pytest.raises(DefinitionValidationError, match="exact value only"):
        services.publish(design("secret", [{"key": "code", "type": "text", "encrypted": True, "searchable": True}]))


def test_many_to_many_and_one_to_one_relations(scenario):
    services.publish(design("tag", [{"key": "name", "type": "text", "required": True}], display_field="name"))
    entity = scenario["expense"]
    Field.objects.create(entity=entity, key="tags", type="relation", position=30,
                         options={"target": "tag", "cardinality": "many_to_many"})
    Field.objects.create(entity=entity, key="receipt_of", type="relation", position=31,
                         options={"target": "project", "cardinality": "one_to_one", "on_delete": "set_null"})
    services.publish(entity)
    assert "dm_expense_tags" in connection.introspection.table_names()
    Tag, Expense, Project = runtime.get_model("tag"), runtime.get_model("expense"), runtime.get_model("project")
    travel, urgent = Tag.objects.create(name="travel"), Tag.objects.create(name="urgent")
    project = Project.objects.create(name="Apollo")
    expense = Expense.objects.create(title="Taxi", amount=1, spent_on=datetime.date(2026, 1, 2), receipt_of=project)
    expense.tags.set([travel, urgent])
    assert sorted(t.name for t in Expense.objects.get().tags.all()) == ["travel", "urgent"]
    assert project.expense_receipt_of_set == expense  # one-to-one reverse accessor

    field(entity, "tags").delete()
    services.publish(entity)
    assert "dm_expense_tags" in connection.introspection.table_names()  # Kept with its links.
    services.rollback("expense")
    assert sorted(t.name for t in runtime.get_model("expense").objects.get().tags.all()) == ["travel", "urgent"]


def test_labels_are_translated(scenario):
    from django.utils import translation

    entity = scenario["expense"]
    entity.translations = {"zh-hans": {"label": "费用", "label_plural": "费用报销", "fields": {"title": "标题"}}}
    entity.save()
    services.publish(entity)
    Expense = runtime.get_model("expense")
    with translation.override("zh-hans"):
        assert (str(Expense._meta.verbose_name), str(Expense._meta.verbose_name_plural)) == ("费用", "费用报销")
        assert str(Expense._meta.get_field("title").verbose_name) == "标题"
        assert str(Expense._meta.get_field("amount").verbose_name) == "amount"
    with translation.override("en"):
        assert str(Expense._meta.verbose_name_plural) == "Expenses"
    entity.translations = {"fr": {"label": "Dépense"}}
    entity.save()
    with pytest.raises(DefinitionValidationError, match="'fr' is not one of"):
        services.publish(entity)
    entity.translations = {"zh-hans": {"fields": {"nothing": "无"}}}
    entity.save()
    with pytest.raises(DefinitionValidationError) as error:
        services.publish(entity)
    assert [e["path"] for e in error.value.errors] == ["translations/zh-hans/fields/nothing"]
