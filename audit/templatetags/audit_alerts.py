"""`{% load audit_alerts %}{% audit_alerts %}`: the banner of unacknowledged alerts (AD-5).

Put it in the admin's base template (``admin/base_site.html``), for example in its
``messages`` block: ``{% block messages %}{% audit_alerts %}{{ block.super }}{% endblock %}``.
"""

from django import template
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse

from audit import services

register = template.Library()

SHOWN = 3


@register.simple_tag(takes_context=True)
def audit_alerts(context) -> str:
    """Render the banner for staff allowed to see alerts, in a tenant's schema; else nothing."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_active or not user.is_staff or not services.is_tenant_schema() \
            or not user.has_perm("audit.view_alert"):
        return ""
    alerts = list(services.unacknowledged_alerts()[:SHOWN + 1])
    if not alerts:
        return ""
    count = len(alerts) if len(alerts) <= SHOWN else services.unacknowledged_alerts().count()
    try:
        url = reverse("admin:audit_alert_changelist") + "?acknowledged_at__isempty=1"
    except NoReverseMatch:
        return ""
    return render_to_string("audit/alerts_banner.html", {"alerts": alerts[:SHOWN], "count": count, "url": url},
                            request=request)
