# One catalog may be stored once per band: observers force each band in turn on one frame.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('alerts', '0001_initial'),
        ('calibration', '0004_statistical_mag_err'),
        ('observers', '0001_initial'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='followuppoint',
            name='unique_catalog_per_alert',
        ),
        migrations.AddConstraint(
            model_name='followuppoint',
            constraint=models.UniqueConstraint(condition=models.Q(('hidden', False), ('imported', False)), fields=('alert', 'catalog_sha256', 'filter'), name='unique_catalog_band_per_alert'),
        ),
    ]
