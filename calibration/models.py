"""What is measured: reference catalogs and their stars, and calibrated follow-up points."""

import math

from django.db import models
from django.db.models import Q

from .surveys import BANDS, SURVEYS

#: The database column (without the ``_mag``/``_err`` suffix) of each standard band. SQLite
#: compares column names without regard to case, so u/U, g/G, r/R and i/I need distinct names.
BAND_COLUMN = {
    "u": "u",
    "g": "g",
    "r": "r",
    "i": "i",
    "z": "z",
    "y": "y",
    "U": "johnson_u",
    "B": "johnson_b",
    "V": "johnson_v",
    "R": "cousins_r",
    "I": "cousins_i",
    "G": "gaia_g",
    "BP": "gaia_bp",
    "RP": "gaia_rp",
    "J": "j",
    "H": "h",
    "K": "k",
}
assert set(BAND_COLUMN) == set(BANDS)


def mag_column(band: str) -> str:
    """Name of the magnitude column of a standard band, e.g. ``johnson_v_mag`` for V."""
    return f"{BAND_COLUMN[band]}_mag"


def err_column(band: str) -> str:
    """Name of the magnitude-error column of a standard band, e.g. ``johnson_v_err`` for V."""
    return f"{BAND_COLUMN[band]}_err"


class RealField(models.FloatField):
    """A 4-byte float (SQL REAL): 7 digits hold any magnitude, and half the width halves what a cone reads."""

    def db_type(self, connection):
        return "real"


def _mag(band: str) -> RealField:
    return RealField(null=True, blank=True, help_text=f"{band} magnitude")


def _err(band: str) -> RealField:
    return RealField(null=True, blank=True, help_text=f"{band} magnitude error")


class ReferenceCatalog(models.Model):
    """One loaded reference survey (one per survey name): what it provides and where it came from."""

    survey = models.CharField(max_length=20, unique=True, choices=[(name, name) for name in SURVEYS])
    version = models.CharField(max_length=40, blank=True, help_text="Survey release, e.g. DR10")
    bands = models.JSONField(default=list, help_text="Standard band names it provides, in standard order")
    stars = models.BigIntegerField(default=0)
    coverage_deg2 = models.FloatField(default=0.0, help_text="Sky area holding its stars, square degrees")
    footprint = models.BinaryField(
        default=bytes, help_text="zlib-packed bitmap of the HEALPix order-8 pixels holding stars"
    )
    files = models.JSONField(default=list, help_text="The files ingested: name, format, stars, time")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["survey"]

    def __str__(self) -> str:
        return f"{self.survey} {self.version} ({self.stars} stars)".replace("  ", " ")


class ReferenceStar(models.Model):
    """A star of a reference catalog: position, HEALPix index, and magnitude + error per standard band.

    Columns of bands the catalog lacks stay NULL. The composite index (catalog, healpix) serves the
    cone search, so the foreign key needs no index of its own. Nor a database constraint: stars
    are written only by the ingest, with their catalog, in one transaction, and PostgreSQL would
    otherwise check every row at commit (about 5 s per million stars, a third of the load).
    """

    catalog = models.ForeignKey(
        ReferenceCatalog, on_delete=models.CASCADE, db_index=False, db_constraint=False, related_name="+"
    )
    healpix = models.BigIntegerField(help_text="HEALPix nested pixel at order 16 (3.2 arcsec)")
    ra = models.FloatField(help_text="Degrees, ICRS")
    dec = models.FloatField(help_text="Degrees, ICRS")
    source_id = models.BigIntegerField(null=True, blank=True, help_text="The survey's own identifier")

    u_mag, u_err = _mag("u"), _err("u")
    g_mag, g_err = _mag("g"), _err("g")
    r_mag, r_err = _mag("r"), _err("r")
    i_mag, i_err = _mag("i"), _err("i")
    z_mag, z_err = _mag("z"), _err("z")
    y_mag, y_err = _mag("y"), _err("y")
    johnson_u_mag, johnson_u_err = _mag("U"), _err("U")
    johnson_b_mag, johnson_b_err = _mag("B"), _err("B")
    johnson_v_mag, johnson_v_err = _mag("V"), _err("V")
    cousins_r_mag, cousins_r_err = _mag("R"), _err("R")
    cousins_i_mag, cousins_i_err = _mag("I"), _err("I")
    gaia_g_mag, gaia_g_err = _mag("G"), _err("G")
    gaia_bp_mag, gaia_bp_err = _mag("BP"), _err("BP")
    gaia_rp_mag, gaia_rp_err = _mag("RP"), _err("RP")
    j_mag, j_err = _mag("J"), _err("J")
    h_mag, h_err = _mag("H"), _err("H")
    k_mag, k_err = _mag("K"), _err("K")

    class Meta:
        indexes = [models.Index(fields=["catalog", "healpix"], name="refstar_catalog_healpix")]

    def __str__(self) -> str:
        return f"star {self.source_id or self.pk} at ({self.ra:.6f}, {self.dec:+.6f})"


