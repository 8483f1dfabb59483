"""Create the built-in roles in each tenant schema (django-tenants runs this per schema).

tenant_admin, builder (designer.access and the permissions of the metadata and
dynamic_models models, created here first: Django makes permissions only after all
migrations), member (api.access) and guest (nothing). rbac.services.ensure_builtin_roles()
does the same with the current models, and after every migrate (post_migrate) the roles'
Django groups are synced: the tenant admin's group gets every permission there is by then.
"""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations

BUILTIN = [
    ("tenant_admin", "Tenant admin", ["designer.access", "pages.page.view", "pages.menu.view", "pages.button.use",
                                      "workflows.process.start", "workflows.task.act", "plugins.manage", "api.access",
                                      "audit.view", "rbac.manage"], []),
    ("builder", "Builder", ["designer.access"], ["metadata", "dynamic_models"]),
    ("member", "Member", ["api.access"], []),
    ("guest", "Guest", [], []),
]


def create_builtin_roles(apps, schema_editor):
    Role = apps.get_model("rbac", "Role")
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    using = schema_editor.connection.alias
    for label in ("metadata", "dynamic_models"):
        create_permissions(global_apps.get_app_config(label), verbosity=0, using=using, apps=apps)
    for key, name, operations, app_labels in BUILTIN:
        role, created = Role.objects.get_or_create(key=key, defaults={"name": name, "operations": operations,
                                                                      "builtin": True})
        if created and app_labels:
            role.permissions.add(*Permission.objects.filter(content_type__app_label__in=app_labels))
        if role.group_id is None:
            role.group, _created = Group.objects.get_or_create(name=f"role:{key}")
            role.save(update_fields=["group"])


class Migration(migrations.Migration):
    dependencies = [
        ("rbac", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("metadata", "0001_initial"),
        ("dynamic_models", "0003_import_job"),
    ]

    operations = [
        migrations.RunPython(create_builtin_roles, migrations.RunPython.noop),
    ]
