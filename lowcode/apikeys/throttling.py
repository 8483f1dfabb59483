"""Request rates per API key and per session user (AU-2), counted per tenant.

Cache keys name the tenant's schema themselves rather than trusting the cache's key
function to: user and key ids restart in each schema, so two tenants' user 1 must not
share a budget.
"""

from __future__ import annotations

from django.db import connection
from rest_framework.throttling import SimpleRateThrottle

from lowcode.apikeys.models import ApiKey


class ApiKeyRateThrottle(SimpleRateThrottle):
    """`DEFAULT_THROTTLE_RATES["api_key"]` per key; other requests are not counted here."""

    scope = "api_key"

    def get_cache_key(self, request, view):
        if not isinstance(request.auth, ApiKey):
            return None
        return self.cache_format % {"scope": self.scope, "ident": f"{connection.schema_name}:{request.auth.pk}"}


class TenantUserRateThrottle(SimpleRateThrottle):
    """`DEFAULT_THROTTLE_RATES["user"]` per signed-in user; API-key requests have their own rate."""

    scope = "user"

    def get_cache_key(self, request, view):
        if isinstance(request.auth, ApiKey) or not request.user or not request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": f"{connection.schema_name}:{request.user.pk}"}
