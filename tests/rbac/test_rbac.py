"""Roles, departments, data scopes, column rules, object grants and explain (RB-1..RB-8).

The scenario's people and permissions (scenario.md): Sales (manager mia; members alice and
bob), Finance (manager frank); member sees and edits only own expenses while draft and sees
iban masked; manager sees the department's expenses; finance sees all and exports.
"""

from __future__ import annotations

import datetime
import html
from io import StringIO
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from dynamic_models import runtime
from dynamic_models import services as dm_services
from rbac import services
from rbac.models import ColumnRule, DataScope, Department, Role
from rbac.registries import UnknownOperation, entity_operation, operation_type_registry
from rbac.scopes import OwnRecords, scope_kind_registry
from rbac.services import effective_cache
from tests.dynamic_models.conftest import EXPENSE_FIELDS, PROJECT_FIELDS, design

BACKEND = "django.contrib.auth.backends.ModelBackend"
TODAY = datetime.date(2026, 1, 15)


@pytest.fixture(autouse=True)
def _fresh_process_cache():
    services.clear_local_cache()
    yield
    services.clear_local_cache()


@pytest.fixture
def expenses(tenant):
    """acme's project and expense published (as tests/dynamic_models' `scenario` fixture)."""
    dm_services.publish(design("project", PROJECT_FIELDS, label="Project", label_plural="Projects",
                               display_field="name"))
    dm_services.publish(design("expense", EXPENSE_FIELDS, label="Expense", label_plural="Expenses",
                               display_field="title"))
    return runtime.get_model("expense")


@pytest.fixture
def world(expenses):
    """The scenario's people, departments, roles and a few expenses."""
    User = get_user_model()
    people = {name: User.objects.create_user(name, email=f"{name}@example.com", password="correct-horse-battery")
              for name in ("alice", "bob", "mia", "frank", "bea")}
    member = Role.objects.get(key="member")
    services.grant(member, "data.expense.view", "data.expense.add", "data.expense.change")
    services.add_scope(member, "expense", "own", owner_field="submitted_by")
    services.add_scope(member, "expense", "own", action="change", owner_field="submitted_by",
                       expression="status == 'draft'")
    services.set_column_rule(member, "expense", "iban", "masked")
    services.set_column_rule(member, "expense", "status", "read_only")
    manager = services.create_role("manager", "Manager", grants=["data.expense.view", "workflows.task.act"])
    services.add_scope(manager, "expense", "department", owner_field="submitted_by")
    services.set_column_rule(manager, "expense", "iban", "masked")
    finance = services.create_role("finance", "Finance", grants=["data.expense.view", "data.expense.change",
                                                                 "data.expense.export"])
    services.add_scope(finance, "expense", "all")
    builder = Role.objects.get(key="builder")
    sales = services.create_department("Sales", managers=[people["mia"]], members=[people["alice"], people["bob"]])
    finance_department = services.create_department("Finance", managers=[people["frank"]], roles=[finance])
    for name in ("alice", "bob"):
        services.assign_role(people[name], member)
    services.assign_role(people["mia"], manager)
    services.assign_role(people["bea"], builder)

    def expense(title, owner, status="draft", **fields):
        return expenses.objects.create(title=title, amount=10, spent_on=TODAY, submitted_by=owner, status=status,
                                       iban="DE89370400440532013000", **fields)

    records = {
        "alice_draft": expense("Taxi", people["alice"]),
        "alice_submitted": expense("Hotel", people["alice"], status="submitted"),
        "bob_draft": expense("Lunch", people["bob"]),
        "frank_draft": expense("Books", people["frank"]),
    }
    return SimpleNamespace(model=expenses, records=records, sales=sales, finance_department=finance_department,
                           member=member, manager=manager, finance=finance, builder=builder, **people)


def visible(user, world, action="view") -> set[str]:
    ids = set(services.scope_queryset(user, world.model.objects.all(), action).values_list("pk", flat=True))
    return {name for name, record in world.records.items() if record.pk in ids}


