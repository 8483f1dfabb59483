"""Fixtures of the workflow tests: the scenario's people and their published "Expense approval"."""

from __future__ import annotations

import copy
import datetime
import json
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

EXAMPLES = Path(settings.BASE_DIR) / "examples" / "expenses.json"


def approval_body() -> dict:
    """The scenario's workflow as the acme bundle ships it (a copy to change freely)."""
    bundle = json.loads(EXAMPLES.read_text())
    return copy.deepcopy(next(d["body"] for d in bundle["definitions"] if d["kind"] == "workflow"))


@pytest.fixture
def scenario(people, tenant):
    """acme with its people, entities and the published Expense approval (seed_demo imports it)."""
    return people


@pytest.fixture
def expense(scenario):
    """make an expense of alice's (or `user`'s) with `amount`, saved through the record services."""
    from dynamic_models import records, runtime

    def make(amount="500.00", *, user=None, title="Hotel in Hangzhou"):
        user = user or scenario["alice"]
        record = runtime.get_model("expense")(
            title=title, amount=Decimal(amount), currency="CNY", category="travel",
            spent_on=timezone.localdate() - datetime.timedelta(days=2), submitted_by=user,
            notes="Two nights for the fair." if Decimal(amount) > 1000 else None)
        return records.save(record, user=user)

    return make


@pytest.fixture
def publish():
    """publish(key, body) as bea would: save a draft and publish it; returns the Definition."""
    from metadata import services as metadata

    def do(key: str, body: dict):
        return metadata.save_and_publish("workflow", key, body)

    return do


@pytest.fixture(params=["bundle", "bpmn"])
def approval(request, scenario, publish) -> str:
    """The Expense approval as the bundle ships it, or drawn again from its BPMN XML export (issue 15:
    "the same tests pass on the re-imported definition"): the second publishes the import as v2.
    (test_bpmn_designer runs the engine tests on a version saved through the designer.)"""
    from tests.workflows.bpmn_round_trip import through_bpmn

    if request.param == "bpmn":
        body = through_bpmn(approval_body(), key="expense_approval")
        assert publish("expense_approval", body).version == 2
    return request.param
