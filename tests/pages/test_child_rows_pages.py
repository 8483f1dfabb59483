"""A record's ordered child rows (issue 17) on its end-user pages and the admin's drag handles:
in order, under the child entity's scope and column rules; handles only for who may change them."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client

from dynamic_models import runtime, services
from rbac import services as rbac
from tests.dynamic_models.test_child_rows import CHILD_OF, CLAIM, LINE, body


@pytest.fixture
def trip(acme):
    """A claim with three lines stored out of their id order: Hotel (2), Train (1), Taxi (3)."""
    connection.set_tenant(acme)
    services.publish_body(body("claim", CLAIM, display_field="title"))
    services.publish_body(body("claim_line", LINE, child_of=CHILD_OF, display_field="description"))
    claim, line = runtime.get_model("claim"), runtime.get_model("claim_line")
    record = claim.objects.create(title="Trip")
    for position, description, amount in [(2, "Hotel", "90"), (1, "Train", "40"), (3, "Taxi", "150")]:
        line.objects.create(claim=record, position=position, description=description, amount=amount)
    return record


def client_of(user) -> Client:
    client = Client(HTTP_HOST="acme.localhost")
    client.force_login(user)
    return client


@pytest.fixture
def frank(acme, make_user, trip):
    user = make_user(acme, "frank", is_superuser=True, is_staff=True)
    connection.set_tenant(acme)
    return client_of(user)


@pytest.fixture
def clerk(acme, make_user, trip):
    """Staff who may change claims but only read their lines, those under 100, without the amount."""
    user = make_user(acme, "clerk", is_staff=True)
    connection.set_tenant(acme)
    role = rbac.create_role("clerk", grants=[Permission.objects.get(codename=name) for name in (
        "view_claim", "change_claim", "view_claim_line")])
    rbac.add_scope(role, "claim", "all")
    rbac.add_scope(role, "claim_line", "expression", expression="amount < 100")
    rbac.set_column_rule(role, "claim_line", "amount", "hidden")
    rbac.assign_role(user, role)
    return client_of(user)


def child_section(html: str) -> str:
    return html.split('data-child-rows="claim_line"', 1)[1].split("</section>", 1)[0]


def shown_lines(html: str) -> list[str]:
    return re.findall(r"<td>(Train|Hotel|Taxi)</td>", child_section(html))


def test_detail_page_shows_the_rows_in_order_once(frank, trip):
    html = frank.get(f"/data/claim/{trip.pk}/").content.decode()
    assert shown_lines(html) == ["Train", "Hotel", "Taxi"]
    section = child_section(html)
    assert section.index("Position") < section.index("Description") < section.index("Amount")
    assert "90.00" in section or "90" in section
    assert html.count('data-child-rows="claim_line"') == 1 and "(Claim)</span>" not in html  # Not again as related.


def test_detail_page_follows_the_child_entitys_scope_and_column_rules(clerk, trip):
    html = clerk.get(f"/data/claim/{trip.pk}/").content.decode()
    assert shown_lines(html) == ["Train", "Hotel"]
    assert "Amount" not in child_section(html) and "90" not in child_section(html)


def test_edit_page_shows_the_rows_read_only_with_a_link_to_edit_them(frank, trip):
    html = frank.get(f"/data/claim/{trip.pk}/edit/").content.decode()
    assert shown_lines(html) == ["Train", "Hotel", "Taxi"]
    section = child_section(html)
    assert "<input" not in section
    link = re.search(r'href="(/data/claim_line/\?[^"]+)">Edit the rows', section).group(1).replace("&amp;", "&")
    assert link == f"/data/claim_line/?claim={trip.pk}&sort=position"
    listed = frank.get(link).content.decode()
    assert [listed.index(name) for name in ("Train", "Hotel", "Taxi")] == sorted(
        listed.index(name) for name in ("Train", "Hotel", "Taxi"))


def test_edit_page_offers_no_link_to_who_may_only_read_the_rows(clerk, trip):
    section = child_section(clerk.get(f"/data/claim/{trip.pk}/edit/").content.decode())
    assert "Edit the rows" not in section and "Train" in section


def test_admin_handles_only_for_who_may_change_the_rows(frank, clerk, trip):
    url = f"/admin/data/claim/{trip.pk}/change/"
    page = frank.get(url).content.decode()
    assert 'data-order-field="position"' in page and "lowcode/records/child_rows.js" in page
    assert 'name="claim_line_claim_set-0-position"' in page  # Editable without JavaScript.
    read_only = clerk.get(url).content.decode()
    assert "lc-child-rows" in read_only and "data-order-field" not in read_only
    assert 'name="claim_line_claim_set-0-position"' not in read_only


def test_admin_shows_a_read_only_order_number_without_an_input(acme, make_user, trip):
    """Who may change the lines but not their order (a read-only rule) edits them without reordering:
    no order input (so no handle), and the save is not refused for a number they may not write."""
    user = make_user(acme, "keeper", is_staff=True)
    connection.set_tenant(acme)
    role = rbac.create_role("keeper", grants=[Permission.objects.get(codename=name) for name in (
        "view_claim", "change_claim", "view_claim_line", "change_claim_line")])
    rbac.add_scope(role, "claim", "all")
    rbac.add_scope(role, "claim_line", "all")
    rbac.add_scope(role, "claim_line", "all", action="change")
    rbac.set_column_rule(role, "claim_line", "position", "read_only")
    rbac.assign_role(user, role)
    keeper = client_of(user)
    url = f"/admin/data/claim/{trip.pk}/change/"
    page = keeper.get(url).content.decode()
    assert 'name="claim_line_claim_set-0-description"' in page
    assert 'name="claim_line_claim_set-0-position"' not in page
    line = runtime.get_model("claim_line")
    train, hotel, taxi = line.objects.order_by("position")
    prefix = "claim_line_claim_set"
    data = {"title": "Trip", f"{prefix}-TOTAL_FORMS": 3, f"{prefix}-INITIAL_FORMS": 3,
            f"{prefix}-MIN_NUM_FORMS": 0, f"{prefix}-MAX_NUM_FORMS": 1000}
    for index, row in enumerate([train, hotel, taxi]):
        data.update({f"{prefix}-{index}-id": row.pk, f"{prefix}-{index}-claim": trip.pk,
                     f"{prefix}-{index}-description": row.description.upper(), f"{prefix}-{index}-amount": row.amount,
                     f"{prefix}-{index}-position": 3 - index})  # Ignored: not a field of their form.
    assert keeper.post(url, data).status_code == 302
    assert list(line.objects.order_by("position").values_list("description", flat=True)) == ["TRAIN", "HOTEL", "TAXI"]