def sql(queries: CaptureQueriesContext) -> list[str]:
    """The queries run, without django-tenants' own `SET search_path`."""
    return [q["sql"] for q in queries.captured_queries if not q["sql"].startswith("SET search_path")]


def refetch(user):
    """A new instance: Django caches permissions on the user object."""
    return get_user_model().objects.get(pk=user.pk)


# --- Scopes and checks (RB-4) ---------------------------------------------------------------


def test_each_person_sees_the_scenarios_scope(world):
    assert visible(world.alice, world) == {"alice_draft", "alice_submitted"}
    assert visible(world.bob, world) == {"bob_draft"}
    assert visible(world.mia, world) == {"alice_draft", "alice_submitted", "bob_draft"}
    assert visible(world.frank, world) == set(world.records)
    assert visible(world.bea, world) == set()  # builder: no entity permission, no scope

    # Change: members only their own drafts; managers have no change permission; finance all.
    assert visible(world.alice, world, "change") == {"alice_draft"}
    assert visible(world.mia, world, "change") == set()
    assert visible(world.frank, world, "change") == set(world.records)
    # Delete: nobody has the permission but superusers and tenant admins.
    assert visible(world.alice, world, "delete") == set()


def test_scope_queryset_is_one_query(world):
    services.effective(world.mia)
    with CaptureQueriesContext(connection) as queries:
        rows = list(services.scope_queryset(world.mia, world.model.objects.all()))
    assert len(rows) == 3 and len(sql(queries)) == 1, sql(queries)
    # Counting respects the scope too (RB-4: counts and aggregates).
    assert services.scope_queryset(world.alice, world.model.objects.all()).count() == 2


def test_check_pairs_with_scope_queryset(world):
    records = world.records
    assert services.check(world.alice, "data.expense.view", records["alice_draft"])
    assert not services.check(world.alice, "data.expense.view", records["bob_draft"])
    assert services.check(world.alice, "data.expense.change", records["alice_draft"])
    assert not services.check(world.alice, "data.expense.change", records["alice_submitted"])  # not a draft
    assert not services.check(world.alice, "data.expense.export")
    assert services.check(world.frank, "data.expense.export")
    assert services.check(world.mia, "data.expense.view", records["bob_draft"])
    assert not services.check(world.mia, "data.expense.view", records["frank_draft"])
    assert services.check(world.mia, "workflows.task.act") and not services.check(world.alice, "workflows.task.act")
    assert services.check(world.bea, "designer.access") and not services.check(world.alice, "designer.access")
    assert services.check(world.alice, "api.access")

    # The yes/no check and the queryset filter come from the same source.
    for user in (world.alice, world.bob, world.mia, world.frank, world.bea):
        for action in ("view", "change", "delete"):
            allowed = visible(user, world, action)
            for name, record in records.items():
                assert services.check(user, entity_operation("expense", action), record) == (name in allowed), \
                    (user.username, action, name)


def test_inactive_and_unknown(world):
    world.alice.is_active = False
    assert not services.check(world.alice, "data.expense.view", world.records["alice_draft"])
    assert services.scope_queryset(world.alice, world.model.objects.all()).count() == 0
    with pytest.raises(UnknownOperation):
        services.check(world.bob, "data.expense.fly")
    with pytest.raises(UnknownOperation):
        services.check(world.bob, "nothing.registered")


