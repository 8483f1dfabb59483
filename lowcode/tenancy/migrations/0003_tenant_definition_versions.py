from django.db import migrations, models


def entity_token_from_metadata_version(apps, schema_editor):
    """The one token every publish changed becomes the entity kind's: only entities had a runtime."""
    Tenant = apps.get_model("tenancy", "Tenant")
    for tenant in Tenant.objects.only("pk", "metadata_version"):
        Tenant.objects.filter(pk=tenant.pk).update(definition_versions={"entity": str(tenant.metadata_version)})


class Migration(migrations.Migration):

    dependencies = [
        ("tenancy", "0002_tenant_metadata_version"),
    ]

    operations = [
        migrations.AddField(
            model_name="tenant",
            name="definition_versions",
            field=models.JSONField(blank=True, default=dict, editable=False, verbose_name="definition versions"),
        ),
        migrations.RunPython(entity_token_from_metadata_version, migrations.RunPython.noop, elidable=True),
        migrations.RemoveField(
            model_name="tenant",
            name="metadata_version",
        ),
    ]
