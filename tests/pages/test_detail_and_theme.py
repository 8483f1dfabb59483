"""The detail page's related records and files, cursor pages of large tables, and the theme set in
the tenant's admin (logo through the files app)."""

from __future__ import annotations

import io
import re

from PIL import Image

from dynamic_models import runtime
from pages import queries
from tests.pages.test_query_counts import add_expenses
from tests.scenario import client_for, expenses_of


def test_project_page_lists_only_the_related_expenses_in_scope(people):
    project = runtime.get_model("project").objects.first()
    add_expenses(people["alice"], project, 2)
    add_expenses(people["bob"], project, 1)
    html = client_for(people["alice"], key=False).get(f"/data/project/{project.pk}/").content.decode()
    related = html.split('aria-label="Expenses', 1)[1].split("</section>", 1)[0]
    for record in runtime.get_model("expense").objects.filter(project_id=project.pk):
        shown = f'href="/data/expense/{record.pk}/"' in related
        assert shown == (record.submitted_by_id == people["alice"].pk)


def test_receipts_show_with_their_stable_links(people):
    record = runtime.get_model("expense").objects.exclude(receipt=None).first()
    owner = next(user for user in people.values() if user.pk == record.submitted_by_id)
    client = client_for(owner, key=False)
    html = client.get(f"/data/expense/{record.pk}/").content.decode()
    link = re.search(rf'href="(/files/open/record/expense/{record.pk}/receipt/[^"]+)"', html).group(1)
    assert client.get(link).status_code == 302
    assert client_for(people["frank"], key=False).get(link).status_code == 302


def test_large_tables_page_by_cursor(people, monkeypatch):
    monkeypatch.setattr(queries, "LARGE_TABLE_ROWS", -1)
    project = runtime.get_model("project").objects.first()
    add_expenses(people["alice"], project, queries.PER_PAGE + 5)
    client = client_for(people["frank"], key=False)
    first = client.get("/data/expense/?sort=amount").content.decode()
    assert "records</p>" not in first  # No count.
    next_url = re.search(r'href="(\?[^"]*cursor=[^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    second = client.get(f"/data/expense/{next_url}")
    assert second.status_code == 200
    total = runtime.get_model("expense").objects.count()
    seen = {pk for html in (first, second.content.decode()) for pk in re.findall(r'href="/data/expense/(\d+)/"', html)}
    assert len(seen) == total
    assert client.get("/data/expense/?cursor=garbage").status_code == 404


def png(colour="red") -> io.BytesIO:
    data = io.BytesIO()
    Image.new("RGB", (40, 20), colour).save(data, "PNG")
    data.seek(0)
    data.name = "logo.png"
    return data


def test_theme_is_set_in_the_tenant_admin_with_a_logo(people, make_user, acme):
    admin = client_for(make_user(acme, "admin", is_staff=True, is_superuser=True), key=False)
    response = admin.post("/admin/pages/theme/add/", {"brand_colour": "#123456", "mode": "light",
                                                      "logo_upload": png()})
    assert response.status_code == 302, response.content.decode()[:3000]
    alice = client_for(people["alice"], key=False)
    html = alice.get("/").content.decode()
    assert "--brand: #123456" in html and 'data-theme="light"' in html
    logo = re.search(r'<img src="(/files/open/theme/[^"]+)"', html).group(1)
    assert alice.get(logo).status_code == 302
    from pages.models import Theme

    refused = admin.post(f"/admin/pages/theme/{Theme.objects.get().pk}/change/", {"brand_colour": "red", "mode": "dark"})
    assert refused.status_code == 200 and "#rrggbb" in refused.content.decode()
    assert admin.get("/admin/pages/theme/add/").status_code == 403  # One theme per tenant.


def test_members_see_the_menu_of_entities_they_may_view_only(people, make_user, acme):
    html = client_for(make_user(acme, "nobody"), key=False).get("/").content.decode()
    assert "/data/expense/" not in html
    assert "Ask your administrator for access" in html
    assert "/data/expense/" in client_for(people["alice"], key=False).get("/").content.decode()
    assert expenses_of(people["alice"]).exists()