def test_department_tree_and_expression_scopes(world):
    User = get_user_model()
    eve = User.objects.create_user("eve")
    services.create_department("Sales EU", parent=world.sales, members=[eve])
    services.assign_role(eve, world.member)
    eves = world.model.objects.create(title="Train", amount=2000, spent_on=TODAY, submitted_by=eve,
                                      category="travel")
    regional = services.create_role("regional", grants=["data.expense.view"])
    services.add_scope(regional, "expense", "department_tree", owner_field="submitted_by")
    services.assign_role(world.mia, regional)
    mine = services.scope_queryset(world.mia, world.model.objects.all())
    assert eves in mine and world.records["frank_draft"] not in mine
    # "department" (without "_tree") does not reach below.
    services.unassign_role(world.mia, regional)
    assert eves not in services.scope_queryset(world.mia, world.model.objects.all())

    travel = services.create_role("travel_desk", grants=["data.expense.view"])
    services.add_scope(travel, "expense", "expression", expression="category == 'travel' and amount >= 1000")
    services.assign_role(world.bob, travel)
    assert set(services.scope_queryset(world.bob, world.model.objects.all())) == {world.records["bob_draft"], eves}
    assert services.check(world.bob, "data.expense.view", eves)
    # The caller's attributes are parameters of the filter.
    services.add_scope(travel, "expense", "expression", expression="submitted_by == user.id")
    assert services.check(world.bob, "data.expense.view", world.records["bob_draft"])


def test_scope_validation(world):
    with pytest.raises(ValidationError) as error:
        services.add_scope(world.member, "expense", "own", owner_field="title")
    assert "owner_field" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        services.add_scope(world.member, "expense", "expression", expression="status ==")
    assert "expression" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        services.add_scope(world.member, "expense", "expression", expression="no_such_field == 1")
    assert "expression" in error.value.message_dict
    with pytest.raises(ValidationError):
        services.add_scope(world.member, "expense", "expression", expression="")
    with pytest.raises(ValidationError):
        services.update_role(world.member, operations=["no.such.operation"])
    with pytest.raises(ValidationError):
        services.set_column_rule(world.member, "expense", "nope", "hidden")


class OthersRecords(OwnRecords):
    """A scope kind an app could add: the records someone else owns."""

    type = "others"
    label = "others' records"

    def condition(self, spec, user, eff):
        return ~Q(**{spec.owner_field: user.pk})

    def covers(self, spec, user, eff, owner) -> bool:
        return owner != user.pk


@pytest.fixture
def others_kind():
    scope_kind_registry.register(OthersRecords())
    yield
    scope_kind_registry.unregister(OthersRecords.type)


def test_a_registered_scope_kind_works_on_every_path(world, others_kind):
    """A scope kind is one class: once registered it is a choice, validated, filtered, tested in memory, explained."""
    assert ("others", "others' records") in list(DataScope._meta.get_field("kind").choices)
    rita = get_user_model().objects.create_user("rita")
    ritas = world.model.objects.create(title="Rita's", amount=1, spent_on=TODAY, submitted_by=rita)
    reviewer = services.create_role("reviewer", grants=["data.expense.view"])
    with pytest.raises(ValidationError) as error:
        services.add_scope(reviewer, "expense", "others", owner_field="title")  # Its owner field is checked.
    assert "owner_field" in error.value.message_dict
    services.add_scope(reviewer, "expense", "others", owner_field="submitted_by")
    services.assign_role(rita, reviewer)

    assert set(services.scope_queryset(rita, world.model.objects.all())) == set(world.records.values())
    for record in [ritas, *world.records.values()]:
        assert services.check(rita, "data.expense.view", record) == (record != ritas)
    explanation = services.explain(rita, "data.expense.view", ritas)
    assert not explanation.allowed
    assert (f"Record {ritas.pk} is outside the scope others' records on submitted_by (role reviewer, view scope)."
            in [step.message for step in explanation.steps])


# --- Column rules (RB-5) ----------------------------------------------------------------------


