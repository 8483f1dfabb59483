import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("tenancy", "0004_tenant_allowed_upload_types_tenant_max_upload_bytes"),
    ]

    operations = [
        migrations.AddField(
            model_name="tenant",
            name="phone_region",
            field=models.CharField(blank=True, default="", help_text="Country (ISO 3166 code, such as US) of phone numbers entered without a country code.", max_length=2, validators=[django.core.validators.RegexValidator("^[A-Z]{2}$")], verbose_name="phone region"),
        ),
    ]
