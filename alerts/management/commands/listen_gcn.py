"""manage.py listen_gcn: consume GCN notices (VOEvent XML) from the GCN Kafka stream with gcn-kafka.

Credentials come from the environment (GCN_KAFKA_CLIENT_ID, GCN_KAFKA_CLIENT_SECRET); topics from
GCN_KAFKA_TOPICS. Each packet goes through alerts.harvesting.harvest_gcn_packet, as a saved file
given to harvest_alerts gcn does. A long-running worker, not a periodic task.
"""

import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from gcn_kafka import Consumer

from alerts.harvesting import HarvestReport, harvest_gcn_packet


class Command(BaseCommand):
    help = "Listen to GCN notices over Kafka (credentials from the environment) and harvest each packet."

    def add_arguments(self, parser):
        parser.add_argument("--max-polls", type=int, default=0, help="stop after this many polls (0: never)")
        parser.add_argument("--timeout", type=float, default=5.0, help="seconds per poll")

    def handle(self, *args, **opts):
        # Read at start, so that a worker restarted with new credentials needs no settings reload.
        client_id = os.environ.get("GCN_KAFKA_CLIENT_ID") or settings.GCN_KAFKA_CLIENT_ID
        client_secret = os.environ.get("GCN_KAFKA_CLIENT_SECRET") or settings.GCN_KAFKA_CLIENT_SECRET
        if not client_id or not client_secret:
            raise CommandError("Set GCN_KAFKA_CLIENT_ID and GCN_KAFKA_CLIENT_SECRET (from gcn.nasa.gov).")
        consumer = Consumer(client_id=client_id, client_secret=client_secret)
        consumer.subscribe(settings.GCN_KAFKA_TOPICS)
        polls = 0
        try:
            while not opts["max_polls"] or polls < opts["max_polls"]:
                polls += 1
                for message in consumer.consume(timeout=opts["timeout"]):
                    if message.error():
                        self.stderr.write(f"kafka: {message.error()}")
                        continue
                    report = HarvestReport("gcn")
                    harvest_gcn_packet(message.value(), message.topic(), report)
                    for note in report.notes:
                        self.stdout.write(note)
                    for error in report.errors:
                        self.stderr.write(f"refused {error}")
                    if report.changed:
                        self.stdout.write(report.summary())
        finally:
            consumer.close()
