"""Settings of benchmarks/api_overhead.py: the project's, plus the benchmark-only `static_expense` app.

- `benchmarks.static_expense` is a tenant app (its tables in each tenant's schema);
- its middleware, right after the tenant URLconf middleware, serves /api/v1/static/ in front of
  each snapshot's URLconf, so both APIs pass through the same middleware;
- throttling keeps its classes (both APIs pay for them) with rates that are never reached, per
  second so that the request history the throttle stores stays short;
- persistent database connections (no reconnection in the middle of a measurement).
"""

from lowcode.settings import *  # noqa: F403
from lowcode.settings import DATABASES, INSTALLED_APPS, MIDDLEWARE, REST_FRAMEWORK, TENANT_APPS

STATIC_EXPENSE_APP = "benchmarks.static_expense"

TENANT_APPS = [*TENANT_APPS, STATIC_EXPENSE_APP]
INSTALLED_APPS = [*INSTALLED_APPS, STATIC_EXPENSE_APP]

MIDDLEWARE = list(MIDDLEWARE)
MIDDLEWARE.insert(MIDDLEWARE.index("lowcode.site.TenantURLConfMiddleware") + 1,
                  "benchmarks.static_expense.middleware.StaticRoutesMiddleware")

REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"api_key": "1000000/s", "user": "1000000/s"}}

DATABASES["default"]["CONN_MAX_AGE"] = None
