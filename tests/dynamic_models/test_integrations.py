"""Runtime models work with DRF, django-filter and django-guardian like static models (DM-2)."""

import datetime
from decimal import Decimal

import django_filters
import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django_tenants.utils import tenant_context
from guardian.shortcuts import assign_perm, get_objects_for_user, get_perms
from rest_framework import serializers

from dynamic_models import runtime, services

from .conftest import design


def test_drf_model_serializer_reads_and_validates(scenario):
    Expense = runtime.get_model("expense")

    class ExpenseSerializer(serializers.ModelSerializer):
        class Meta:
            model = Expense
            fields = ["id", "number", "title", "amount", "currency", "spent_on", "category", "project"]

    project = runtime.get_model("project").objects.create(name="Apollo")
    good = ExpenseSerializer(data={"title": "Taxi", "amount": "12.50", "spent_on": "2026-01-02",
                                   "category": "travel", "project": project.pk})
    assert good.is_valid(), good.errors
    saved = good.save()
    saved.refresh_from_db()
    data = ExpenseSerializer(saved).data
    assert (data["number"], data["amount"], data["currency"], data["project"]) == ("EXP-0001", "12.50", "CNY",
                                                                                     project.pk)
    bad = ExpenseSerializer(data={"title": "", "amount": "-1", "spent_on": "2999-01-01", "currency": "GBP"})
    assert not bad.is_valid()
    assert set(bad.errors) == {"title", "amount", "spent_on", "currency"}


def test_django_filter_filterset(scenario):
    Expense = runtime.get_model("expense")
    for title, amount, category in [("Taxi", "10", "travel"), ("Lunch", "30", "meals"), ("Laptop", "900", "equipment")]:
        Expense.objects.create(title=title, amount=Decimal(amount), spent_on=datetime.date(2026, 1, 2),
                               category=category)

    class ExpenseFilter(django_filters.FilterSet):
        class Meta:
            model = Expense
            fields = {"amount": ["gt", "lt"], "category": ["exact", "in"], "title": ["icontains"]}

    assert [e.title for e in ExpenseFilter({"amount__gt": "20"}, Expense.objects.order_by("id")).qs] == [
        "Lunch", "Laptop"]
    assert [e.title for e in ExpenseFilter({"category__in": "travel,meals"}, Expense.objects.order_by("id")).qs] == [
        "Taxi", "Lunch"]
    assert not ExpenseFilter({"amount__gt": "abc"}, Expense.objects.all()).is_valid()


def test_guardian_object_permissions_in_two_tenants(scenario, acme, globex):
    User = get_user_model()
    Expense = runtime.get_model("expense")
    alice = User.objects.create_user("alice")
    mine = Expense.objects.create(title="Mine", amount=1, spent_on=datetime.date(2026, 1, 2))
    Expense.objects.create(title="Other", amount=1, spent_on=datetime.date(2026, 1, 2))
    assign_perm("data.view_expense", alice, mine)
    assert get_perms(alice, mine) == ["view_expense"]
    assert list(get_objects_for_user(alice, "data.view_expense", Expense)) == [mine]
    assert alice.has_perm("data.view_expense", mine) and not alice.has_perm("data.change_expense", mine)

    with tenant_context(globex):
        # Another tenant with its own expense: content type ids differ, the caches must not mix.
        services.publish(design("expense", [{"key": "title", "type": "text"}, {"key": "spare", "type": "integer"}]))
        GlobexExpense = runtime.get_model("expense")
        gina = User.objects.create_user("gina")
        record = GlobexExpense.objects.create(title="Theirs")
        assign_perm("data.view_expense", gina, record)
        assert list(get_objects_for_user(gina, "data.view_expense", GlobexExpense)) == [record]

    assert list(get_objects_for_user(alice, "data.view_expense", Expense)) == [mine]

    # Grants survive republishing: the content type keeps its id across versions.
    body = services.entity_body(scenario["expense"])
    body["fields"].append({"id": "vatrate01", "key": "vat_rate", "type": "decimal"})
    services.publish_body(body)
    NewExpense = runtime.get_model("expense")
    assert NewExpense is not Expense
    assert list(get_objects_for_user(alice, "data.view_expense", NewExpense)) == [NewExpense.objects.get(pk=mine.pk)]


def test_deleting_a_user_applies_the_user_fields_rules(scenario):
    from django.db.models import ProtectedError

    from dynamic_models.models import Field

    User = get_user_model()
    Expense = runtime.get_model("expense")
    alice, bob = User.objects.create_user("alice"), User.objects.create_user("bob")
    expense = Expense.objects.create(title="Taxi", amount=1, spent_on=datetime.date(2026, 1, 2), submitted_by=alice,
                                     created_by=alice)
    alice.delete()
    expense.refresh_from_db()
    assert expense.submitted_by is None and expense.created_by is None

    submitted_by = Field.objects.get(entity=scenario["expense"], key="submitted_by")
    submitted_by.options = {"on_delete": "protect"}
    submitted_by.save()
    services.publish(scenario["expense"])
    runtime.get_model("expense").objects.filter(pk=expense.pk).update(submitted_by=bob)
    with pytest.raises(ProtectedError, match="referenced by Expenses"), transaction.atomic():
        bob.delete()
    assert User.objects.filter(username="bob").exists()
