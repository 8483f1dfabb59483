"""Demo processes of the scenario's Expense approval, started by `lowcode seed_demo` in acme.

On the first seeding only (when the expenses were just created): a claim waiting for mia, one
waiting in finance's queue after mia's approval, one approved by mia and frank, and one mia
rejected, each decided through the same services people use.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django_tenants.utils import get_tenant_model, tenant_context
from viewflow.workflow.models import Process, Task

from workflows import flows, services

WORKFLOW = "expense_approval"
#: Expense title -> the decisions taken on it: (approver, outcome, comment) in order.
DEMO = {
    "Train to Shanghai, client visit": [],
    "Flight Berlin - Beijing": [("mia", "approved", "Client visit agreed in advance.")],
    "27-inch monitor": [("mia", "approved", "Needed for the new desk."), ("frank", "approved", "")],
    "Client dinner in New York": [("mia", "rejected", "Please attach the receipt and resubmit.")],
}


def start_demo_processes(results) -> dict[str, int]:
    """Start the demo processes in every freshly seeded tenant that publishes the workflow."""
    started = {}
    for result in results:
        if not result.records.get("expense"):
            continue
        with tenant_context(get_tenant_model().objects.get(schema_name=result.tenant)):
            if flows.published_flow(WORKFLOW) is not None and not Process.objects.exists():
                started[result.tenant] = _start_in_tenant()
    return started


@transaction.atomic
def _start_in_tenant() -> int:
    from dynamic_models import runtime

    users = {user.username: user for user in get_user_model().objects.all()}
    count = 0
    for expense in runtime.get_model("expense").objects.filter(title__in=DEMO).select_related("submitted_by"):
        process = services.start(WORKFLOW, expense, user=expense.submitted_by)
        for username, outcome, comment in DEMO[expense.title]:
            task = Task.objects.filter(process=process, flow_task_type="HUMAN", status__in=["NEW", "ASSIGNED"]).get()
            services.complete(task, user=users[username], outcome=outcome, comment=comment)
        count += 1
    return count
