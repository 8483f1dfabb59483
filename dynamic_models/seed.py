"""Demo data of the reference scenario (scenario.md), loaded by `lowcode seed_demo` and `lowcode up`.

acme gets the bundle examples/expenses.json (`project`, `expense`), globex its own, different
`expense` (examples/globex_expenses.json); both get a few records. acme also gets the scenario's
people (alice, bob, mia, frank, bea), departments and roles, and the expenses are submitted by
alice and bob through the audited record services; three of them have a receipt (drawn here). Running it again changes
nothing: entities already published are kept as they are (a builder may have evolved them),
and records are only added to empty tables of entities still shaped as in the bundle.
"""

from __future__ import annotations

import datetime
import io
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import get_tenant_model, tenant_context

from dynamic_models import file_fields, records, runtime, validation
from files import services as files
from metadata import services as metadata
from metadata.bundles import Action, import_bundle, load_bundle

EXAMPLES_DIR = Path(settings.BASE_DIR) / "examples"
#: Kinds whose definitions name the demo people (roles, departments): imported after them.
PEOPLE_KINDS = ("workflow",)


@dataclass
class SeedResult:
    """What seeding one tenant did."""

    tenant: str
    #: "kind key" of the definitions imported now.
    imported: list[str] = field(default_factory=list)
    #: Definitions published already, but not as in the bundle: left alone, no records added.
    changed: list[str] = field(default_factory=list)
    #: Records created, by entity key.
    records: dict[str, int] = field(default_factory=dict)
    #: (user name, role, password) of the demo people created now; passwords are shown this once.
    people: list[tuple[str, str, str]] = field(default_factory=list)


# The scenario's people (scenario.md): user name, role, department, whether they manage it.
ACME_PEOPLE = [
    ("alice", "member", "Sales", False),
    ("bob", "member", "Sales", False),
    ("mia", "manager", "Sales", True),
    ("frank", "finance", "Finance", True),
    ("bea", "builder", None, False),
]


def _acme_people() -> list[tuple[str, str, str]]:
    """Departments, roles with their scopes and column rules, and the people who hold them.

    Only what is missing is created, so a tenant admin's later changes stay.
    """
    from rbac import services as rbac
    from rbac.models import Department, Role

    def permissions(*codenames):
        return [f"data.{codename}" for codename in codenames]

    roles = {role.key: role for role in Role.objects.all()}
    if not roles[Role.MEMBER].scopes.filter(entity_key="expense").exists():
        member = roles[Role.MEMBER]
        # Members see and edit their own expenses, edit them while draft, and read projects.
        rbac.grant(member, *permissions("view_expense", "add_expense", "change_expense", "view_project"))
        rbac.add_scope(member, "expense", "own", owner_field="submitted_by")
        rbac.add_scope(member, "expense", "own", action="change", owner_field="submitted_by",
                       expression="status == 'draft'")
        rbac.add_scope(member, "project", "all")
        rbac.set_column_rule(member, "expense", "iban", "masked")
        rbac.set_column_rule(member, "expense", "status", "read_only")
    if "manager" not in roles:
        roles["manager"] = rbac.create_role("manager", "Manager", parents=[roles[Role.MEMBER]],
                                            description="Sees the expenses of the departments they manage.")
        rbac.add_scope(roles["manager"], "expense", "department", owner_field="submitted_by")
    if "finance" not in roles:
        roles["finance"] = rbac.create_role("finance", "Finance", grants=permissions(
            "view_expense", "change_expense", "export_expense", "view_project", "export_project"),
            description="Sees all expenses with their IBAN, and exports them.")
        rbac.add_scope(roles["finance"], "expense", "all")
        rbac.add_scope(roles["finance"], "project", "all")
    departments = {}
    for name in ("Sales", "Finance"):
        departments[name] = Department.objects.filter(name=name).first() or rbac.create_department(name)
    users, created = get_user_model().objects, []
    for username, role_key, department, manages in ACME_PEOPLE:
        if users.filter(username=username).exists():
            continue
        password = secrets.token_urlsafe(9)
        user = users.create_user(username, f"{username}@acme.example", password, is_staff=True,
                                 first_name=username.title())
        rbac.assign_role(user, roles[role_key])
        if department:
            rbac.add_member(departments[department], user, manager=manages)
        created.append((username, role_key, password))
    return created


