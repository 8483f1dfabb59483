"""Request rates per API key and per session user (AU-2), counted per tenant.

Cache keys name the tenant's schema themselves rather than trusting the cache's key
function to: user and key ids restart in each schema, so two tenants' user 1 must not
share a budget.
"""

from __future__ import annotations

from django.db import connection
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, status
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

from lowcode.apikeys.models import ApiKey
from lowcode.tenancy import quotas


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


class ApiCallsQuotaExceeded(exceptions.APIException):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "quota_exceeded"


class TenantApiCallsQuotaThrottle(BaseThrottle):
    """The tenant's `max_api_calls_per_day`: every API request of the tenant counts, whoever sends it."""

    def allow_request(self, request, view):
        quota = quotas.quota_registry.get("api_calls")
        maximum = quotas.limit(quota)
        if maximum is None:
            return True
        used = quota.count_call()
        if used > maximum:
            raise ApiCallsQuotaExceeded(_("The tenant's quota of %(quota)s is reached: %(usage)s of %(limit)s used.")
                                        % {"quota": quota.verbose_name, "usage": quota.display(maximum),
                                           "limit": quota.display(maximum)})
        return True
