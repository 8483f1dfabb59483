"""The handler of "Generate demo expenses": runs in the sandbox, with only the records API."""

import datetime
import random

TITLES = ["Train ticket", "Client dinner", "Taxi", "Hotel night", "Conference pass", "Monitor", "Office chair",
          "Team lunch", "Flight", "Software licence"]
CATEGORIES = ["travel", "meals", "equipment", "other"]
CURRENCIES = ["CNY", "USD", "EUR"]


def generate_expenses(data, context):
    members = context.departments.members(data["department"])
    if not members:
        return {"status": "error", "data": None, "message": "The department has no members."}
    first = datetime.date.fromisoformat(data["spent_from"])
    days = (datetime.date.fromisoformat(data["spent_until"]) - first).days
    chance = random.Random(f"{data['department']}:{data['spent_from']}:{data['count']}")  # noqa: S311 - demo data.
    created = []
    for number in range(data["count"]):
        person = members[number % len(members)]
        expense = context.records.create("expense", {
            "title": chance.choice(TITLES),
            "amount": f"{chance.randint(500, 150000) / 100:.2f}",
            "currency": chance.choice(CURRENCIES),
            "category": chance.choice(CATEGORIES),
            "spent_on": (first + datetime.timedelta(days=chance.randint(0, days))).isoformat(),
            "submitted_by": person["id"],
        })
        created.append(expense["id"])
    context.log(f"Created {len(created)} expenses for {len(members)} people.")
    return {"status": "ok", "data": {"created": len(created), "ids": created},
            "message": f"Created {len(created)} expenses."}
