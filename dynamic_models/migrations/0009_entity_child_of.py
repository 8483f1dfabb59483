from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("dynamic_models", "0008_auto_number_counter_table"),
    ]

    operations = [
        migrations.AddField(
            model_name="entity",
            name="child_of",
            field=models.JSONField(blank=True, default=dict, help_text='Ordered child rows edited inline in their parent, e.g. {"relation": "claim", "order_field": "position"}: a many-to-one relation to the parent and an integer field holding the order.', verbose_name="child of"),
        ),
    ]
