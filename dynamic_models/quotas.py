"""The records quota (Tenant.max_records): live records of every published entity of the tenant."""

from django.db import connection
from django.utils.translation import gettext_lazy as _

from dynamic_models import runtime
from lowcode.tenancy.quotas import Quota


class RecordsQuota(Quota):
    type = "records"
    limit_field = "max_records"
    verbose_name = _("records")

    def usage(self) -> int:
        tables = [model._meta.db_table for model in runtime.current().get_models()]
        if not tables:
            return 0
        quote = connection.ops.quote_name
        # One statement; exact, so it is only run for tenants with a limit (see quotas.check).
        counts = " + ".join(f"(SELECT count(*) FROM {quote(table)} WHERE deleted_at IS NULL)" for table in tables)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {counts}")
            return cursor.fetchone()[0]