def test_field_rules_least_restrictive_across_roles(world):
    assert services.field_rules(world.alice, "expense") == {"iban": "masked", "status": "read_only"}
    assert services.field_rules(world.frank, "expense") == {}
    assert services.field_rules(world.mia, "expense") == {"iban": "masked"}
    assert services.field_rules(world.bea, "expense") == {}
    # A second role that may view the entity: the least restrictive rule wins, a missing one is none.
    auditor = services.create_role("auditor", grants=["data.expense.view"])
    services.set_column_rule(auditor, "expense", "iban", "read_only")
    services.set_column_rule(auditor, "expense", "notes", "hidden")
    services.assign_role(world.alice, auditor)
    assert services.field_rules(world.alice, "expense") == {"iban": "read_only"}
    # A role that cannot view the entity does not loosen anything.
    services.revoke(auditor, "data.expense.view")
    assert services.field_rules(world.alice, "expense") == {"iban": "masked", "status": "read_only"}

    # The OpenAPI schema varies with them (settings.API_SCHEMA_VARY).
    variant = services.schema_variant
    assert variant(SimpleNamespace(user=world.bob)) != variant(SimpleNamespace(user=world.frank))
    assert variant(SimpleNamespace(user=world.bob)) == variant(SimpleNamespace(user=refetch(world.bob)))

    assert services.mask("DE89370400440532013000") == "****3000"
    assert services.mask("1234") == "****"
    assert services.mask(None) == ""


# --- Roles, inheritance, groups (RB-1) ------------------------------------------------------------


def test_inheritance_syncs_groups_and_refuses_cycles(world):
    User = get_user_model()
    carl = User.objects.create_user("carl")
    senior = services.create_role("senior", "Senior member", parents=[world.member], grants=["data.expense.export"])
    services.assign_role(carl, senior)

    assert services.check(carl, "data.expense.export") and services.check(carl, "data.expense.view")
    mine = world.model.objects.create(title="Carl's", amount=1, spent_on=TODAY, submitted_by=carl)
    assert list(services.scope_queryset(carl, world.model.objects.all())) == [mine]  # inherited scope
    assert services.field_rules(carl, "expense") == {"iban": "masked", "status": "read_only"}  # inherited rules

    # The Django groups mirror it: the Django admin honours roles.
    group = Group.objects.get(name="role:senior")
    codenames = set(group.permissions.values_list("codename", flat=True))
    assert {"export_expense", "view_expense", "add_expense", "change_expense"} <= codenames
    assert set(refetch(carl).groups.values_list("name", flat=True)) == {"role:senior", "role:member"}
    assert refetch(carl).has_perm("data.export_expense") and refetch(carl).has_perm("data.view_expense")
    assert refetch(world.frank).has_perm("data.export_expense")  # finance through the Finance department
    assert not refetch(world.alice).has_perm("data.export_expense")

    with pytest.raises(ValidationError) as error:
        services.set_parents(world.member, [senior])
    assert "member → senior → member" in str(error.value)
    with pytest.raises(ValidationError):
        services.set_parents(senior, [senior])

    # Removing the parent takes the inherited grants away, in groups too.
    services.set_parents(senior, [])
    assert not services.check(carl, "data.expense.view")
    assert not refetch(carl).has_perm("data.view_expense")
    assert set(refetch(carl).groups.values_list("name", flat=True)) == {"role:senior"}

    # Unassigning and deleting roles keep groups in sync.
    services.unassign_role(carl, senior)
    assert not refetch(carl).groups.exists()
    services.delete_role(senior)
    assert not Group.objects.filter(name="role:senior").exists()
    with pytest.raises(ValidationError):
        services.delete_role(world.member)  # built-in


def test_department_tree_paths_and_cycles(world):
    europe = services.create_department("Sales EU", parent=world.sales)
    france = services.create_department("Sales FR", parent=europe)
    assert france.path == f"{world.sales.path}{europe.pk}/{france.pk}/" and france.depth == 2
    with pytest.raises(ValidationError) as error:
        services.update_department(world.sales, parent=france)
    assert "Sales → Sales FR → Sales EU → Sales" in str(error.value)
    # Moving a subtree moves the paths below it.
    services.update_department(europe, parent=world.finance_department)
    france.refresh_from_db()
    assert france.path == f"{world.finance_department.path}{europe.pk}/{france.pk}/"
    # Department roles: members and managers get them, and lose them when they leave.
    services.remove_member(world.finance_department, world.frank)
    assert not services.check(world.frank, "data.expense.export")
    assert not refetch(world.frank).groups.filter(name="role:finance").exists()
    services.add_member(world.finance_department, world.frank, manager=True)
    assert services.check(world.frank, "data.expense.export")