def _acme_records() -> dict[str, int]:
    Project, Expense = runtime.get_model("project"), runtime.get_model("expense")
    created = {}
    if not Project.all_objects.exists():
        for name, code, budget in [("Apollo", "APO-001", "120000.00"), ("Borealis", "BOR-002", "45000.00"),
                                   ("Cygnus", "CYG-003", "8000.00")]:
            _create(Project, name=name, code=code, budget=Decimal(budget))
        created["project"] = 3
    if not Expense.all_objects.exists():
        projects = {project.code: project for project in Project.objects.all()}
        today = timezone.localdate()
        people = {user.username: user for user in get_user_model().objects.filter(username__in=["alice", "bob", "frank"])}
        rows = [
            ("Train to Shanghai, client visit", "553.50", "CNY", 3, "travel", "APO-001", "submitted",
             "DE89370400440532013000", "", "alice"),
            ("Team lunch with the customer", "420.00", "CNY", 1, "meals", "APO-001", "draft", "", "", "alice"),
            ("Docking station", "1899.00", "CNY", 12, "equipment", "BOR-002", "approved", "",
             "Replaces the broken one of the meeting room.", "bob"),
            ("Flight Berlin - Beijing", "1240.00", "EUR", 20, "travel", "CYG-003", "submitted",
             "GB29NWBK60161331926819", "Economy class, booked three weeks ahead.", "bob"),
            ("Conference ticket", "799.00", "USD", 35, "other", "BOR-002", "approved", "", "", "alice"),
            ("Taxi to the airport", "86.00", "CNY", 6, "travel", None, "rejected", "", "No receipt.", "bob"),
            ("Client dinner in New York", "312.40", "USD", 2, "meals", "CYG-003", "draft", "", "", "bob"),
            ("27-inch monitor", "2150.00", "CNY", 9, "equipment", "APO-001", "submitted",
             "FR1420041010050500013M02606", "", "alice"),
        ]
        for title, amount, currency, days_ago, category, project, status, iban, notes, submitter in rows:
            user = people.get(submitter)
            record = _create(Expense, user=user, title=title, amount=Decimal(amount), currency=currency,
                             spent_on=today - datetime.timedelta(days=days_ago), category=category,
                             project=projects.get(project), notes=notes or None, submitted_by=user)
            if status != record.status or iban:
                # A member may write neither the status nor (masked for them) the IBAN: finance does.
                record.status, record.iban = status, iban or None
                records.save(record, user=people.get("frank"))
        created["expense"] = len(rows)
    if "receipt" in file_fields.file_specs(Expense) and not Expense.all_objects.filter(receipt__isnull=False).exists():
        _acme_receipts(Expense)
    return created


#: Expenses that get a sample receipt: title -> file name (its type follows the extension).
RECEIPTS = {"Train to Shanghai, client visit": "train-ticket.jpg", "Docking station": "docking-station-invoice.pdf",
            "Flight Berlin - Beijing": "boarding-pass.png"}


