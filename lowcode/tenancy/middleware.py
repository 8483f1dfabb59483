from django.http import JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django_tenants.middleware.main import TenantMainMiddleware

from lowcode.tenancy import domains


def wants_json(request) -> bool:
    accept = request.headers.get("Accept", "")
    return request.path.startswith("/api/") or (
        "application/json" in accept and "text/html" not in accept
    )


class CachedTenantMainMiddleware(TenantMainMiddleware):
    """django-tenants' middleware reading the tenant of a host name from the process's cache,
    checked against the shared token on each request (tenancy.domains), not from the database."""

    def get_tenant(self, domain_model, hostname):
        return domains.tenant_for_host(hostname)


class SuspendedTenantMiddleware:
    """Answer 403 to every request of a suspended tenant; its data is kept as it is."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        tenant = getattr(request, "tenant", None)
        if tenant is not None and tenant.is_suspended:
            message = _("This workspace is suspended. Its data is kept; ask your provider to resume it.")
            if wants_json(request):
                return JsonResponse({"code": "tenant_suspended", "detail": message}, status=403)
            return render(request, "tenancy/suspended.html", {"message": message, "tenant": tenant},
                          status=403)
        return self.get_response(request)
