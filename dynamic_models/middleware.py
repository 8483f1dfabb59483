from dynamic_models import runtime


class TenantURLConfMiddleware:
    """Serve each tenant with the URLconf of its current snapshot (admin and API of its entities).

    After TenantMainMiddleware: the tenant row it loaded carries the metadata token, so a
    publish in another process shows on the next request here without a query.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        tenant = getattr(request, "tenant", None)
        if tenant is not None and not tenant.is_public and not tenant.is_suspended:
            request.urlconf = runtime.current().urlconf
        return self.get_response(request)
