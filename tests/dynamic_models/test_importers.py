"""Importers (issue 17): Baserow templates (vendored, MIT) and Frappe DocTypes (written in Frappe's
format) become entities through the bundle import, mapped as documented, their rows kept."""

import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from dynamic_models import runtime
from dynamic_models.importers import baserow, import_baserow, import_frappe
from dynamic_models.registries import field_type_registry
from metadata.registries import definition_kind_registry
from metadata.services import get_published

SAMPLES = Path(__file__).parent / "importer_samples"


def template(name: str) -> dict:
    return json.loads((SAMPLES / "baserow" / f"{name}.json").read_text())


def doctypes(*, without_cycle: bool = False) -> list[dict]:
    """The Frappe samples; without the link Employee.current_project, they hold no cycle."""
    documents = [json.loads(path.read_text()) for path in sorted((SAMPLES / "frappe").rglob("*.json"))]
    if without_cycle:
        for document in documents:
            document["fields"] = [item for item in document["fields"] if item["fieldname"] != "current_project"]
    return documents


def types(result, entity: str) -> dict:
    """{source field name: our type ("" if not mapped)} of one entity of an import's report."""
    return {item["source"]: item["type"] for item in result.fields if item["entity"] == entity}


def notes(result, entity: str) -> dict:
    return {item["source"]: item["note"] for item in result.fields if item["entity"] == entity}


def available(type_name: str) -> str:
    """The type a field maps to once the type exists here (issue 17's types land in parallel)."""
    return type_name if field_type_registry.is_registered(type_name) else ""


def entity_option(name: str) -> bool:
    """Whether entities have the option `name` here (issue 17's options land in parallel)."""
    return name in definition_kind_registry.get("entity").schema["properties"]


def test_baserow_template_keeps_rows_and_links_of_both_sides(tenant):
    result = import_baserow(template("app-pitch-planner"), dry_run=False)

    assert not result.refused, result.as_dict()
    assert {row["key"]: row["action"] for row in result.definitions} == {
        "outline": "create", "key_points": "create", "tone_pacing": "create"}
    assert [(row["entity"], row["created"], row["dangling_links"]) for row in result.rows] == [
        ("outline", 7, 0), ("key_points", 3, 0), ("tone_pacing", 6, 0)]
    outline = runtime.get_model("outline")
    assert sorted(outline.objects.get(name="Introduce yourself").tone_pacing.values_list("name", flat=True)) == [
        "Funny", "Slow"]
    assert sorted(outline.objects.get(name="MVP").key_points_mentioned.values_list("name", flat=True)) == [
        "Great app should be invisible"]
    assert outline.objects.get(name="Introduce yourself").duration_minutes == 1
    # Baserow's link pairs: the first is a relation, the reverse is that relation from the other side.
    assert types(result, "key_points")["Outline"] == ""
    assert notes(result, "key_points")["Outline"] == "The reverse of outline.key_points_mentioned: its related records."
    assert get_published("entity", "key_points").body["display_field"] == "name"
    status = next(spec for spec in get_published("entity", "outline").body["fields"] if spec["key"] == "status")
    assert status["options"]["choices"][0] == {"value": "draft", "label": "draft", "color": "#e0514f"}


def test_baserow_dry_run_validates_rows_and_changes_nothing(tenant):
    result = import_baserow(template("bucket-list"), dry_run=True)

    assert not result.refused, result.as_dict()
    assert result.rows[0] == {"entity": "goals", "total": 37, "valid": 37, "created": 0, "errors": [],
                              "links": 38, "dangling_links": 0}
    assert get_published("entity", "goals") is None
    assert "goals" not in runtime.published_entity_bodies()