def test_tenant_admin_can_do_everything(world):
    tina = get_user_model().objects.create_user("tina")
    services.assign_role(tina, Role.objects.get(key="tenant_admin"))
    for operation in operation_type_registry.get_types():
        assert services.check(tina, operation)
    for action in ("view", "add", "change", "delete", "export", "import"):
        assert services.check(tina, entity_operation("expense", action), world.records["bob_draft"])
    queryset = world.model.objects.all()
    assert services.scope_queryset(tina, queryset) is queryset
    assert services.field_rules(tina, "expense") == {}
    # Its group has every permission, the runtime entities' included: the Django admin agrees.
    assert refetch(tina).has_perm("data.delete_expense") and refetch(tina).has_perm("data.import_expense")
    assert refetch(tina).has_perm("rbac.change_role")


def test_builtin_roles_and_entity_permissions(world):
    roles = {role.key: role for role in Role.objects.filter(builtin=True)}
    assert set(roles) == {"tenant_admin", "builder", "member", "guest"}
    assert all(role.group.name == f"role:{key}" for key, role in roles.items())
    assert "designer.access" in roles["builder"].operations
    assert roles["builder"].permissions.filter(content_type__app_label="dynamic_models",
                                               codename="change_entity").exists()
    assert roles["guest"].operations == [] and not roles["guest"].permissions.exists()
    # Publishing made export/import permissions (sync ensures them; publish may call this too).
    Permission.objects.filter(codename__in=["export_project", "import_project"]).delete()
    services.ensure_entity_permissions(runtime.get_model("project"))
    assert Permission.objects.filter(content_type__app_label="data", codename="import_project").exists()
    assert Group.objects.get(name="role:tenant_admin").permissions.filter(codename="export_project").exists()
    services.ensure_builtin_roles()  # idempotent
    assert Role.objects.filter(builtin=True).count() == 4


# --- Object grants (RB-3) ------------------------------------------------------------------------


def test_share_makes_one_record_visible(world):
    bobs = world.records["bob_draft"]
    assert not services.check(world.alice, "data.expense.view", bobs)
    services.share(bobs, user=world.alice)
    assert services.check(world.alice, "data.expense.view", bobs)
    assert not services.check(world.alice, "data.expense.change", bobs)
    with CaptureQueriesContext(connection) as queries:
        assert visible(world.alice, world) == {"alice_draft", "alice_submitted", "bob_draft"}
    assert len(sql(queries)) == 1
    assert refetch(world.alice).has_perm("data.view_expense", bobs)  # guardian agrees

    # A grant to a role's holders, through its group.
    franks = world.records["frank_draft"]
    services.share(franks, role=world.member, actions=("view", "change"))
    assert services.check(world.bob, "data.expense.change", franks)
    assert "frank_draft" in visible(world.bob, world, "change")

    services.unshare(bobs, user=world.alice)
    services.unshare(franks, role=world.member, actions=("view", "change"))
    assert visible(world.alice, world) == {"alice_draft", "alice_submitted"}
    assert not services.check(world.bob, "data.expense.view", franks)


# --- Caching (RB-7) -------------------------------------------------------------------------------


def test_repeated_checks_cost_no_query(world):
    alice, own = world.alice, world.records["alice_draft"]
    services.check(alice, "data.expense.view")
    with CaptureQueriesContext(connection) as queries:
        for _ in range(20):
            assert services.check(alice, "data.expense.view")
            assert services.check(alice, "data.expense.view", own)  # own: decided in memory
            assert not services.check(alice, "data.expense.export")
            assert services.check(alice, "api.access")
            assert services.field_rules(alice, "expense")
    assert sql(queries) == []

    # With the request, the version is read from the cache once per request.
    request = SimpleNamespace()
    reads = []
    original = cache.get

    def counting_get(key, *args, **kwargs):
        reads.append(key)
        return original(key, *args, **kwargs)

    cache.get = counting_get
    try:
        for _ in range(10):
            services.check(alice, "data.expense.view", request=request)
    finally:
        cache.get = original
    assert reads == [services.VERSION_KEY]


