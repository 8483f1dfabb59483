"""Bounded queries (PG-6): the list and the detail page ask the database as often with many rows
as with few."""

from __future__ import annotations

import datetime
from decimal import Decimal

from django.db import connection
from django.test.utils import CaptureQueriesContext

from dynamic_models import runtime
from tests.scenario import client_for


def add_expenses(user, project, count: int) -> None:
    expense = runtime.get_model("expense")
    for index in range(count):
        expense.objects.create(title=f"Lunch {index}", amount=Decimal("12.50"), spent_on=datetime.date(2026, 1, 2),
                               submitted_by=user, project_id=project.pk, iban="DE89370400440532013000", category="meals")


def queries_of(client, path: str) -> int:
    client.get(path)  # Caches (permissions, site) warmed.
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200, response.content[:500]
    return len(captured)


def test_list_and_detail_queries_do_not_grow_with_rows(people):
    project = runtime.get_model("project").objects.first()
    for name in ("alice", "frank"):
        client = client_for(people[name], key=False)
        add_expenses(people["alice"], project, 2)
        few_list = queries_of(client, "/data/expense/")
        few_detail = queries_of(client, f"/data/project/{project.pk}/")
        add_expenses(people["alice"], project, 30)
        assert queries_of(client, "/data/expense/") == few_list, name
        assert queries_of(client, f"/data/project/{project.pk}/") == few_detail, name