def test_baserow_all_field_types_map_as_documented(tenant):
    from django.contrib.auth import get_user_model

    bram = get_user_model().objects.create_user(username="bram", email="bram@baserow.io")  # A collaborator.
    result = import_baserow(template("all-fields"), dry_run=False)

    assert not result.refused, result.as_dict()
    mapped = types(result, "all_field_types")
    assert mapped == {
        "Name": "text", "Notes": "long_text", "Number": "integer", "Rating": available("rating"),
        "Boolean": "boolean", "Date european": "date", "Date us include time": "datetime", "Last modified": "",
        "Created on": "", "URL": "url", "Email": "email", "File": "file", "Single select": "choice",
        "Multiple select": "multiple_choice", "Phone number": "phone", "Formula text": "formula",
        "Formula file": "", "Related": "relation", "Lookup text": available("lookup"),
        "Lookup number": available("lookup"), "Lookup single select": available("lookup"),
        "Lookup": available("lookup"), "Lookup date": available("lookup"), "Count": available("count"),
        "Rollup sum": available("rollup"), "Collaborators": available("users"), "Price": "decimal",
        "Last modified by": "", "Created by": "", "Duration": available("duration"), "Formula Duration": "",
        "Lookup duration": available("lookup"), "Formula": "", "Button lookup": "",
        "Multiple select lookup": available("lookup"), "URL lookup": available("lookup")}
    why = notes(result, "all_field_types")
    assert why["Created on"] == "Every record has it: the system field created_at."
    assert why["Formula"] == "The function button() has no equivalent in our expressions."
    assert why["Formula file"] == "The formula reads 'File', a list of values (file): our formulas read one value per field."
    assert why["Button lookup"]  # It reads the button formula, which has no equivalent.
    if available("rollup"):
        rollup = next(spec for spec in get_published("entity", "all_field_types").body["fields"]
                      if spec["key"] == "rollup_sum")
        assert rollup["options"] == {"relation": "related", "field": "number", "function": "sum"}
        assert runtime.get_model("all_field_types").objects.get().rollup_sum == 3  # Rows 1 and 2 of Related.
    if available("lookup"):  # Through many links: the list of their values.
        assert runtime.get_model("all_field_types").objects.get().lookup_text == ["Row 1", "Row 2 with a very long name"]
    record = runtime.get_model("all_field_types").objects.get()
    assert (record.name, record.number, record.boolean, record.single_select, record.multiple_select,
            str(record.price), record.formula_text) == (
        "First row", 100, True, "option_1_with_a_long_name", ["option_a", "option_b"], "100.00", "First row")
    if available("users"):
        assert record.collaborators == [bram.pk]
    # Row 1 links rows 1-5 of a table of 2 rows: the 3 that do not exist are counted, not invented.
    assert sorted(record.related.values_list("name", flat=True)) == ["Row 1", "Row 2 with a very long name"]
    assert result.rows[0]["dangling_links"] == 3


def test_baserow_formulas_translate_or_say_why():
    converter = baserow._Converter(baserow.Conversion(app="t"), [{"id": 1, "name": "T", "fields": [
        {"id": 10, "type": "number", "name": "Price"}, {"id": 11, "type": "text", "name": "Name"},
        {"id": 12, "type": "link_row", "name": "Tags", "link_row_table_id": 1}]}])
    converter.field_keys = {10: "price", 11: "name", 12: "tags"}
    names = converter.fields_of_table(10)
    assert converter.translate("if(field('Price') >= 10 && not(isblank(field(\"Name\"))), concat('A', field('Name')), 'B')",
                               names) == "if(price >= 10 and not(is_null(name)), concat('A', name), 'B')"
    assert converter.translate("field('Price') = 2 || field('Price') != 3", names) == "price == 2 or price != 3"
    assert converter.translate("and(field('Price') > 1, or(equal(field('Name'), 'x'), true))", names) == \
        "((price > 1) and ((name == 'x') or true))"
    assert converter.translate("date_diff('dd', field('Name'), today())", names) == "days_between(name, today())"
    for formula, reason in [("date_diff('hh', field('Name'), now())", "date_diff() counts days only"),
                            ("field('Missing')", "unknown field 'Missing'"),
                            ("join(field('Tags'), ',')", "join() has no equivalent"),
                            ("field('Tags')", "a list of values (link_row)"), ("1 ; 2", "cannot read at 2"),
                            ("if(1, 2", "not closed"), ("1, 2", "A comma outside")]:
        with pytest.raises(baserow.FormulaNotTranslated, match=reason.replace("(", r"\(").replace(")", r"\)")):
            converter.translate(formula, names)


