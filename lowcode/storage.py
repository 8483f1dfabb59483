"""File storage with every path under the current tenant's schema name (PF-3)."""

from django.db import connection
from storages.backends.s3 import S3Storage


class TenantS3Storage(S3Storage):
    """S3 (or MinIO) storage whose keys start with `<schema>/`, like TenantFileSystemStorage."""

    def _normalize_name(self, name):
        return super()._normalize_name(f"{connection.schema_name}/{name}")
