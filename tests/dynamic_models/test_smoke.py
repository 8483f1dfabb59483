import datetime
from decimal import Decimal

from dynamic_models import runtime


def test_publish_and_use_records(scenario):
    Project = runtime.get_model("project")
    Expense = runtime.get_model("expense")
    project = Project.objects.create(name="Apollo", code="APO-001", budget=Decimal("1000.00"))
    expense = Expense.objects.create(title="Taxi", amount=Decimal("12.50"), spent_on=datetime.date(2026, 1, 2),
                                     project=project)
    expense.refresh_from_db()
    assert expense.number == "EXP-0001"
    assert expense.currency == "CNY" and expense.status == "draft"
    assert list(project.expense_project_set.all()) == [expense]