def _receipt_bytes(name: str, title: str, amount: str) -> bytes:
    """A small receipt drawn with Pillow: the expense's title and amount on a slip of paper."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (360, 480), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle([10, 10, 349, 469], outline="#888888", width=2)
    for line, text in enumerate(["RECEIPT", title, "", f"Total: {amount}", "Thank you!"]):
        draw.text((30, 40 + line * 40), text, fill="black")
    buffer = io.BytesIO()
    image.save(buffer, {"jpg": "JPEG", "png": "PNG", "pdf": "PDF"}[name.rsplit(".", 1)[-1]])
    return buffer.getvalue()


def _acme_receipts(Expense) -> None:
    """Attach the sample receipts, each uploaded by the expense's submitter."""
    for expense in Expense.objects.filter(title__in=RECEIPTS, receipt__isnull=True).select_related("submitted_by"):
        name = RECEIPTS[expense.title]
        content = ContentFile(_receipt_bytes(name, expense.title, f"{expense.amount} {expense.currency}"), name=name)
        stored = files.upload(content, name=name, user=expense.submitted_by)
        records.save(expense, user=None, files={"receipt": [stored]})  # The system attaches it: any status.


def _globex_records() -> dict[str, int]:
    Expense = runtime.get_model("expense")
    if Expense.all_objects.exists():
        return {}
    today = timezone.localdate()
    rows = [
        ("Server rack rails", "310.00", "ops", 4, True, "GX-20931"),
        ("Prototype sensors", "1275.90", "rnd", 10, False, "GX-20977"),
        ("Trade fair booth", "4800.00", "sales", 21, True, "GX-21002"),
        ("Courier to the lab", "42.50", "rnd", 1, False, None),
    ]
    for title, amount, cost_center, days_ago, reimbursed, receipt_no in rows:
        _create(Expense, title=title, amount=Decimal(amount), cost_center=cost_center,
                incurred_on=today - datetime.timedelta(days=days_ago), reimbursed=reimbursed, receipt_no=receipt_no)
    return {"expense": len(rows)}


DEMO: dict[str, tuple[str, Callable[[], dict[str, int]]]] = {
    "acme": ("expenses.json", _acme_records),
    "globex": ("globex_expenses.json", _globex_records),
}


def _create(model, user=None, **values):
    """Create a record as `user` through the record services: validated, checked and audited."""
    record = model(**values)
    # The auto number comes from the database; no form would validate it either.
    validation.clean_record(record, exclude={f.name for f in model._meta.fields if not f.editable})
    return records.save(record, user=user)


def seed_demo() -> list[SeedResult]:
    """Load the scenario's entities and demo records into acme and globex; safe to run again.

    Tenants that do not exist are skipped. Each tenant is seeded in one transaction.
    """
    results = []
    for tenant in get_tenant_model().objects.filter(schema_name__in=DEMO).order_by("schema_name"):
        bundle_name, make_records = DEMO[tenant.schema_name]
        bundle = load_bundle((EXAMPLES_DIR / bundle_name).read_bytes())
        with tenant_context(tenant):
            results.append(_seed_tenant(tenant.schema_name, bundle, make_records))
    return results


def _import(bundle: dict, entries: list[dict]) -> list[str]:
    """Import `entries` of `bundle`; return "kind key" of those created."""
    if not entries:
        return []
    report = import_bundle({**bundle, "definitions": entries}, dry_run=False)
    return [f"{row['kind']} {row['key']}" for row in report if row["action"] == Action.CREATE]


@transaction.atomic
def _seed_tenant(schema_name: str, bundle: dict, make_records: Callable[[], dict[str, int]]) -> SeedResult:
    result = SeedResult(schema_name)
    missing = []
    for entry in bundle["definitions"]:
        published = metadata.get_published(entry["kind"], entry["key"])
        if published is None:
            missing.append(entry)
        elif published.checksum != metadata.checksum(entry["body"]):
            result.changed.append(f"{entry['kind']} {entry['key']}")
    # Definitions naming people (workflows assign roles and departments) come once the people exist.
    result.imported = _import(bundle, [entry for entry in missing if entry["kind"] not in PEOPLE_KINDS])
    if schema_name == "acme" and "expense" in runtime.published_entity_bodies():
        result.people = _acme_people()
    result.imported += _import(bundle, [entry for entry in missing if entry["kind"] in PEOPLE_KINDS])
    if not result.changed:
        result.records = make_records()
    return result
