"""Called by django-tenants on every tenant switch (EXTRA_SET_TENANT_METHOD_PATH)."""

import sys


def on_set_tenant(connection, tenant) -> None:
    """Forget per-process caches keyed without the schema (django-tenants clears ContentType's).

    django-guardian caches content types by (app_label, codename): in a second tenant the ids
    differ. Looked up in sys.modules, as importing guardian here would be circular.
    """
    shortcuts = sys.modules.get("guardian.shortcuts")
    if shortcuts is not None:
        shortcuts.clear_ct_cache()