def test_a_bump_invalidates_other_processes(world, monkeypatch):
    alice = world.alice
    other_process: dict = {}
    this_process: dict = {}
    # Another process has computed alice's permissions...
    monkeypatch.setattr(effective_cache, "_local", other_process)
    assert not services.check(alice, "data.expense.export")
    # ...this process changes her role (the service bumps the tenant's version in Redis)...
    monkeypatch.setattr(effective_cache, "_local", this_process)
    services.grant(world.member, "data.expense.export")
    # ...and the other process sees it on its next check.
    monkeypatch.setattr(effective_cache, "_local", other_process)
    assert services.check(alice, "data.expense.export")

    # Without a bump the cache answers (a change that bypasses the services is not seen)...
    world.member.permissions.remove(Permission.objects.get(codename="export_expense"))
    assert services.check(alice, "data.expense.export")
    # ...until something bumps the version, in any process.
    cache.incr(services.VERSION_KEY)
    assert not services.check(alice, "data.expense.export")
    # A lost counter (cache cleared) starts again above every former value.
    before = services.version()
    cache.delete(services.VERSION_KEY)
    assert services.version() > before


# --- Explain (RB-8) -------------------------------------------------------------------------------


def test_explain_names_the_deciding_rules(world):
    bobs, alices = world.records["bob_draft"], world.records["alice_draft"]
    denied = services.explain(world.alice, "data.expense.view", bobs)
    assert not denied.allowed
    text = "\n".join(step.message for step in denied.steps)
    assert "Role member (assigned directly) grants the permission data.view_expense." in text
    assert f"Record {bobs.pk} is outside the scope own records on submitted_by (role member, view scope)." in text
    assert "Column rules: iban=masked, status=read_only." in text
    assert denied.steps[-1].kind == "decision" and denied.steps[-1].ok is False

    allowed = services.explain(world.frank, "data.expense.view", alices)
    assert allowed.allowed
    text = "\n".join(step.message for step in allowed.steps)
    assert "Role finance (manager of department Finance) grants the permission data.view_expense." in text
    assert "matches the scope all records (role finance, view scope)" in text

    services.share(bobs, user=world.alice)
    shared = services.explain(world.alice, "data.expense.view", bobs)
    assert shared.allowed and any(step.kind == "grant" and step.ok for step in shared.steps)

    assert services.explain(world.bea, "designer.access").allowed
    assert not services.explain(world.alice, "designer.access").allowed
    # explain() and check() agree.
    for user in (world.alice, world.mia, world.frank):
        for name, record in world.records.items():
            for action in ("view", "change"):
                operation = entity_operation("expense", action)
                assert services.explain(user, operation, record).allowed == services.check(user, operation, record), \
                    (user.username, name, action)


@pytest.fixture
def root(world):
    return get_user_model().objects.create_user("root", is_staff=True, is_superuser=True)


def test_explain_api(world, root, acme_client):
    bobs = world.records["bob_draft"]
    url = f"/api/v1/rbac/explain/?user=alice&operation=data.expense.view&record={bobs.pk}"
    acme_client.force_login(root, backend=BACKEND)
    response = acme_client.get(url)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["allowed"] is False and body["user"] == "alice" and body["record"] == str(bobs.pk)
    assert any("outside the scope" in step["message"] for step in body["steps"])
    assert acme_client.get("/api/v1/rbac/explain/?user=frank&operation=data.expense.export").json()["allowed"]
    assert acme_client.get("/api/v1/rbac/explain/?user=alice&operation=fly").status_code == 400
    assert acme_client.get("/api/v1/rbac/explain/?user=nobody&operation=api.access").status_code == 404
    assert acme_client.get("/api/v1/rbac/explain/?user=alice&operation=data.expense.view&record=999999"
                           ).status_code == 404

    world.alice.is_staff = True
    world.alice.save()
    acme_client.force_login(world.alice, backend=BACKEND)
    assert acme_client.get(url).status_code == 403
    # A staff user whose role grants rbac.manage may.
    services.grant(world.member, "rbac.manage")
    assert acme_client.get(url).status_code == 200


