from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from calibration.ingest import ingest_refcat
from calibration.refformats import FORMAT_NAMES, MAX_BAD_ROWS
from calibration.surveys import SURVEYS
from gsafollowup.errors import BadInput


class Command(BaseCommand):
    help = (
        "Load a reference-survey file (CSV, optionally gzipped; FITS or VOTable with --format generic) "
        "in one transaction: all valid rows or nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("survey", choices=list(SURVEYS))
        parser.add_argument("file")
        parser.add_argument("--format", choices=FORMAT_NAMES, help="Detected from the header when omitted")
        parser.add_argument(
            "--columns", help="For --format generic: ra=COL,dec=COL[,source_id=COL],BAND=COL,BAND_err=COL,..."
        )
        parser.add_argument("--catalog-version", help="Survey release to record (default: the format's)")
        parser.add_argument(
            "--replace", action="store_true", help="Swap the loaded catalog of SURVEY for this file"
        )
        parser.add_argument(
            "--append", action="store_true", help="Add this file to the loaded catalog of SURVEY"
        )
        parser.add_argument(
            "--max-bad-rows",
            type=int,
            default=MAX_BAD_ROWS,
            help=f"Malformed rows to skip and report before refusing the file (default {MAX_BAD_ROWS})",
        )

    def handle(self, *args, **opts):
        with tqdm(unit_scale=True, file=self.stderr, disable=opts["verbosity"] < 1) as bar:

            def progress(position, size):
                bar.total = size
                bar.update(position - bar.n)

            try:
                result = ingest_refcat(
                    opts["survey"],
                    opts["file"],
                    format_name=opts["format"],
                    columns=opts["columns"],
                    version=opts["catalog_version"],
                    replace=opts["replace"],
                    append=opts["append"],
                    max_bad_rows=opts["max_bad_rows"],
                    progress=progress,
                )
            except BadInput as error:
                raise CommandError(error.message) from error
        for line, reason in result.bad_rows:
            self.stderr.write(f"Skipped line {line}: {reason}")
        name = f"{result.survey} {result.version}".strip()
        replaced = f", replacing {result.replaced}" if result.replaced else ""
        self.stdout.write(
            f"{name}: {result.stars} stars loaded from {result.format} "
            f"({' '.join(result.bands)}){replaced} in {result.seconds:.1f} s."
        )
