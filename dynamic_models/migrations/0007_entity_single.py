from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("dynamic_models", "0006_auto_number_counters"),
    ]

    operations = [
        migrations.AddField(
            model_name="entity",
            name="single",
            field=models.BooleanField(default=False, help_text="Holds exactly one record, such as a company's settings: lists open it, and there is no second.", verbose_name="settings (one record)"),
        ),
    ]
