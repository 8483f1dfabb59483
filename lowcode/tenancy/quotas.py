"""The tenant's quotas: users, records, storage, API calls per day (PF-3).

Each quota names the Tenant field holding its limit (empty: unlimited) and counts its usage in
the connection's tenant. The app that owns what is counted registers the quota (records by
dynamic_models, storage by files); the services that add call `check()` before they do, so
admin, API, imports and the CLI all meet the same limit. A tenant without a limit pays nothing.
"""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _
from django_tenants.utils import tenant_context

from lowcode.registry import Instance, Registry


class Quota(Instance):
    """One quota: its limit is `Tenant.<limit_field>`, its usage counted by `usage()`."""

    limit_field = ""
    verbose_name = ""

    def usage(self) -> int:
        """What the connection's tenant uses now."""
        raise NotImplementedError

    def display(self, amount: int) -> str:
        return number_format(amount, force_grouping=True)


quota_registry: Registry[Quota] = Registry("quota")


class QuotaExceeded(ValidationError):
    """An addition would pass one of the tenant's quotas; the message names it and its usage."""

    def __init__(self, quota: Quota, *, usage: int, limit: int):
        super().__init__(
            _("The tenant's quota of %(quota)s is reached: %(usage)s of %(limit)s used."),
            code="quota_exceeded",
            params={"quota": quota.verbose_name, "usage": quota.display(usage), "limit": quota.display(limit)},
        )
        self.quota, self.usage, self.limit = quota, usage, limit


_reserved: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar("quota_reserved", default=frozenset())


def limit(quota: Quota) -> int | None:
    tenant = getattr(connection, "tenant", None)
    if tenant is None or getattr(tenant, "is_public", True):
        return None
    return getattr(tenant, quota.limit_field)


def check(quota_type: str, *, adding: int = 1) -> None:
    """Refuse to add `adding` units of the quota when that would pass the tenant's limit.

    Call it inside the transaction that adds: with a limit set, concurrent additions to the same
    quota of the tenant wait for each other (an advisory lock until the transaction ends), so
    two of them cannot both take the last unit.

    :raises QuotaExceeded: the usage plus `adding` would be over the limit.
    """
    quota = quota_registry.get(quota_type)
    maximum = limit(quota)
    if maximum is None or quota_type in _reserved.get():
        return
    if connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"quota:{connection.schema_name}:{quota_type}"])
    used = quota.usage()
    if used + adding > maximum:
        raise QuotaExceeded(quota, usage=used, limit=maximum)


@contextlib.contextmanager
def reserved(quota_type: str, amount: int):
    """Check `amount` units once, then let the block add them without a check per unit (an import)."""
    check(quota_type, adding=amount)
    token = _reserved.set(_reserved.get() | {quota_type})
    try:
        yield
    finally:
        _reserved.reset(token)


@dataclass(frozen=True)
class QuotaUsage:
    quota: Quota
    usage: int
    limit: int | None

    def __str__(self):
        if self.limit is None:
            return _("%(usage)s (unlimited)") % {"usage": self.quota.display(self.usage)}
        return _("%(usage)s of %(limit)s") % {"usage": self.quota.display(self.usage),
                                               "limit": self.quota.display(self.limit)}


def usage_report(tenant) -> list[QuotaUsage]:
    """Each quota of `tenant` with its usage and limit, for the platform and tenant admins."""
    with tenant_context(tenant):
        return [QuotaUsage(quota, quota.usage(), getattr(tenant, quota.limit_field))
                for quota in quota_registry.get_all()]


class UsersQuota(Quota):
    type = "users"
    limit_field = "max_users"
    verbose_name = _("users")

    def usage(self) -> int:
        return get_user_model().objects.filter(is_active=True).count()


def check_user_quota(sender, instance, raw=False, **kwargs) -> None:
    """pre_save of the user model: a new active user, or one made active again, counts."""
    if raw or not instance.is_active or limit(quota_registry.get("users")) is None:
        return
    if instance._state.adding or not type(instance).objects.filter(pk=instance.pk, is_active=True).exists():
        check("users")


class ApiCallsQuota(Quota):
    """API requests of the tenant today (server time), counted in the cache by the API's throttle."""

    type = "api_calls"
    limit_field = "max_api_calls_per_day"
    verbose_name = _("API calls per day")

    @staticmethod
    def cache_key() -> str:
        return f"quota:api_calls:{connection.schema_name}:{timezone.localdate().isoformat()}"

    def usage(self) -> int:
        return cache.get(self.cache_key(), 0)

    def count_call(self) -> int:
        """Count one API call of the connection's tenant; return today's count.

        One round trip: the day's counter is created (kept two days) and incremented in one
        pipeline. Integers are stored as such by Django's Redis cache, so `usage()` reads it back.
        """
        key = cache.make_and_validate_key(self.cache_key())
        pipeline = cache._cache.get_client(key, write=True).pipeline(transaction=False)
        pipeline.set(key, 0, ex=2 * 24 * 3600, nx=True)
        pipeline.incr(key)
        return pipeline.execute()[1]
