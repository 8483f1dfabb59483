"""The Celery app. Tasks carry the schema of the tenant that queued them."""

import os

from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lowcode.settings")

app = CeleryApp("lowcode")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
