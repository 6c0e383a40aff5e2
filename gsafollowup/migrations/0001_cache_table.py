"""The cache table (hashtag lock-out, API throttles) is part of the schema: ``migrate`` alone makes it.

Before, a server set up with ``manage.py migrate`` but without ``createcachetable`` answered
every upload and new event with 503. createcachetable does nothing when the table exists.
"""

from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps, schema_editor):
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    operations = [migrations.RunPython(create_cache_table, migrations.RunPython.noop)]
