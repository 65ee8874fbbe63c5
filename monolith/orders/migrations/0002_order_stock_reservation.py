from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("orders", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="stock_reservation",
            field=models.CharField(blank=True, default="", max_length=128),
        ),
    ]