def test_explain_admin_page(world, root, acme_client):
    bobs = world.records["bob_draft"]
    acme_client.force_login(root, backend=BACKEND)
    changelist = acme_client.get("/admin/rbac/role/")
    assert changelist.status_code == 200 and "/admin/rbac/role/explain/" in changelist.content.decode()
    page = acme_client.get("/admin/rbac/role/explain/",
                           {"user": "alice", "operation": "data.expense.view", "record": bobs.pk})
    assert page.status_code == 200
    body = html.unescape(page.content.decode())
    assert "Denied" in body and "Role member (assigned directly) grants the permission data.view_expense." in body
    assert acme_client.get("/admin/rbac/role/explain/").status_code == 200  # the empty form

    world.alice.is_staff = True
    world.alice.save()
    acme_client.force_login(world.alice, backend=BACKEND)
    assert acme_client.get("/admin/rbac/role/explain/", {"user": "bob", "operation": "api.access"}).status_code == 403


# --- Admin and audit -------------------------------------------------------------------------------


def test_admin_role_form_syncs_and_audits(world, root, acme_client, monkeypatch):
    events = []
    monkeypatch.setattr(services.audit, "record", lambda action, **kwargs: events.append((str(action), kwargs)))
    acme_client.force_login(root, backend=BACKEND)
    form = acme_client.get(f"/admin/rbac/role/{world.member.pk}/change/")
    assert form.status_code == 200
    page = form.content.decode()
    assert 'value="designer.access"' in page and 'value="data.expense.export"' in page
    assert '<option value="submitted_by"' in page and 'name="scopes-0-expression"' in page
    view = Permission.objects.get(content_type__app_label="data", codename="view_expense")
    data = {
        "key": "controller", "name": "Controller", "description": "",
        "parents": [world.member.pk], "users": [world.bob.pk], "entity_actions": ["data.expense.view"],
        "operations": ["audit.view"],
        "scopes-TOTAL_FORMS": "1", "scopes-INITIAL_FORMS": "0", "scopes-MIN_NUM_FORMS": "0",
        "scopes-MAX_NUM_FORMS": "1000",
        "scopes-0-entity_key": "expense", "scopes-0-action": "view", "scopes-0-kind": "all",
        "scopes-0-owner_field": "created_by", "scopes-0-expression": "",
        "column_rules-TOTAL_FORMS": "1", "column_rules-INITIAL_FORMS": "0", "column_rules-MIN_NUM_FORMS": "0",
        "column_rules-MAX_NUM_FORMS": "1000",
        "column_rules-0-entity_key": "expense", "column_rules-0-field_key": "notes", "column_rules-0-rule": "hidden",
    }
    response = acme_client.post("/admin/rbac/role/add/", data)
    assert response.status_code == 302, html.unescape(response.content.decode())[-3000:]
    controller = Role.objects.get(key="controller")
    assert list(controller.permissions.all()) == [view]
    assert DataScope.objects.filter(role=controller, kind="all").exists()
    assert ColumnRule.objects.filter(role=controller, field_key="notes", rule="hidden").exists()
    assert set(refetch(world.bob).groups.values_list("name", flat=True)) == {"role:member", "role:controller"}
    assert visible(world.bob, world) == set(world.records)
    assert services.check(world.bob, "audit.view")
    assert events[-1][0] == "rbac.role.create" and events[-1][1]["after"]["parents"] == ["member"]

    # A cycle is refused by the form, naming it.
    response = acme_client.post(f"/admin/rbac/role/{world.member.pk}/change/", {
        "name": "Member", "description": "", "parents": [controller.pk], "operations": ["api.access"],
        "permissions": list(world.member.permissions.values_list("pk", flat=True)), "users": [],
        "scopes-TOTAL_FORMS": "0", "scopes-INITIAL_FORMS": "0", "scopes-MIN_NUM_FORMS": "0",
        "scopes-MAX_NUM_FORMS": "1000", "column_rules-TOTAL_FORMS": "0", "column_rules-INITIAL_FORMS": "0",
        "column_rules-MIN_NUM_FORMS": "0", "column_rules-MAX_NUM_FORMS": "1000"})
    assert response.status_code == 200
    assert "member → controller → member" in html.unescape(response.content.decode())

    # Departments: indented tree, saved through the services.
    response = acme_client.post("/admin/rbac/department/add/", {
        "name": "Sales EU", "parent": world.sales.pk, "managers": [], "members": [world.frank.pk],
        "roles": [world.member.pk]})
    assert response.status_code == 302
    assert services.check(world.frank, "api.access") and "role:member" in set(
        refetch(world.frank).groups.values_list("name", flat=True))
    assert events[-1][0] == "rbac.department.create"
    listing = acme_client.get("/admin/rbac/department/").content.decode()
    assert 'padding-left: 1.5em">Sales EU' in listing