def test_frappe_doctypes_map_as_documented(tenant):
    result = import_frappe(doctypes(without_cycle=True), dry_run=False)

    assert not result.refused, result.as_dict()
    assert types(result, "expense_claim") == {
        "name": available("auto_number") and ("auto_number" if "pattern" in str(
            field_type_registry.get("auto_number").options_schema) else ""),
        "employee": "relation", "employee_name": available("lookup"), "posting_date": "date", "status": "choice",
        "project": "relation", "total_claimed_amount": available("currency"), "expenses": "", "remark": "long_text",
        "attachment": "file"}
    assert notes(result, "expense_claim")["expenses"] == \
        "Its rows are the entity expense_claim_detail, edited inline and in order."
    assert types(result, "employee") == {
        "name": types(result, "expense_claim")["name"], "naming_series": "choice", "employee_name": "text",
        "user_id": "user", "company_email": "email", "cell_number": "phone", "date_of_joining": "date",
        "reports_to": "relation", "performance": available("rating"), "signature": ""}
    assert types(result, "project") == {
        "name": "", "project_name": "text", "project_lead": "relation", "users": available("users"),
        "percent_complete": available("percent"),
        "expected_time": available("duration"), "estimated_costing": available("currency"), "reference_type": "",
        "reference_name": available("generic_link"), "api_secret": ""}
    assert get_published("entity", "project_user") is None
    assert notes(result, "project_user") == {"Project User": "The links of a Table MultiSelect: a many-to-many "
                                                             "relation there."}
    assert notes(result, "project")["reference_type"] == "Links to the DocType DocType, which is not among the files."
    claim = get_published("entity", "expense_claim").body
    fields = {spec["key"]: spec for spec in claim["fields"]}
    assert fields["employee"]["required"] and fields["employee"]["options"] == {
        "target": "employee", "cardinality": "many_to_one"}
    assert fields["status"]["default"] == "draft"
    assert [choice["label"] for choice in fields["status"]["options"]["choices"]] == ["Draft", "Paid", "Unpaid",
                                                                                     "Rejected"]
    assert claim["ordering"] == ["-posting_date"]
    detail = {spec["key"]: spec for spec in get_published("entity", "expense_claim_detail").body["fields"]}
    assert detail["expense_claim"]["required"] and detail["expense_claim"]["options"]["on_delete"] == "cascade"
    assert get_published("entity", "expense_claim_detail").body["child_of"] == {
        "relation": "expense_claim", "order_field": "idx"}
    assert detail["idx"]["type"] == "integer"
    project = {spec["key"]: spec for spec in get_published("entity", "project").body["fields"]}
    assert project["project_name"]["unique"] and project["project_name"]["required"]
    settings = get_published("entity", "hr_settings").body
    assert settings.get("single", False) is (entity_option("single") or False)
    settings_fields = {spec["key"]: spec for spec in settings["fields"]}
    assert settings_fields["expense_approver_mandatory"]["default"] is True
    assert settings_fields["retirement_age"]["default"] == 60
    assert result.rows == []  # DocType files hold no records.


def test_frappe_cycle_between_two_doctypes_imports(tenant):
    """Employee.current_project -> Project and Project.project_lead -> Employee (HRMS has one such cycle)."""
    result = import_frappe(doctypes(), dry_run=False)

    assert not result.refused, result.as_dict()
    employee = {spec["key"]: spec for spec in get_published("entity", "employee").body["fields"]}
    assert employee["current_project"]["options"]["target"] == "project"


def test_command_dry_run_reports_unmapped_fields_and_changes_nothing(tenant):
    out = io.StringIO()
    call_command("lowcode", "import", str(SAMPLES / "baserow" / "all-fields.json"), "--from", "baserow",
                 "--tenant", "acme", "--dry-run", stdout=out)

    text = out.getvalue()
    assert "Dry run: the import would succeed" in text and "Nothing was changed." in text
    assert "button()" in text and "not mapped" in text and "created_at" in text
    assert get_published("entity", "all_field_types") is None


