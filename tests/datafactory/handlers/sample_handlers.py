"""Handlers of the test modules (tests/datafactory/): this folder is put on the sandbox's sys.path."""


def add_expense(data, context):
    created = context.records.create("expense", {"title": data["title"], "amount": data["amount"],
                                                 "spent_on": "2026-11-02"})
    context.log(f"created #{created['id']}")
    return {"status": "ok", "data": {"id": created["id"], "amount": created["amount"]}, "message": "One expense."}


def read_iban(data, context):
    return [row["iban"] for row in context.records.list("expense")]


def spin(data, context):
    while True:
        pass


def environment(data, context):
    import os

    return os.environ["SECRET_KEY"]


def plain_value(data, context):
    return data["title"].upper()
