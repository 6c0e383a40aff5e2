"""Alerts get the key under which IVORNs that read the same (case, look-alike letters) collide."""

from django.db import migrations, models

from alerts.ivorns import ivorn_key


def fill_keys(apps, schema_editor):
    Alert = apps.get_model("alerts", "Alert")
    alerts = list(Alert.objects.only("pk", "ivorn"))
    for alert in alerts:
        alert.ivorn_key = ivorn_key(alert.ivorn)
    Alert.objects.bulk_update(alerts, ["ivorn_key"], batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [("alerts", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="alert",
            name="ivorn_key",
            field=models.CharField(
                default="",
                editable=False,
                max_length=255,
                help_text="The IVORN as read: twins share it",
            ),
            preserve_default=False,
        ),
        migrations.RunPython(fill_keys, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="alert",
            name="ivorn_key",
            field=models.CharField(
                db_index=True, editable=False, max_length=255, help_text="The IVORN as read: twins share it"
            ),
        ),
    ]
