import time

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Run the input-layer properties (catalog reader, upload and new-event serializers and forms, "
        "list parameters) on generated inputs for a while; print inputs tried and any minimal failure."
    )

    def add_arguments(self, parser):
        budget = parser.add_mutually_exclusive_group()
        budget.add_argument("--seconds", type=float, help="run for about this long (default 60)")
        budget.add_argument("--examples", type=int, help="run about this many inputs in all")
        parser.add_argument("--batch", type=int, default=200, help="inputs per property before switching")
        parser.add_argument("--only", default="", help="only properties whose name contains this text")

    def handle(self, *args, **opts):
        try:
            from gsafollowup.fuzzing import fuzz
        except ImportError as error:
            raise CommandError(
                f"{error}: install the test tools (pip install -r requirements-dev.txt)"
            ) from None
        seconds = opts["seconds"] if opts["seconds"] is not None else (None if opts["examples"] else 60.0)
        started = time.monotonic()
        outcomes = fuzz(seconds=seconds, examples=opts["examples"], batch=opts["batch"], only=opts["only"])
        if not outcomes:
            raise CommandError(f"no property matches --only {opts['only']!r}")
        elapsed = time.monotonic() - started
        width = max(len(o.name) for o in outcomes)
        for outcome in outcomes:
            verdict = "FAILED" if outcome.failure else "nothing found"
            self.stdout.write(f"{outcome.name:<{width}}  {outcome.tried:>9,} inputs  {verdict}")
        total = sum(o.tried for o in outcomes)
        failed = [o for o in outcomes if o.failure]
        self.stdout.write(
            f"{total:,} inputs tried in {elapsed:.0f} s over {len(outcomes)} properties: "
            + (f"{len(failed)} failed." if failed else "nothing found.")
        )
        for outcome in failed:
            self.stdout.write(f"\n{outcome.name}: {outcome.failure[:2000]}")
            self.stdout.write(f"minimal failing input: {outcome.minimal!r:.2000}")
            for line in outcome.report:
                self.stdout.write(f"  {line[:2000]}")
        if failed:
            raise CommandError(f"{len(failed)} propert{'y' if len(failed) == 1 else 'ies'} failed")
