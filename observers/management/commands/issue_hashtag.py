from django.core.management.base import BaseCommand, CommandError

from observers.models import Observatory


class Command(BaseCommand):
    help = "Issue a new hashtag for an existing observatory and print it alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("prefix")
        parser.add_argument("--label", default="issued by command")

    def handle(self, *args, **opts):
        observatory = Observatory.objects.filter(prefix=opts["prefix"]).first()
        if observatory is None:
            raise CommandError(f"No observatory with prefix {opts['prefix']!r}.")
        self.stdout.write(observatory.issue_hashtag(label=opts["label"]))
