import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from observers.models import Observatory


class Command(BaseCommand):
    help = "Store an existing legacy hashtag unchanged for an observatory (read from stdin if '-')."

    def add_arguments(self, parser):
        parser.add_argument("prefix")
        parser.add_argument("hashtag", help="The legacy hashtag, or - to read it from standard input")

    def handle(self, *args, **opts):
        observatory = Observatory.objects.filter(prefix=opts["prefix"]).first()
        if observatory is None:
            raise CommandError(f"No observatory with prefix {opts['prefix']!r}.")
        clear = sys.stdin.readline() if opts["hashtag"] == "-" else opts["hashtag"]
        try:
            observatory.import_hashtag(clear)
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from error
        except IntegrityError as error:
            raise CommandError("This hashtag is stored already.") from error
        self.stdout.write(f"Imported a legacy hashtag for {observatory.name}.")
