"""Request rates per API key and per session user (AU-2), counted per tenant.

Cache keys name the tenant's schema themselves rather than trusting the cache's key
function to: user and key ids restart in each schema, so two tenants' user 1 must not
share a budget.
"""

from __future__ import annotations

import uuid

from django.core.cache import cache
from django.db import connection
from django.utils.translation import gettext_lazy as _
from redis.commands.core import Script
from rest_framework import exceptions, status
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

from lowcode.apikeys.models import ApiKey
from lowcode.tenancy import quotas

# DRF's sliding window in one round trip: the times of the requests of the last `duration` seconds
# in a sorted set. Returns {allowed, requests in the window, time of the oldest}.
SLIDING_WINDOW = Script(None, b"""
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
local count = redis.call('ZCARD', KEYS[1])
if count >= tonumber(ARGV[3]) then
    return {0, count, redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]}
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return {1, count + 1, ARGV[1]}
""")  # Bytes: no client is needed to hash them; each call names its client.


class RedisRateThrottle(SimpleRateThrottle):
    """SimpleRateThrottle's rule and answers, counted by one Lua script in Redis: one round trip
    per request instead of a read and a write of the whole history."""

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        allowed, self.count, oldest = SLIDING_WINDOW(
            keys=[self.key], args=[repr(self.now), self.duration, self.num_requests, uuid.uuid4().hex],
            client=cache._cache.get_client(self.key, write=True))
        self.oldest = float(oldest)
        return bool(allowed)

    def wait(self):
        remaining_duration = self.duration - (self.now - self.oldest)
        available_requests = self.num_requests - self.count + 1
        return remaining_duration / available_requests if available_requests > 0 else None


class ApiKeyRateThrottle(RedisRateThrottle):
    """`DEFAULT_THROTTLE_RATES["api_key"]` per key; other requests are not counted here."""

    scope = "api_key"

    def get_cache_key(self, request, view):
        if not isinstance(request.auth, ApiKey):
            return None
        return self.cache_format % {"scope": self.scope, "ident": f"{connection.schema_name}:{request.auth.pk}"}


class TenantUserRateThrottle(RedisRateThrottle):
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