def test_command_imports_a_frappe_folder(tenant, tmp_path):
    folder = tmp_path / "hr"
    folder.mkdir()
    for document in doctypes(without_cycle=True):
        (folder / f"{document['name']}.json").write_text(json.dumps(document))
    out = io.StringIO()
    call_command("lowcode", "import", str(folder), "--from", "frappe", "--tenant", "acme", stdout=out)

    assert "Imported into acme" in out.getvalue()
    assert get_published("entity", "expense_claim") is not None


def test_command_refuses_what_is_not_the_format(tenant, tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"tables": []}')
    with pytest.raises(CommandError, match="Not a Baserow template or export"):
        call_command("lowcode", "import", str(path), "--from", "baserow", "--tenant", "acme")
    path.write_text('{"export": [{"type": "database", "tables": [{"id": 1, "name": "T", "fields": [{"id": 2}]}]}]}')
    with pytest.raises(CommandError, match="a table or field lacks its id, name or type"):
        call_command("lowcode", "import", str(path), "--from", "baserow", "--tenant", "acme")
    path.write_text("not json")
    with pytest.raises(CommandError, match="Cannot read .* as JSON"):
        call_command("lowcode", "import", str(path), "--from", "baserow", "--tenant", "acme")
    path.write_text('{"doctype": "Report", "name": "X"}')
    with pytest.raises(CommandError, match="No Frappe DocType found"):
        call_command("lowcode", "import", str(path), "--from", "frappe", "--tenant", "acme")
    with pytest.raises(CommandError, match="no such file"):
        call_command("lowcode", "import", str(tmp_path / "missing"), "--from", "frappe", "--tenant", "acme")


def test_importing_again_changes_nothing_and_adds_no_rows(tenant):
    import_baserow(template("bucket-list"), dry_run=False)
    again = import_baserow(template("bucket-list"), dry_run=False)

    assert {row["action"] for row in again.definitions} == {"unchanged"}
    assert again.rows == []
    assert runtime.get_model("goals").objects.count() == 37


def small_template(fields: list[dict], rows: list[dict], *, linked: bool = False) -> dict:
    """A Baserow export of one table "Tasks" (and a table "Projects" its link points to)."""
    tables = [{"id": 1, "name": "Tasks", "order": 1, "fields": [
        {"id": 10, "type": "text", "name": "Name", "order": 0, "primary": True}, *fields], "rows": rows}]
    if linked:
        tables.append({"id": 2, "name": "Projects", "order": 2, "fields": [
            {"id": 20, "type": "text", "name": "Name", "order": 0, "primary": True},
            {"id": 21, "type": "number", "name": "Budget", "order": 1, "number_decimal_places": 2,
             "number_prefix": "€"},
            {"id": 22, "type": "link_row", "name": "Tasks", "order": 2, "link_row_table_id": 1,
             "link_row_related_field_id": 11},
            {"id": 23, "type": "formula", "name": "Tasks count", "order": 3, "formula": "count(field('Tasks'))"},
            {"id": 24, "type": "formula", "name": "Hours", "order": 4,
             "formula": "sum(lookup('Tasks', 'Hours'))"}],
            "rows": [{"id": 1, "field_20": "Apollo", "field_21": "1000.50", "field_22": [1]}]})
    return {"name": "Small", "export": [{"type": "database", "name": "Small", "tables": tables}]}


def test_baserow_values_a_type_refuses_keep_the_column_as_text(tenant):
    result = import_baserow(small_template(
        [{"id": 11, "type": "phone_number", "name": "Phone", "order": 1},
         {"id": 12, "type": "text", "name": "Notes", "order": 2}],
        [{"id": 1, "field_10": "Call", "field_11": "543-294-2844", "field_12": "x" * 300}]), dry_run=False)

    assert not result.refused, result.as_dict()
    assert types(result, "tasks")["Phone"] == "text"
    assert notes(result, "tasks")["Phone"].startswith("Kept as text: not every value is a valid phone ('543-294-2844'")
    record = runtime.get_model("tasks").objects.get()
    assert (record.phone, len(record.notes)) == ("543-294-2844", 300)


