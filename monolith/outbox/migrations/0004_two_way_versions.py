import django.utils.timezone
from django.db import migrations, models


def seen_is_version(apps, schema_editor):
    # every version held so far came from the other side
    apps.get_model("outbox", "EntityVersion").objects.update(seen=models.F("version"))


class Migration(migrations.Migration):

    dependencies = [
        ("outbox", "0003_inbox_state"),
    ]

    operations = [
        migrations.RenameModel("InboxState", "EntityVersion"),
        migrations.RemoveConstraint(model_name="entityversion", name="one_inbox_state"),
        migrations.AddConstraint(
            model_name="entityversion",
            constraint=models.UniqueConstraint(
                fields=("aggregate", "object_id"), name="one_entity_version"
            ),
        ),
        migrations.RenameField("entityversion", "applied_at", "updated_at"),
        migrations.AddField(
            model_name="entityversion", name="rank", field=models.IntegerField(default=0)
        ),
        migrations.AddField(
            model_name="entityversion", name="seen", field=models.BigIntegerField(default=0)
        ),
        migrations.RunPython(seen_is_version, migrations.RunPython.noop),
        migrations.AddField(
            model_name="outboxevent",
            name="stamp",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.CreateModel(
            name="SyncConflict",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("stream", models.CharField(max_length=64)),
                ("aggregate", models.CharField(max_length=100)),
                ("object_id", models.CharField(max_length=64)),
                ("lost", models.JSONField()),
                ("won", models.JSONField()),
                ("detected_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                "ordering": ["id"],
                "indexes": [models.Index(fields=["stream", "id"], name="conflict_stream")],
            },
        ),
    ]