def test_services_audit_changes(world, monkeypatch):
    events = []
    monkeypatch.setattr(services.audit, "record", lambda action, **kwargs: events.append((str(action), kwargs)))
    services.assign_role(world.frank, world.member, actor=world.bea)
    action, event = events[-1]
    assert action == "rbac.membership.assign" and event["actor"] == world.bea
    assert event["before"] == {"roles": []} and event["after"] == {"roles": ["member"]}
    services.grant(world.manager, "data.expense.export")
    assert events[-1][0] == "rbac.role.grant"
    assert events[-1][1]["after"]["permissions"] == ["data.export_expense", "data.view_expense"]
    services.share(world.records["bob_draft"], user=world.alice)
    assert events[-1][0] == "rbac.grant.share" and events[-1][1]["target"] == world.records["bob_draft"]


# --- CLI and isolation -----------------------------------------------------------------------------


def test_cli(world):
    out = StringIO()
    call_command("lowcode", "rbac", "roles", "--tenant", "acme", stdout=out)
    assert "finance" in out.getvalue() and "tenant_admin" in out.getvalue()
    out = StringIO()
    call_command("lowcode", "rbac", "assign", "--tenant", "acme", "--user", "bea", "--role", "manager", stdout=out)
    assert "bea now has the role manager" in out.getvalue()
    assert world.manager.users.filter(username="bea").exists()
    call_command("lowcode", "rbac", "unassign", "--tenant", "acme", "--user", "bea", "--role", "manager",
                 stdout=StringIO())
    assert not world.manager.users.filter(username="bea").exists()
    out = StringIO()
    call_command("lowcode", "rbac", "explain", "--tenant", "acme", "--user", "alice", "--operation",
                 "data.expense.view", "--record", str(world.records["bob_draft"].pk), stdout=out)
    assert "outside the scope" in out.getvalue() and "DENIED" in out.getvalue()
    from django.core.management import CommandError

    with pytest.raises(CommandError):
        call_command("lowcode", "rbac", "assign", "--tenant", "acme", "--user", "nobody", "--role", "member")
    with pytest.raises(CommandError):
        call_command("lowcode", "rbac", "explain", "--tenant", "acme", "--user", "alice", "--operation", "x.y")


def test_tenants_are_isolated(world, globex):
    acme_alice = world.alice
    assert services.check(acme_alice, "data.expense.view")
    with tenant_context(globex):
        assert not Role.objects.filter(key__in=["manager", "finance"]).exists()
        assert set(Role.objects.filter(builtin=True).values_list("key", flat=True)) == {
            "tenant_admin", "builder", "member", "guest"}
        assert not Department.objects.exists()
        # Same user id in another schema: another person, with nothing cached from acme.
        User = get_user_model()
        User.objects.filter(pk=acme_alice.pk).delete()
        gina = User.objects.create_user("gina", id=acme_alice.pk)
        assert services.effective(gina).roles == frozenset()
        assert not services.check(gina, "data.expense.view")
    assert services.check(acme_alice, "data.expense.view")