class CoveredPixel(models.Model):
    """A HEALPix pixel (nested, order ``remote.COVERAGE_ORDER``) whose stars were fetched from the archive.

    The remote source stores a pixel's stars and this row in one transaction; the unique pair
    makes a second copy of the same stars impossible when two workers fetch the same field.
    """

    catalog = models.ForeignKey(ReferenceCatalog, on_delete=models.CASCADE, related_name="covered_pixels")
    pixel = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["catalog", "pixel"], name="coveredpixel_unique")]

    def __str__(self) -> str:
        return f"{self.catalog.survey} pixel {self.pixel}"


class FollowupPointQuerySet(models.QuerySet):
    def visible(self):
        """Points not hidden by their owner or a curator."""
        return self.filter(hidden=False)


class FollowupPoint(models.Model):
    """One calibrated magnitude (or upper limit) of an alert from one uploaded catalog."""

    alert = models.ForeignKey("alerts.Alert", on_delete=models.PROTECT, related_name="followups")
    observatory = models.ForeignKey(
        "observers.Observatory", on_delete=models.PROTECT, related_name="followups"
    )
    mjd = models.FloatField(verbose_name="MJD")
    exptime = models.FloatField(null=True, blank=True, help_text="Exposure time, seconds")
    comment = models.TextField(blank=True)

    survey = models.CharField(max_length=20, help_text="Reference survey used, e.g. APASS")
    filter = models.CharField(max_length=10, help_text="Band the point is calibrated to, e.g. V")
    mag = models.FloatField(help_text="Calibrated magnitude, or the limiting magnitude of a limit")
    mag_err = models.FloatField(
        help_text="Statistical error (calib_err apart); -1 for an upper limit (legacy convention)"
    )
    calib_err = models.FloatField(default=0.0, help_text="Calibration error, added in quadrature by clients")
    is_limit = models.BooleanField(default=False)

    zeropoint = models.FloatField(null=True, blank=True)
    colour_term = models.FloatField(null=True, blank=True)
    scatter = models.FloatField(null=True, blank=True)
    npoints = models.IntegerField(null=True, blank=True, help_text="Calibrators used")
    outlier_fraction = models.FloatField(null=True, blank=True)
    radius_arcsec = models.FloatField(null=True, blank=True, help_text="Matching radius used")
    ra = models.FloatField(null=True, blank=True, help_text="Measured position, degrees")
    dec = models.FloatField(null=True, blank=True)
    algorithm_version = models.CharField(max_length=40, blank=True)
    details = models.JSONField(default=dict, blank=True, help_text="All fit details")

    catalog_sha256 = models.CharField(max_length=64, blank=True, db_index=True)
    catalog_name = models.CharField(max_length=255, blank=True, help_text="File name given by the client")
    catalog_size = models.BigIntegerField(null=True, blank=True)

    imported = models.BooleanField(
        default=False, help_text="Imported from the legacy server (no catalog kept)"
    )
    legacy_id = models.BigIntegerField(
        null=True, blank=True, unique=True, help_text="Follow-up id on the old server"
    )
    legacy_observatory = models.CharField(
        max_length=100, blank=True, help_text="Observer label on the old server"
    )

    hidden = models.BooleanField(default=False, help_text="Deleted by its owner or a curator; recoverable")
    hidden_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    objects = FollowupPointQuerySet.as_manager()

    class Meta:
        ordering = ["alert", "mjd", "pk"]
        indexes = [models.Index(fields=["alert", "hidden", "mjd"])]
        constraints = [
            # The legacy duplicate rules, enforced by the database so concurrent uploads store one point.
            models.UniqueConstraint(
                fields=["observatory", "alert", "mjd", "filter"],
                condition=Q(hidden=False, imported=False),
                name="unique_point_per_observer_alert_mjd_band",
            ),
            # One catalog may be stored once per band (observers force each filter in turn).
            models.UniqueConstraint(
                fields=["alert", "catalog_sha256", "filter"],
                condition=Q(hidden=False, imported=False),
                name="unique_catalog_band_per_alert",
            ),
            models.CheckConstraint(
                condition=Q(is_limit=False) | Q(mag_err=-1), name="limit_has_magerr_minus_one"
            ),
        ]

    def __str__(self) -> str:
        kind = "limit" if self.is_limit else "point"
        return f"{self.alert} {kind} {self.filter}={self.mag:.3f} at MJD {self.mjd:.5f}"

    @property
    def total_err(self) -> float:
        """The statistical and calibration errors in quadrature; -1 for an upper limit."""
        return -1.0 if self.is_limit else math.hypot(self.mag_err, self.calib_err or 0.0)
