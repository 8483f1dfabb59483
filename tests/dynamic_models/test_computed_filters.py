"""Computed fields filter and sort like any other field (issue 17): formulas, lookups, rollups
and counts in the entity API (and its OpenAPI schema), the admin list and the end-user table,
with the lookups that fit their values; behind rbac's column rules, so that a value over records
a viewer cannot all see is no filter or ordering to probe them with."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client

from dynamic_models import runtime, services
from rbac import services as rbac
from rbac.models import Role

from .test_design_errors import body
from .test_related_values import EXPENSE, PROJECT, ROLLUPS, client_of
from .test_related_values import admin_api as admin_api  # noqa: F401 - fixtures
from .test_related_values import related as related  # noqa: F401

FORMULAS = [{"key": "share", "type": "formula", "options": {"expression": "amount / project.budget * 100"}},
            {"key": "label", "type": "formula", "options": {"expression": "concat(title, ' @ ', project.name)"}},
            {"key": "big", "type": "formula", "options": {"expression": "amount > 100"}}]


@pytest.fixture
def with_formulas(related):
    services.publish_body(body("expense", *EXPENSE, *FORMULAS))
    return related


def _titles(client, query: str, entity: str = "expense", field: str = "title") -> list:
    response = client.get(f"/api/v1/data/{entity}/?{query}")
    assert response.status_code == 200, response.content
    return [row[field] for row in response.json()["results"]]


ROLLUP_QUERIES = [
    ("spent__gt=100", ["Apollo"]), ("spent=0", ["Gemini"]), ("expenses__gte=1", ["Apollo"]),
    ("expenses=0", ["Gemini"]), ("average__isnull=true", ["Gemini"]), ("largest__lt=201", ["Apollo"]),
    ("first_spent_on__gte=2026-01-02", ["Apollo"]), ("first_spent_on__gte=2026-01-04", []),
    ("longest_tag=space", ["Apollo"]), ("longest_tag__icontains=PAC", ["Apollo"]), ("tag_count__lte=1", ["Gemini"]),
    ("ordering=-spent", ["Apollo", "Gemini"]), ("ordering=spent", ["Gemini", "Apollo"]),
    ("ordering=expenses,name", ["Gemini", "Apollo"]), ("ordering=first_spent_on", ["Apollo", "Gemini"]),
]


def test_the_api_filters_and_orders_rollups_and_counts(admin_api, related):  # noqa: F811
    answers = [(query, _titles(admin_api, query, "project", "name")) for query, _names in ROLLUP_QUERIES]
    assert answers == ROLLUP_QUERIES


FORMULA_QUERIES = [
    ("project_budget__gte=1000", ["Hotel", "Taxi"]), ("project_budget__lt=1000", []),
    ("project_name=Apollo", ["Hotel", "Taxi"]), ("project_name__istartswith=ap", ["Hotel", "Taxi"]),
    ("project_name__isnull=true", []),
    ("share__gt=10", ["Hotel"]), ("share__lte=10", ["Taxi"]), ("label__icontains=taxi @", ["Taxi"]),
    ("big=true", ["Hotel"]), ("big=false", ["Taxi"]),
    ("ordering=share", ["Taxi", "Hotel"]), ("ordering=-share", ["Hotel", "Taxi"]), ("ordering=-label", ["Taxi", "Hotel"]),
]


def test_the_api_filters_and_orders_lookups_and_formulas(admin_api, with_formulas):  # noqa: F811
    answers = [(query, _titles(admin_api, query if "ordering" in query else f"{query}&ordering=title"))
               for query, _titles_ in FORMULA_QUERIES]
    assert answers == FORMULA_QUERIES


BAD_QUERIES = [
    ("spent__gt=x", "invalid"), ("first_spent_on__gte=yesterday", "invalid"), ("expenses__gt=1.5", "invalid"),
    ("tag_names=space", "unknown_filter"), ("ordering=tag_names", "invalid_ordering"),
    ("expenses__icontains=1", "unknown_filter"),
]


def test_bad_filters_of_computed_fields_name_the_parameter(admin_api, related):  # noqa: F811
    answers = []
    for query, _code in BAD_QUERIES:
        response = admin_api.get(f"/api/v1/data/project/?{query}")
        [(name, [error])] = response.json().items()
        assert (response.status_code, name) == (400, query.split("=")[0])
        answers.append((query, error["code"]))
    assert answers == BAD_QUERIES


def test_deleted_records_filter_and_order_by_computed_values(admin_api, related):  # noqa: F811
    runtime.get_model("project").objects.get(name="Gemini").soft_delete()
    assert _titles(admin_api, "deleted=only&expenses=0&ordering=-spent", "project", "name") == ["Gemini"]


def test_openapi_lists_the_filters_of_computed_fields(admin_api, with_formulas):  # noqa: F811
    schema = admin_api.get("/api/schema/?format=json").json()
    parameters = {p["name"]: p["schema"] for p in schema["paths"]["/api/v1/data/project/"]["get"]["parameters"]}
    assert {"spent", "spent__gt", "expenses__lte", "average__isnull", "first_spent_on__gte", "longest_tag__icontains"} \
        <= set(parameters)
    assert parameters["first_spent_on__gte"].get("format") == "date"
    assert not {name for name in parameters if name.startswith(("tag_names", "expense_titles"))}  # Lists of values.
    expense = {p["name"] for p in schema["paths"]["/api/v1/data/expense/"]["get"]["parameters"]}
    assert {"share__gt", "label__icontains", "big", "project_budget__gte", "project_name__istartswith"} <= expense


# --- admin and the end-user table -----------------------------------------------------------

FILTERABLE = {"expenses", "spent", "first_spent_on", "longest_tag"}


@pytest.fixture
def filterable(related):  # noqa: F811
    """project with some rollups and counts marked filterable (the admin's and the table's filter bars)."""
    services.publish_body(body("project", *PROJECT, *({**spec, "filterable": spec["key"] in FILTERABLE}
                                                      for spec in ROLLUPS)))
    return related


def _browser(username: str) -> Client:
    from django.contrib.auth import get_user_model

    client = Client(HTTP_HOST="acme.localhost")
    client.force_login(get_user_model().objects.get(username=username))
    return client


def _admin_names(client, query: str) -> list[str]:
    response = client.get(f"/admin/data/project/?{query}")
    assert response.status_code == 200, response.content[:500]
    return [record.name for record in response.context["cl"].result_list]


def test_the_admin_list_sorts_and_filters_by_computed_values(admin_api, filterable):  # noqa: F811
    browser = _browser("frank")
    page = browser.get("/admin/data/project/")
    columns = page.context["cl"].list_display
    spent = columns.index("formula_spent")
    assert _admin_names(browser, f"o={spent}") == ["Gemini", "Apollo"]
    assert _admin_names(browser, f"o=-{spent}") == ["Apollo", "Gemini"]
    titles = {str(spec.title): [choice["display"] for choice in spec.choices(page.context["cl"])]
              for spec in page.context["cl"].filter_specs}
    assert titles["expenses"] == ["All", "None", "Some"]
    assert titles["spent"] == ["All", "Zero", "Not zero"]
    assert titles["first_spent_on"] == ["All", "Empty", "Not empty"]
    assert "average" not in titles  # Not marked filterable.
    assert _admin_names(browser, "expenses=none") == ["Gemini"]
    assert _admin_names(browser, "spent=nonzero") == ["Apollo"]
    assert _admin_names(browser, "expenses=some") == ["Apollo"]
    assert _admin_names(browser, "first_spent_on=empty") == ["Gemini"]
    assert _admin_names(browser, "spent__gte=100") == ["Apollo"]  # A lookup in the query string.
    html = page.content.decode()
    assert "212.50" in html


def test_the_table_filters_and_sorts_by_computed_values(admin_api, filterable):  # noqa: F811
    browser = _browser("frank")

    def names(query):
        response = browser.get(f"/data/project/?{query}")
        assert response.status_code == 200, response.content[:1000]
        return [row.record.name for row in response.context["rows"]]

    controls = {control.key: control for control in browser.get("/data/project/").context["filters"]}
    assert (controls["spent"].widget, controls["spent"].input_type) == ("range", "number")
    assert (controls["first_spent_on"].widget, controls["first_spent_on"].input_type) == ("range", "date")
    assert controls["longest_tag"].widget == "text" and "average" not in controls
    assert names("spent__gte=100") == ["Apollo"]
    assert names("expenses__lte=0") == ["Gemini"]
    assert names("first_spent_on__lte=2026-01-03") == ["Apollo"]
    assert names("longest_tag__icontains=spa") == ["Apollo"]
    assert names("sort=spent") == ["Gemini", "Apollo"]
    assert names("sort=-expenses") == ["Apollo", "Gemini"]
    assert names("sort=average") == ["Apollo", "Gemini"]  # Sorting needs no filterable flag.
    refused = browser.get("/data/project/?sort=tag_names")  # Lists of values do not sort.
    assert refused.status_code == 400


# --- users and links to any record ----------------------------------------------------------


@pytest.fixture
def deals(tenant, acme, make_user):
    from .test_business_types import DEAL_FIELDS

    frank = make_user(acme, "frank", is_superuser=True, is_staff=True)
    connection.set_tenant(acme)
    services.publish_body(body("project", {"key": "name", "type": "text"}, display_field="name"))
    services.publish_body(body("deal", *({**spec, "filterable": spec["key"] in ("watchers", "about")}
                                         for spec in DEAL_FIELDS), display_field="name"))
    apollo = runtime.get_model("project").objects.create(name="Apollo")
    deal = runtime.get_model("deal").objects
    deal.create(name="Small", watchers=[])
    deal.create(name="Long", watchers=[frank.pk], about=f"project:{apollo.pk}")
    deal.create(name="Self", about=f"deal:{deal.get(name='Small').pk}")
    return {"frank": frank, "apollo": apollo}


def test_users_and_links_filter_in_the_api_admin_and_table(deals):
    frank, apollo = deals["frank"], deals["apollo"]
    api, browser = client_of(frank), _browser("frank")
    assert _titles(api, f"watchers__contains={frank.pk}", "deal", "name") == ["Long"]
    assert _titles(api, "about__entity=project&ordering=name", "deal", "name") == ["Long"]
    assert _titles(api, "about__entity=deal", "deal", "name") == ["Self"]
    assert _titles(api, "about__entity=proj", "deal", "name") == []  # The whole key, not a prefix.
    assert _titles(api, f"about=project:{apollo.pk}", "deal", "name") == ["Long"]
    parameters = {p["name"] for p in api.get("/api/schema/?format=json").json()[
        "paths"]["/api/v1/data/deal/"]["get"]["parameters"]}
    assert {"watchers__contains", "watchers__isnull", "about", "about__entity"} <= parameters

    listed = browser.get(f"/admin/data/deal/?watchers={frank.pk}")
    assert [str(record) for record in listed.context["cl"].result_list] == ["Long"]
    listed = browser.get("/admin/data/deal/?about=deal")
    assert [str(record) for record in listed.context["cl"].result_list] == ["Self"]
    titles = {str(spec.title): [choice["display"] for choice in spec.choices(listed.context["cl"])]
              for spec in listed.context["cl"].filter_specs}
    assert "frank" in titles["watchers"] and {"project", "deal"} <= set(titles["about"])

    table = browser.get("/data/deal/")
    controls = {control.key: control for control in table.context["filters"]}
    assert controls["watchers"].params == ("watchers__contains",) and (str(frank.pk), "frank") in \
        controls["watchers"].choices
    assert controls["about"].params == ("about__entity",)
    rows = browser.get(f"/data/deal/?watchers__contains={frank.pk}").context["rows"]
    assert [row.record.name for row in rows] == ["Long"]
    rows = browser.get("/data/deal/?about__entity=project").context["rows"]
    assert [row.record.name for row in rows] == ["Long"]


# --- the leak rule: values over records the viewer cannot all see ---------------------------


@pytest.fixture
def alice(filterable, acme, make_user):
    """A member who sees every project (budgets masked) but only her own expenses, and no tags."""
    services.publish_body(body("expense", *EXPENSE, *({**spec, "filterable": True} for spec in FORMULAS)))
    member = Role.objects.get(key=Role.MEMBER)
    rbac.grant(member, "data.view_expense", "data.view_project")
    rbac.add_scope(member, "expense", "own", owner_field="created_by")
    rbac.add_scope(member, "project", "all")
    rbac.set_column_rule(member, "project", "budget", "masked")
    user = make_user(acme, "alice", is_staff=True)
    connection.set_tenant(acme)
    rbac.assign_role(user, member)
    runtime.get_model("expense").objects.create(title="Mine", amount="30.00", spent_on="2026-01-04",
                                                project_id=filterable.pk, created_by=user)
    return user


REFUSED_API = [("project", "spent__gt=0"), ("project", "expenses=0"), ("project", "ordering=-expenses"),
               ("project", "first_spent_on__isnull=true"), ("project", "longest_tag__icontains=s"),
               ("project", "ordering=name,longest_tag"), ("expense", "project_budget__gte=1"),
               ("expense", "share__gt=1"), ("expense", "ordering=share")]


def test_filters_and_ordering_by_values_over_records_she_cannot_all_see_are_refused(alice, filterable):
    api, browser = client_of(alice), _browser("alice")
    answers = []
    for entity, query in REFUSED_API:
        response = api.get(f"/api/v1/data/{entity}/?{query}")
        errors = response.json() if response.status_code == 400 else {}
        answers.append((entity, query, response.status_code, [error["code"] for error in sum(errors.values(), [])]))
    assert answers == [(entity, query, 400, ["field_not_allowed"]) for entity, query in REFUSED_API]
    # What she reads in clear filters and sorts: her own expense's formulas over the project's name.
    assert _titles(api, "label__icontains=mine @ apollo&big=false&ordering=-label") == ["Mine"]
    assert _titles(api, "project_name=Apollo&ordering=project_name") == ["Mine"]
    parameters = {p["name"] for p in api.get("/api/schema/?format=json").json()[
        "paths"]["/api/v1/data/project/"]["get"]["parameters"]}
    # A count of the tags linked tells no more than the tag ids she reads; the rest is over expenses or tag names.
    assert {"name__icontains", "tag_count__gte"} <= parameters
    assert not {name for name in parameters if name.split("__")[0] in {spec["key"] for spec in ROLLUPS} - {"tag_count"}}

    for query in ("sort=-expenses", "spent__gte=1", "first_spent_on__lte=2026-01-10", "sort=average"):
        response = browser.get(f"/data/project/?{query}")
        assert response.status_code == 400, query  # As for a hidden stored field: the column is none of hers.
        assert query.startswith("sort=") or "cannot read in clear" in response.content.decode(), query
    assert not {control.key for control in browser.get("/data/project/").context["filters"]} & FILTERABLE
    assert browser.get("/data/expense/?sort=-share").status_code == 400
    assert browser.get("/data/expense/?sort=-label").status_code == 200

    for query in ("spent__gt=0", "expenses=none", "first_spent_on=empty", "longest_tag__icontains=s"):
        assert browser.get(f"/admin/data/project/?{query}").status_code == 400, query
    page = browser.get("/admin/data/project/")
    assert not {str(spec.title) for spec in page.context["cl"].filter_specs} & FILTERABLE
    assert {name for name in page.context["cl"].list_display if name.startswith("formula_")} == {"formula_tag_count"}


def test_oracle_worlds_differing_in_records_she_cannot_see_answer_alike(alice, filterable):
    """Every filter (computed ones included) with a few probes, every ordering, through the API,
    the table and admin, answers alike in two worlds that differ only in expenses alice cannot see."""
    from dynamic_models.api.records import RecordFilterSet, filter_lookups

    api, browser = client_of(alice), _browser("alice")
    queries = []
    for entity in ("project", "expense"):
        model = runtime.get_model(entity)
        names = [field if lookup == "exact" else f"{field}__{lookup}"
                 for field, lookups in filter_lookups(model.lowcode_entity).items() for lookup in lookups]
        names += list(RecordFilterSet.computed_filters(model))
        fields = [spec["key"] for spec in model.lowcode_entity["fields"]] + ["id"]
        queries += [f"/api/v1/data/{entity}/?{name}={probe}" for name in names for probe in ("0", "100", "2026-01-04")]
        queries += [f"/api/v1/data/{entity}/?ordering={sign}{name}" for name in fields for sign in ("", "-")]
        queries += [f"/data/{entity}/?sort={sign}{name}" for name in fields for sign in ("", "-")]
        queries += [f"/data/{entity}/?{name}={probe}" for name in names if name.split("__")[0] in FILTERABLE
                    for probe in ("0", "100")]
        queries += [f"/admin/data/{entity}/?o={sign}{index}" for index in range(1, 12) for sign in ("", "-")]
    queries += [f"/admin/data/project/?{name}={value}" for name in FILTERABLE for value in ("none", "some", "zero", "nonzero", "empty")]
    queries += ["/admin/data/project/?spent__gt=100", "/admin/data/project/?expenses__gte=2"]
    expense = runtime.get_model("expense")
    others = expense.objects.exclude(created_by=alice)

    def world() -> list:
        answers = []
        for query in queries:
            client = api if query.startswith("/api/") else browser
            response = client.get(query)
            text = response.content.decode() if response.status_code == 200 else ""
            answers.append((query, response.status_code, text.split('name="csrfmiddlewaretoken"')[0]))
        return answers

    first = world()
    others.filter(title="Taxi").update(amount="80.00", spent_on="2025-12-01")
    others.filter(title="Hotel").update(project=runtime.get_model("project").objects.get(name="Gemini"))
    second = world()
    assert [a[0] for a, b in zip(first, second, strict=True) if a != b] == []
    assert sum(status == 400 for _query, status, _text in first) > 50  # The probes did reach the computed fields.
    assert sum(status == 200 for _query, status, _text in first) > 50


# --- no index, a sane plan ------------------------------------------------------------------


def test_a_filter_on_a_count_over_10k_rows_is_a_correlated_subquery(related):  # noqa: F811
    """No index holds a computed value: the filter computes the count per project, through the
    index of the expenses' relation, never a join of every project with every expense."""
    import time

    project, expense = runtime.get_model("project"), runtime.get_model("expense")
    projects = project.objects.bulk_create([project(name=f"P{number}") for number in range(100)])
    expense.objects.bulk_create([expense(title="x", amount="1.00", spent_on="2026-01-01", project_id=item.pk)
                                 for index, item in enumerate(projects, 1) for _ in range(index % 3 * 100)])
    assert expense.objects.count() >= 10_000
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE dm_expense; ANALYZE dm_project")
    queryset = project.objects.filter(expenses__gt=60).order_by("-expenses").values_list("name", flat=True)
    plan = queryset.explain()
    outer, _subplan, inner = plan.partition("SubPlan")
    assert inner and "Join" not in outer and "Nested Loop" not in outer, plan
    assert "dm_expense_project_id" in inner, plan  # Each count reads one project's expenses by the index.
    started = time.monotonic()
    names = list(queryset)
    elapsed = time.monotonic() - started
    assert len(names) == 67 and elapsed < 2, elapsed
