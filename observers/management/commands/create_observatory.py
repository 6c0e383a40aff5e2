from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from observers.services import create_observatory


class Command(BaseCommand):
    help = "Create an observatory and print its new hashtag alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--prefix", required=True, help="Hashtag prefix, e.g. SAAO1m")
        parser.add_argument("--lon", type=float, required=True, help="Longitude, degrees East-positive")
        parser.add_argument("--lat", type=float, required=True, help="Latitude, degrees")
        parser.add_argument("--altitude", type=float, default=None, help="Metres")
        parser.add_argument("--filters", default="", help="Comma-separated, e.g. V,R,I")
        parser.add_argument("--contact", default="")

    def handle(self, *args, **opts):
        filters = [f.strip() for f in opts["filters"].split(",") if f.strip()]
        try:
            observatory, hashtag = create_observatory(
                name=opts["name"],
                prefix=opts["prefix"],
                longitude=opts["lon"],
                latitude=opts["lat"],
                altitude=opts["altitude"],
                filters=filters,
                contact=opts["contact"],
            )
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from error
        except IntegrityError as error:
            raise CommandError("An observatory with this name or prefix exists already.") from error
        self.stdout.write(f"Created observatory {observatory.name} ({observatory.prefix}); its hashtag:")
        self.stdout.write(hashtag)
