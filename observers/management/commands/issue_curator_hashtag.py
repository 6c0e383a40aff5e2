from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from gsafollowup.errors import DomainError
from observers.services import issue_curator_hashtag


class Command(BaseCommand):
    help = (
        "Issue a hashtag for a curator (staff) account, e.g. for a TOM system that registers "
        "instruments with POST /cgi/newuser; printed alone on the last line."
    )

    def add_arguments(self, parser):
        parser.add_argument("username", help="An active staff account (createsuperuser makes one)")
        parser.add_argument(
            "--prefix", default=None, help="Prefix of the curator's hashtags (default: from the user name)"
        )

    def handle(self, *args, **opts):
        user = get_user_model().objects.filter(username=opts["username"]).first()
        if user is None:
            raise CommandError(f"No account {opts['username']!r}.")
        try:
            hashtag = issue_curator_hashtag(user, opts["prefix"])
        except DomainError as error:
            raise CommandError(error.message) from error
        self.stdout.write(f"A curator hashtag for {user.get_username()}:")
        self.stdout.write(hashtag)