def test_baserow_link_pair_and_aggregate_formulas(tenant):
    result = import_baserow(small_template(
        [{"id": 11, "type": "link_row", "name": "Project", "order": 1, "link_row_table_id": 2,
          "link_row_related_field_id": 22},
         {"id": 12, "type": "number", "name": "Hours", "order": 2, "number_decimal_places": 0}],
        [{"id": 1, "field_10": "Design", "field_11": [1], "field_12": "3"}], linked=True), dry_run=False)

    assert not result.refused, result.as_dict()
    # The Projects side is read through by two aggregates: it is the relation, Tasks.Project its reverse.
    assert types(result, "projects") == {"Name": "text", "Budget": available("currency"), "Tasks": "relation",
                                         "Tasks count": available("count"), "Hours": available("rollup")}
    assert types(result, "tasks")["Project"] == ""
    projects = get_published("entity", "projects").body
    budget = next(spec for spec in projects["fields"] if spec["key"] == "budget")
    assert budget["options"] == {"currency": "EUR", "decimal_places": 2}
    apollo = runtime.get_model("projects").objects.get()
    assert list(apollo.tasks.values_list("name", flat=True)) == ["Design"]
    assert str(apollo.budget) == "1000.50"


def test_command_refuses_an_import_that_conflicts_and_changes_nothing(tenant):
    from dynamic_models import services
    from tests.dynamic_models.conftest import design

    services.publish(design("goals", [{"key": "title", "type": "text"}]))  # Another `goals` lives here.
    out = io.StringIO()
    with pytest.raises(CommandError, match="Dry run: the import would be refused"):
        call_command("lowcode", "import", str(SAMPLES / "baserow" / "bucket-list.json"), "--from", "baserow",
                     "--tenant", "acme", "--dry-run", stdout=out)
    assert "different entity" in out.getvalue()
    with pytest.raises(CommandError, match="The import was refused; nothing was changed"):
        call_command("lowcode", "import", str(SAMPLES / "baserow" / "bucket-list.json"), "--from", "baserow",
                     "--tenant", "acme", stdout=io.StringIO())
    assert get_published("entity", "categories") is None
    assert [spec["key"] for spec in get_published("entity", "goals").body["fields"]] == ["title"]


def test_baserow_row_a_field_refuses_is_reported_and_nothing_is_imported(tenant):
    result = import_baserow(small_template([{"id": 11, "type": "number", "name": "Hours", "order": 1}],
                                           [{"id": 1, "field_10": "Design", "field_11": "many"}]), dry_run=False)

    assert result.refused
    assert result.rows == [{"entity": "tasks", "total": 1, "valid": 0, "created": 0, "links": 0, "dangling_links": 0,
                            "errors": [{"row": 1, "errors": {"hours": [
                                {"code": "incorrect_type", "message": "Incorrect type: expected an integer."}]}}]}]
    assert get_published("entity", "tasks") is None


def test_baserow_count_through_the_reverse_of_a_link_imports(tenant):
    template = small_template(
        [{"id": 11, "type": "link_row", "name": "Project", "order": 1, "link_row_table_id": 2,
          "link_row_related_field_id": 22, "link_row_multiple_relationships": False},
         {"id": 12, "type": "lookup", "name": "Budget", "order": 2, "through_field_id": 11, "target_field_id": 21}],
        [{"id": 1, "field_10": "Design", "field_11": [1]}], linked=True)
    projects = template["export"][0]["tables"][1]
    projects["fields"] = [*projects["fields"][:3], {"id": 25, "type": "count", "name": "Task count", "order": 3,
                                                     "through_field_id": 22}]
    result = import_baserow(template, dry_run=False)

    assert types(result, "tasks") == {"Name": "text", "Project": "relation", "Budget": available("lookup")}
    assert types(result, "projects")["Task count"] == available("count")
    assert not result.refused, result.as_dict()
    assert runtime.get_model("projects").objects.get().task_count == 1
