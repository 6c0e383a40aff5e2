"""What is measured: calibrated follow-up points (and, later, reference stars)."""

from django.db import models
from django.db.models import Q


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
    mag_err = models.FloatField(help_text="Statistical error; -1 for an upper limit (legacy convention)")
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
            models.UniqueConstraint(
                fields=["alert", "catalog_sha256"],
                condition=Q(hidden=False, imported=False),
                name="unique_catalog_per_alert",
            ),
            models.CheckConstraint(
                condition=Q(is_limit=False) | Q(mag_err=-1), name="limit_has_magerr_minus_one"
            ),
        ]

    def __str__(self) -> str:
        kind = "limit" if self.is_limit else "point"
        return f"{self.alert} {kind} {self.filter}={self.mag:.3f} at MJD {self.mjd:.5f}"
