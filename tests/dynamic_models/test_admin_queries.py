"""The generated admin's record list runs a fixed number of queries, whatever its rows (issue 16, finding 4)."""

import datetime

from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dynamic_models import runtime

from .test_admin import staff_client  # noqa: F401 (a fixture)


def add_expenses(count: int, start: int) -> None:
    """`count` expenses, each with its own project and submitter: the nullable relations the list shows."""
    Project, Expense = runtime.get_model("project"), runtime.get_model("expense")
    for n in range(start, start + count):
        project = Project.objects.create(name=f"Project {n}")
        submitter = get_user_model().objects.create_user(username=f"submitter{n}")
        Expense.objects.create(title=f"Taxi {n}", amount=5, spent_on=datetime.date(2026, 1, 2), project=project,
                               submitted_by=submitter)


def list_queries(client) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/admin/data/expense/")
    assert response.status_code == 200
    return len(captured), response.content.decode()


def test_the_expense_list_of_100_rows_runs_as_many_queries_as_of_10(scenario, staff_client):  # noqa: F811
    add_expenses(10, 0)
    ten, listing = list_queries(staff_client)
    assert "Project 9" in listing and "submitter9" in listing  # The relations are shown, by name.
    add_expenses(90, 10)
    hundred, listing = list_queries(staff_client)
    assert "Project 99" in listing and "submitter99" in listing and listing.count("Taxi ") >= 100
    assert hundred == ten and hundred < 40
